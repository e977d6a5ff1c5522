"""A ledger checkpoint: what the risk book holds of some accounts at one consistent moment.

Recovery used to rebuild every balance by booking every fill ever stored, so a restart took
longer the more the accounts had traded. A checkpoint is the book's own figures for a set of
accounts (balances, positions, realized PnL, and each accepted order's record: what is left
reserved and unfilled, and which fills it booked), taken when nothing is in flight; recovery
loads it and books only the fills stored after it.

The counters the daily-loss and velocity limits read are in it too (the accepted orders of the
velocity window, the day the loss counts in and the PnL that day started at): without them a
rebalance or a restart started them afresh, and a trader stopped by either limit traded again.
Recovery counts the acceptances stored after the checkpoint into them (``oms.risk.restore``).

The ``VENUE`` and ``FEES`` balances are not in it: they are shared by every account, and a
replica rebuilds only the share of the accounts it owns. That share follows from the accounts'
own figures (money only moves through balanced entries): what the fees took is the sum of the
positions' fees, and the venue holds the rest of what left the account since it was opened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from oms.domain.accounts import FEES, VENUE
from oms.domain.errors import RiskError, UnknownAccount
from oms.risk.account import AccountState, Bucket
from oms.risk.positions import PositionState
from oms.risk.records import Listing, OpenOrder

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PositionFigures:
    """One position: the signed quantity, its average price, realized PnL and fees paid."""

    symbol: str
    quantity: Decimal
    average_price: Decimal
    realized_pnl: Decimal
    fees: Decimal


@dataclass(frozen=True, slots=True)
class RecordFigures:
    """One accepted, not yet released order's record, as ``post_fill`` left it."""

    order_id: str
    symbol: str
    is_buy: bool
    amount: Decimal  # what accepting reserved
    protection: Decimal
    remaining: Decimal  # unfilled quantity
    reserved: Decimal  # what is left of the reservation
    fill_ids: tuple[str, ...]  # the executions booked against it


@dataclass(frozen=True, slots=True)
class AccountLedger:
    """One account's money: per asset (available, reserved), positions, PnL, open records."""

    account_id: str
    balances: Mapping[str, tuple[Decimal, Decimal]]
    positions: tuple[PositionFigures, ...]
    realized_pnl: Decimal
    records: tuple[RecordFigures, ...]
    # The risk counters (``AccountState``'s): accepted orders still in the velocity window,
    # oldest first, as (accepted at, notional); the UTC day the daily loss counts in (None: no
    # order yet) and the account's total PnL when that day started. Defaults: a checkpoint
    # written before they were kept.
    velocity: tuple[tuple[float, Decimal], ...] = ()
    day: int | None = None
    day_start_pnl: Decimal = _ZERO


@dataclass(frozen=True, slots=True)
class LedgerCheckpoint:
    """The figures of some accounts at one moment (see the module docstring)."""

    accounts: tuple[AccountLedger, ...] = ()

    def merged(self, other: LedgerCheckpoint) -> LedgerCheckpoint:
        """Both checkpoints' accounts (of disjoint sets of accounts: one per partition)."""
        return LedgerCheckpoint(self.accounts + other.accounts)

    def order_ids(self) -> frozenset[str]:
        """The orders whose records the checkpoint holds."""
        return frozenset(r.order_id for a in self.accounts for r in a.records)


def export_accounts(
    accounts: Iterable[AccountState], records: Iterable[OpenOrder]
) -> LedgerCheckpoint:
    """The figures of ``accounts`` and of those of ``records`` that belong to them."""
    chosen = {account.account_id: account for account in accounts}
    by_account: dict[str, list[RecordFigures]] = {account_id: [] for account_id in chosen}
    for record in records:
        held = by_account.get(record.account.account_id)
        if held is not None:
            held.append(
                RecordFigures(
                    record.order_id,
                    record.listing.symbol,
                    record.is_buy,
                    record.amount,
                    record.protection,
                    record.remaining,
                    record.reserved,
                    record.fill_ids or (),
                )
            )
    return LedgerCheckpoint(
        tuple(
            AccountLedger(
                account_id,
                {asset: (b.available, b.reserved) for asset, b in account.buckets.items()},
                tuple(
                    PositionFigures(p.symbol, p.quantity, p.average_price, p.realized_pnl, p.fees)
                    for p in account.positions.values()
                ),
                account.realized_pnl,
                tuple(by_account[account_id]),
                tuple(account.velocity),
                account.day,
                account.day_start_pnl,
            )
            for account_id, account in chosen.items()
        )
    )


def load_accounts(
    checkpoint: LedgerCheckpoint,
    *,
    accounts: Mapping[str, AccountState],
    balances: Mapping[str, dict[str, Bucket]],
    records: dict[str, OpenOrder],
    listings: Mapping[str, Listing],
    openings: Mapping[str, Mapping[str, Decimal]],
) -> None:
    """Put the checkpoint's figures on accounts opened with ``openings`` and untouched since.

    Buckets, positions and PnL take the checkpoint's values, each record is re-created as it
    was (so a fill it booked is recognised and not booked again), and the ``VENUE`` and
    ``FEES`` balances gain these accounts' share (the module docstring). Checked first, then
    changed: raises ``UnknownAccount`` (an account not open, or without opening balances),
    ``RiskError`` (``UNKNOWN_INSTRUMENT``, or a record already open) and changes nothing.
    """
    for ledger in checkpoint.accounts:
        if ledger.account_id not in accounts or ledger.account_id not in openings:
            raise UnknownAccount(f"checkpoint of an account not opened: {ledger.account_id!r}")
        symbols = {p.symbol for p in ledger.positions} | {r.symbol for r in ledger.records}
        for symbol in symbols - set(listings):
            raise RiskError(
                f"checkpoint of {ledger.account_id!r} names {symbol!r}, not listed",
                code="UNKNOWN_INSTRUMENT",
            )
        for record in ledger.records:
            if record.order_id in records:
                raise RiskError(f"order {record.order_id} is already open", code="ALREADY_OPEN")
    venue, fees = balances[VENUE], balances[FEES]
    for ledger in checkpoint.accounts:
        account = accounts[ledger.account_id]
        _load_account(account, ledger, listings, records)
        paid: dict[str, Decimal] = {}
        for position in ledger.positions:
            quote = listings[position.symbol].quote
            paid[quote] = paid.get(quote, _ZERO) + position.fees
        opening = openings[ledger.account_id]
        for asset in set(opening) | set(account.buckets) | set(paid):
            bucket = account.buckets.get(asset)
            now = _ZERO if bucket is None else bucket.available + bucket.reserved
            fee = paid.get(asset, _ZERO)
            # What left the account since it opened went to the fees (``fee``) or the venue.
            venue.setdefault(asset, Bucket()).available += opening.get(asset, _ZERO) - now - fee
            if fee:
                fees.setdefault(asset, Bucket()).available += fee


def _load_account(
    account: AccountState,
    ledger: AccountLedger,
    listings: Mapping[str, Listing],
    records: dict[str, OpenOrder],
) -> None:
    buckets = account.buckets
    for asset, (available, reserved) in ledger.balances.items():
        # In place: open records and the book's balance table hold these very buckets.
        bucket = buckets.setdefault(asset, Bucket())
        bucket.available = available
        bucket.reserved = reserved
    positions = account.positions
    for figures in ledger.positions:
        position = positions.setdefault(figures.symbol, PositionState(figures.symbol))
        position.quantity = figures.quantity
        position.average_price = figures.average_price
        position.realized_pnl = figures.realized_pnl
        position.fees = figures.fees
        position.open_buy = position.open_sell = _ZERO
    account.realized_pnl = ledger.realized_pnl
    account.velocity.clear()
    account.velocity.extend(ledger.velocity)
    account.velocity_notional = sum((amount for _, amount in ledger.velocity), _ZERO)
    account.day = ledger.day
    account.day_start_pnl = ledger.day_start_pnl
    account.open_orders = 0
    for held in ledger.records:
        position = positions.setdefault(held.symbol, PositionState(held.symbol))
        record = OpenOrder(
            held.order_id,
            account,
            listings[held.symbol],
            position,
            held.is_buy,
            held.remaining,
            held.reserved,
            held.protection,
        )
        record.amount = held.amount
        record.fill_ids = held.fill_ids or None
        records[held.order_id] = record
        if held.is_buy:
            position.open_buy += held.remaining
        else:
            position.open_sell += held.remaining
        account.open_orders += 1
