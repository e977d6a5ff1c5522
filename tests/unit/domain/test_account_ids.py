"""Account ids: the grammar, and the ids the system keeps for itself."""

from __future__ import annotations

import pytest

from oms.domain.accounts import (
    RESERVED_ACCOUNT_IDS,
    InvalidAccountId,
    ReservedAccountId,
    check_account_id,
)
from oms.risk.ledger import FEES, VENUE


def test_check_account_id_when_the_id_is_a_client_id_then_returns_it() -> None:
    assert check_account_id("acct-1.a_b:c") == "acct-1.a_b:c"


@pytest.mark.parametrize("account_id", ["VENUE", "FEES", "venue", "Fees"])
def test_check_account_id_when_the_ledger_uses_the_id_then_refuses_it_as_reserved(
    account_id: str,
) -> None:
    with pytest.raises(ReservedAccountId) as refused:
        check_account_id(account_id)

    assert refused.value.code == "RESERVED_ACCOUNT_ID"


@pytest.mark.parametrize("value", ["", "a b", "-a", "x" * 65, "ä", None, 7])
def test_check_account_id_when_the_id_breaks_the_grammar_then_refuses_it(value: object) -> None:
    with pytest.raises(InvalidAccountId) as refused:
        check_account_id(value)

    assert refused.value.code == "INVALID_ACCOUNT_ID"


def test_the_reserved_ids_when_read_then_hold_every_account_the_ledger_books_to() -> None:
    assert {VENUE, FEES} <= RESERVED_ACCOUNT_IDS
