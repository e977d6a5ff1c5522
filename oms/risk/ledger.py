"""Double-entry ledger: every fill is one entry whose postings sum to zero per asset.

The counterparty of every fill is the contra account ``VENUE``; fees go to ``FEES``. Because money
only moves through balanced entries (plus moves between an account's own available and reserved
buckets), the total of every asset over all accounts never changes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

# The ledger's own accounts are named in the domain, beside the rule that keeps clients off them.
from oms.domain.accounts import FEES, VENUE
from oms.domain.errors import UnbalancedEntry

_ZERO = Decimal(0)
# Builds a NamedTuple straight from a tuple, skipping its Python-level ``__new__``: a fill makes
# seven of them, and this halves their cost.
_new = tuple.__new__


class Posting(NamedTuple):
    """One leg of an entry: ``amount`` of ``asset`` credited (positive) or debited (negative)."""

    # A NamedTuple rather than a dataclass: a fill makes six of these, and a tuple is built in a
    # fraction of the time a frozen dataclass takes, while staying immutable.
    account_id: str
    """Who gains or loses the amount."""
    asset: str
    """Which asset moves."""
    amount: Decimal
    """Signed amount: positive credits the account, negative debits it."""


class LedgerEntry(NamedTuple):
    """One balanced booking (one fill): its postings sum to zero for every asset."""

    entry_id: str
    """The execution id of the fill (unique)."""
    order_id: str
    """The order the fill belongs to."""
    account_id: str
    """The trading account the fill was booked for."""
    postings: tuple[Posting, ...]
    """The legs, in pairs that each move one amount between two accounts."""


def imbalance(postings: tuple[Posting, ...]) -> dict[str, Decimal]:
    """The non-zero sum per asset of ``postings`` (empty for a balanced entry)."""
    sums: dict[str, Decimal] = {}
    for posting in postings:
        sums[posting.asset] = sums.get(posting.asset, _ZERO) + posting.amount
    return {asset: total for asset, total in sums.items() if total != 0}


def require_balanced(entry: LedgerEntry) -> LedgerEntry:
    """Return ``entry`` if it balances, else raise ``UnbalancedEntry`` (a bug in the caller)."""
    off = imbalance(entry.postings)
    if off:
        raise UnbalancedEntry(f"entry {entry.entry_id} does not balance: {off}")
    return entry


def fill_entry(
    entry_id: str,
    order_id: str,
    account_id: str,
    *,
    is_buy: bool,
    base: str,
    quote: str,
    quantity: Decimal,
    cost: Decimal,
    fee: Decimal,
) -> LedgerEntry:
    """The entry for one fill: base against quote with the venue, and the fee to ``FEES``.

    Every posting is written next to its mirror (the same asset and amount, the other sign), so
    the entry balances by construction and no sum is re-checked on this hot path
    (``require_balanced`` is for entries built any other way; the property tests check every
    entry the book returns).
    """
    if is_buy:
        receives, gives = base, quote
        received, given = quantity, cost
    else:
        receives, gives = quote, base
        received, given = cost, quantity
    # Inline rather than through ``transfer``: this runs once per fill.
    postings: tuple[Posting, ...] = (
        _new(Posting, (account_id, receives, received)),
        _new(Posting, (VENUE, receives, -received)),
        _new(Posting, (account_id, gives, -given)),
        _new(Posting, (VENUE, gives, given)),
    )
    if fee:
        postings += (_new(Posting, (account_id, quote, -fee)), _new(Posting, (FEES, quote, fee)))
    return _new(LedgerEntry, (entry_id, order_id, account_id, postings))
