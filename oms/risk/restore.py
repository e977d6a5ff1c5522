"""Recovery's side of the risk book: put back accounts, a checkpoint, reservations and fills.

Pure and synchronous, like the book: the risk supervisor applies one ``BookRestore`` in one turn
(``RestoreBook``), so nothing else touches the book while it is rebuilt. The engine's recovery
(``oms.engine.recovery``) builds the plan from the store; this module holds the rules that need
the book's own state (which orders a checkpoint brought back, which records could be restored).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Set
from decimal import Decimal
from typing import NamedTuple

from oms.domain.commands import ApplyFill
from oms.domain.enums import OrderStatus, OrderType, Side
from oms.domain.errors import DomainError
from oms.domain.events import OrderAccepted, OrderEvent, OrderPlaced
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.orders import Order
from oms.risk.book import RiskBook
from oms.risk.checkpoint import LedgerCheckpoint

logger = logging.getLogger(__name__)


class AccountOpening(NamedTuple):
    """A stored account: opened (if not open yet) with these balances and limits."""

    account_id: str
    balances: Mapping[str, Decimal]
    limits: RiskLimits | None
    trading_state: TradingState  # a restart must not resume what an operator halted


class EndedOrder(NamedTuple):
    """An order that ended with fills the checkpoint does not hold: restored reserving exactly
    what those fills cost, so that booking them and releasing it leaves nothing reserved."""

    order_id: str
    account_id: str
    symbol: str
    side: Side
    quantity: Decimal  # the fills' total
    protection: Decimal  # the highest fill price
    reserved: Decimal  # a BUY: every fill's cost plus fee; a SELL: the quantity
    fills: int  # how many fills (counted as skipped if the record cannot be restored)


class Acceptance(NamedTuple):
    """An order whose ``OrderAccepted`` was stored after its partition's checkpoint: counted
    again into its account's velocity window and trading day, at the event's own time."""

    order_id: str
    account_id: str
    at: float  # the OrderAccepted event's time, never "now at recovery"
    notional: Decimal  # what the velocity notional limit counted (see ``accepted_after``)


def accepted_after(events: Iterable[OrderEvent], since: int) -> Acceptance | None:
    """The order's acceptance if its ``OrderAccepted`` came after sequence ``since`` (what a
    checkpoint holds of the order), else None.

    The notional is the one ``RiskBook.accept`` counted: quantity times the limit price (LIMIT,
    STOP_LIMIT) or the stop price (STOP_MARKET). A MARKET order was counted at the market's
    last price then, which no event keeps: it counts at its protection price (the collar's edge
    around that price; only orders accepted after the last checkpoint, ``checkpoint_interval_s``
    at most, are counted this way).
    """
    placed: OrderPlaced | None = None
    for event in events:
        if isinstance(event, OrderPlaced):
            placed = event
        elif isinstance(event, OrderAccepted):
            if placed is None or event.sequence <= since:
                return None
            kind = placed.type
            if kind is OrderType.MARKET:
                price: Decimal | None = event.protection_price
            elif kind is OrderType.STOP_MARKET:
                price = placed.stop_price
            else:
                price = placed.price
            notional = placed.quantity * (event.protection_price if price is None else price)
            return Acceptance(event.order_id, placed.account_id, event.at, notional)
    return None


class BookRestore(NamedTuple):
    """Everything recovery puts back into the book, in the order it is applied."""

    reset: TradingState | None  # clear the book first and set this global switch (a rebuild)
    accounts: tuple[AccountOpening, ...]
    ledger: LedgerCheckpoint | None  # a checkpoint of some accounts (None: none)
    open_orders: tuple[Order, ...]  # every stored open order
    ended: tuple[EndedOrder, ...]  # ended orders with fills after the checkpoint
    fills: tuple[ApplyFill, ...]  # every fill to book, in execution time order
    # Orders accepted after the checkpoint, in time order (counted between the fills).
    accepted: tuple[Acceptance, ...] = ()


class BookRestored(NamedTuple):
    """What ``restore_book`` did."""

    opened: int  # accounts opened (not open before)
    refused: int  # stored accounts the book would not open (logged)
    booked: int  # fills booked
    ended: int  # ended orders restored and released
    counted: int  # acceptances after the checkpoint counted into velocity and the day
    restored: Set[str]  # orders with a record in the book (open ones and ended ones); not copied
    skipped: int  # checkpoint accounts, records or fills the book refused (logged)


def restore_book(book: RiskBook, plan: BookRestore) -> BookRestored:
    """Apply ``plan`` to ``book``: accounts, the checkpoint, reservations, fills, releases.

    - Accounts: one not open yet is opened with its opening balances and limits; each takes its
      stored kill switch.
    - The checkpoint: its accounts take its balances, positions and PnL, each of its open
      records comes back as it was (``RiskBook.load_ledger``).
    - Reservations: an open accepted order without a checkpoint record reserves again what its
      acceptance reserved (at its stored protection price); a NEW order has nothing reserved.
    - Fills: every fill of an order with a record is booked through ``post_fill`` (one a
      checkpoint's record booked already changes nothing); then every ended order is released.
    - Risk counters: the checkpoint brought each account's velocity window and trading day;
      every acceptance stored after it is counted into them at its own time, between the fills
      that came before and after it, so a day that began since starts at the realized PnL of
      that moment. Nothing spent is spent twice (the checkpoint holds what was accepted up to
      it, the acceptances what came after) and nothing is reset.
    """
    if plan.reset is not None:
        book.clear()
        book.set_trading_state(plan.reset)
    opened, refused = _open_accounts(book, plan.accounts)
    loaded, skipped = _load_ledger(book, plan.ledger, plan.accounts)
    restored: set[str] = set()
    open_ids = {order.order_id for order in plan.open_orders}
    skipped += _restore_open(book, plan.open_orders, loaded, restored)
    # Open at the checkpoint, ended since (with or without fills after it).
    ended = sorted(loaded - open_ids)
    restored.update(ended)
    for one in plan.ended:
        if one.order_id in loaded:
            continue
        try:
            book.restore_open(
                one.order_id, one.account_id, one.symbol, side=one.side,
                quantity=one.quantity, protection=one.protection, reserved=one.reserved,
            )  # fmt: skip
        except DomainError:
            skipped += one.fills
            logger.warning("recovery: cannot replay fills of %s", one.order_id, exc_info=True)
            continue
        restored.add(one.order_id)
        ended.append(one.order_id)
    booked = counted = 0
    accepted = plan.accepted
    waiting = 0  # the next acceptance to count: each before the first fill later than it
    for fill in plan.fills:
        while waiting < len(accepted) and accepted[waiting].at <= fill.executed_at:
            counted += _count(book, accepted[waiting])
            waiting += 1
        if fill.order_id not in restored:
            continue
        try:
            if book.post_fill(fill) is not None:
                booked += 1
        except DomainError:
            skipped += 1
            logger.exception("recovery: could not book fill %s", fill.command_id)
    for late in accepted[waiting:]:
        counted += _count(book, late)
    for order_id in ended:
        book.release(order_id)
    return BookRestored(opened, refused, booked, len(ended), counted, restored, skipped)


def _count(book: RiskBook, one: Acceptance) -> int:
    """1 if the acceptance was counted (0: its account is not in the book, logged)."""
    if book.count_accepted(one.account_id, one.at, one.notional):
        return 1
    logger.warning("recovery: acceptance of %s names no open account", one.order_id)
    return 0


def _open_accounts(book: RiskBook, accounts: tuple[AccountOpening, ...]) -> tuple[int, int]:
    opened = refused = 0
    for account in accounts:
        try:
            if not book.has_account(account.account_id):
                book.open_account(account.account_id, account.balances, account.limits)
                opened += 1
            book.set_trading_state(account.trading_state, account.account_id)
        except (DomainError, ArithmeticError) as error:
            # A stored opening the book refuses (a negative or NaN balance written by hand) is
            # left out, not fatal: its orders are then those of an unknown account.
            refused += 1
            logger.warning("recovery: cannot open account %s: %r", account.account_id, error)
    return opened, refused


def _load_ledger(
    book: RiskBook, ledger: LedgerCheckpoint | None, accounts: tuple[AccountOpening, ...]
) -> tuple[frozenset[str], int]:
    """Put the checkpoint on the accounts, one at a time (one the book refuses is logged and
    left at its opening balances); the orders whose records it restored, and how many of its
    accounts were skipped."""
    if ledger is None:
        return frozenset(), 0
    openings = {account.account_id: account.balances for account in accounts}
    loaded: set[str] = set()
    skipped = 0
    for account in ledger.accounts:
        one = LedgerCheckpoint((account,))
        try:
            book.load_ledger(one, openings)
        except DomainError:
            skipped += 1
            logger.exception("recovery: cannot load the checkpoint of %s", account.account_id)
            continue
        loaded.update(one.order_ids())
    return frozenset(loaded), skipped


def _restore_open(
    book: RiskBook, open_orders: tuple[Order, ...], loaded: frozenset[str], restored: set[str]
) -> int:
    """Each open accepted order reserves again what its acceptance reserved; how many the book
    refused."""
    skipped = 0
    for order in open_orders:
        if order.order_id in loaded:
            restored.add(order.order_id)  # its record came back with the checkpoint
            continue
        protection = order.protection_price or order.price
        if order.status is OrderStatus.NEW or protection is None:
            continue
        try:
            book.restore_open(
                order.order_id, order.account_id, order.symbol,
                side=order.side, quantity=order.quantity, protection=protection,
            )  # fmt: skip
        except DomainError:
            skipped += 1
            logger.warning("recovery: cannot restore %s", order.order_id, exc_info=True)
            continue
        restored.add(order.order_id)
    return skipped
