"""Ledger entries: balanced double entry against VENUE, fees to FEES; an imbalance is a bug."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.errors import UnbalancedEntry
from oms.risk import FEES, VENUE, LedgerEntry, Posting, imbalance
from oms.risk import require_balanced as balanced
from oms.risk.ledger import fill_entry

D = Decimal


@pytest.mark.parametrize("is_buy", [True, False])
def test_fill_entry_when_built_then_sums_to_zero_per_asset(is_buy: bool) -> None:
    # Arrange / Act
    entry = fill_entry(
        "x1",
        "o1",
        "alice",
        is_buy=is_buy,
        base="BTC",
        quote="USD",
        quantity=D("0.1"),
        cost=D("5000.000"),
        fee=D("5.00"),
    )

    # Assert
    assert imbalance(entry.postings) == {}
    assert balanced(entry) is entry
    assert {p.account_id for p in entry.postings} == {"alice", VENUE, FEES}


def test_fill_entry_when_fee_is_zero_then_has_no_fee_postings() -> None:
    # Arrange / Act
    entry = fill_entry(
        "x1",
        "o1",
        "alice",
        is_buy=True,
        base="BTC",
        quote="USD",
        quantity=D("1"),
        cost=D("10"),
        fee=D("0"),
    )

    # Assert
    assert len(entry.postings) == 4
    assert FEES not in {p.account_id for p in entry.postings}


def test_require_balanced_when_postings_do_not_sum_to_zero_then_raises_unbalanced_entry() -> None:
    # Arrange
    entry = LedgerEntry(
        "x1",
        "o1",
        "alice",
        (Posting("alice", "USD", D("-10")), Posting(VENUE, "USD", D("9.99"))),
    )

    # Act / Assert
    with pytest.raises(UnbalancedEntry) as raised:
        balanced(entry)
    assert raised.value.code == "UNBALANCED_ENTRY"
    assert imbalance(entry.postings) == {"USD": D("-0.01")}
