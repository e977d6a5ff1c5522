"""Account ids: their grammar, and the ids the system keeps for itself.

The one place that says which account ids a client may never open: the REST door, the Kafka
decoder of account commands and the start-up's reading of stored accounts all ask
``check_account_id``. An id the ledger uses for itself opened as a trading account would collide
with the ledger's own balances (``AccountExists`` on every later start), so it is refused at every
door and skipped, and reported, if one was ever stored.
"""

from __future__ import annotations

import re

from oms.domain.errors import DomainError

IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
"""An id from outside (account, order, client order, command): 1-64 of ``A-Za-z0-9._:-``."""

VENUE = "VENUE"
"""Contra account of every fill: what the account receives, the venue gives, and the reverse."""
FEES = "FEES"
"""Account that collects every fee."""
LEDGER_ACCOUNTS = frozenset({VENUE, FEES})
"""Accounts that hold balances but never trade (their balances may go negative)."""
RESERVED_ACCOUNT_IDS = LEDGER_ACCOUNTS
"""Ids no client may open. Compared case-insensitively: ``venue`` would not collide in the
ledger, but two accounts whose names differ only in case from the ledger's own would mislead
whoever reads a balance report."""

ACCOUNT_ID_RULE = "must be 1-64 characters: letters, digits, '.', '_', ':', '-'"


class InvalidAccountId(DomainError):
    """An account id that is not of the id grammar."""

    code = "INVALID_ACCOUNT_ID"


class ReservedAccountId(InvalidAccountId):
    """An account id the system uses for itself (the ledger's ``VENUE`` and ``FEES``)."""

    code = "RESERVED_ACCOUNT_ID"


def is_reserved(account_id: str) -> bool:
    """True for an id the system keeps for itself (in any case)."""
    return account_id.upper() in RESERVED_ACCOUNT_IDS


def check_account_id(value: object) -> str:
    """``value`` if it may name a client's account; else ``InvalidAccountId`` (its shape) or
    ``ReservedAccountId`` (an id the system uses). The messages leave the field's name to the
    caller."""
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise InvalidAccountId(ACCOUNT_ID_RULE)
    if is_reserved(value):
        raise ReservedAccountId(
            f"{value!r} is reserved by the system "
            f"({', '.join(sorted(RESERVED_ACCOUNT_IDS))} in any case)"
        )
    return value
