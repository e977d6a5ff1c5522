"""Reconciliation's rules: our orders and fills beside the venue's, and what to do about them.

Pure: the driver (``oms.engine.reconciliation``) reads both sides and applies the ``Plan``.
The venue knows an order by the client order id we gave it, which is our ``order_id`` (unique
across accounts; an account's own ``client_order_id`` is only unique within the account).

What the rules decide, in the words of issue 17:

- A venue trade the order has booked already is *matched*; one it has not, on an order that
  can take it, is *booked* (an ``ApplyFill`` whose id is ``trade_fill_id``, the one the venue
  gateway gives it too, so booking it twice changes nothing; its fee in the quote asset as the
  gateway books it).
- An in-doubt order (the venue never answered our submit) is *resolved* by the venue's word
  only: it has the order (live, filled or cancelled there), or it says it does not know it
  once the submit window has passed; then, and only then, it is REJECTED with that word as
  its reason. Within the window it stays in doubt (*pending*): an answer may still be on its
  way.
- Everything else that does not add up is a *discrepancy* (a closed set of kinds): the driver
  records it on ``risk-events``, counts it and HALTs the account (fail closed) until an
  operator resumes it. Nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from oms.domain.commands import ApplyFill
from oms.domain.enums import OrderStatus
from oms.venue.port import VenueOrderState, VenueOrderStatus, VenueTrade
from oms.venue.trades import quote_fee, trade_fill_id


class DiscrepancyKind(StrEnum):
    """What reconciliation could not explain (the ``kind`` label of its metric)."""

    UNKNOWN_VENUE_ORDER = "UNKNOWN_VENUE_ORDER"
    """The venue has an open order (or a trade of one) we do not know."""
    FILL_ON_ENDED_ORDER = "FILL_ON_ENDED_ORDER"
    """The venue traded an order we hold terminal (or not yet accepted) without this trade."""
    QUANTITY_MISMATCH = "QUANTITY_MISMATCH"
    """Our filled quantity and the venue's disagree once every trade is booked, or the
    venue's trades add up to more than the order's quantity."""
    MISSING_AT_VENUE = "MISSING_AT_VENUE"
    """An order the venue acknowledged is not known there any more."""
    OPEN_AT_VENUE_ENDED_HERE = "OPEN_AT_VENUE_ENDED_HERE"
    """The venue still has open an order that has ended here."""
    VENUE_REJECTED_LIVE_ORDER = "VENUE_REJECTED_LIVE_ORDER"
    """The venue says it rejected an order we hold acknowledged and live."""
    UNBOOKABLE_FILL = "UNBOOKABLE_FILL"
    """A fill the ledger could not book (beyond the account's funds)."""


class OurOrder(NamedTuple):
    """One of our orders as reconciliation needs it."""

    order_id: str
    account_id: str
    symbol: str
    status: OrderStatus
    quantity: Decimal
    filled_quantity: Decimal
    trade_ids: frozenset[str]  # the fills it has booked (their ids: ``trade_fill_id``)
    in_doubt: bool = False  # our submit's answer never came
    submitted_at: float | None = None  # when we sent it (for the submit window)


class NotAtVenue(NamedTuple):
    """The venue's answer to a query for one of our orders: it has no such order."""

    client_order_id: str
    reason: str  # the venue's own words (its refusal code)


class Resolution(StrEnum):
    """What an in-doubt order turned out to be."""

    LIVE = "LIVE"  # the venue holds it: it goes on as acknowledged
    CANCELLED = "CANCELLED"  # the venue cancelled it (its fills, if any, are booked)
    REJECTED = "REJECTED"  # the venue refused it, or does not know it after the window


class Resolve(NamedTuple):
    """Resolve the in-doubt order ``order_id`` as ``resolution``, with the venue's ``reason``."""

    order_id: str
    account_id: str
    resolution: Resolution
    reason: str


class Discrepancy(NamedTuple):
    """Something the venue and we disagree on: the account is halted until an operator acts.

    ``account_id`` None: the venue's order is not ours to place, so every account is halted.
    """

    kind: DiscrepancyKind
    account_id: str | None
    order_id: str
    detail: str


class Plan(NamedTuple):
    """What one reconciliation run found and asks the driver to do, in this order: book the
    fills, resolve the in-doubt orders, then record and halt for each discrepancy."""

    fills: tuple[ApplyFill, ...]
    resolutions: tuple[Resolve, ...]
    discrepancies: tuple[Discrepancy, ...]
    matched: int  # trades booked already and orders whose state agrees
    pending: int  # in-doubt orders still within their submit window


VENUE_UNKNOWN = "VENUE_UNKNOWN_ORDER"
"""The reason of an in-doubt order rejected because the venue, after the submit window, says
it does not know it."""

# Statuses that take a fill: the order is at the venue, with room.
_FILLABLE = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.IN_DOUBT})


def plan(
    ours: Iterable[OurOrder],
    venue_orders: Iterable[VenueOrderState],
    not_at_venue: Iterable[NotAtVenue],
    trades: Iterable[VenueTrade],
    *,
    now: float,
    submit_window_s: float,
) -> Plan:
    """Compare our orders with the venue's word on them and its trades since the last run.

    ``ours``: our open orders and any ended order a trade names; ``venue_orders``: the venue's
    open orders and its answer for each open or in-doubt order of ours fetched by client order
    id; ``not_at_venue``: those it said it does not know; ``trades``: ours at the venue since
    the last reconciled point (a trade twice, or one booked already, is matched, not booked).
    """
    mine = {o.order_id: o for o in ours}
    seen: dict[str, VenueOrderState | NotAtVenue] = {}
    by_venue_id: dict[str, str] = {}
    for state in venue_orders:
        seen[state.client_order_id] = state  # listed open and fetched: the same word twice
        by_venue_id[state.venue_order_id] = state.client_order_id
    for missing in not_at_venue:
        seen.setdefault(missing.client_order_id, missing)
    found = _Found()
    added = _book_trades(mine, by_venue_id, trades, found)
    for order_id, word in seen.items():
        order = mine.get(order_id)
        if order is None:
            if isinstance(word, VenueOrderState) and word.status is VenueOrderStatus.OPEN:
                found.discrepancies.append(_unknown(order_id, "open at the venue"))
            continue
        filled_here = order.filled_quantity + added.get(order_id, Decimal(0))
        outcome = _compare(order, word, filled_here, now=now, window=submit_window_s)
        if isinstance(outcome, Discrepancy):
            found.discrepancies.append(outcome)
        elif isinstance(outcome, Resolve):
            found.resolutions.append(outcome)
        elif outcome is _PENDING:
            found.pending += 1
        else:
            found.matched += 1
    return Plan(
        tuple(found.fills),
        tuple(found.resolutions),
        tuple(found.discrepancies),
        found.matched,
        found.pending,
    )


@dataclass
class _Found:
    """What a run has found so far (``Plan``'s fields, growing)."""

    fills: list[ApplyFill] = field(default_factory=list)
    resolutions: list[Resolve] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)
    matched: int = 0
    pending: int = 0


def _book_trades(
    mine: Mapping[str, OurOrder],
    by_venue_id: Mapping[str, str],
    trades: Iterable[VenueTrade],
    found: _Found,
) -> dict[str, Decimal]:
    """Match or book each trade (or find it unexplained); what is booked per order."""
    added: dict[str, Decimal] = {}
    for trade in _unique(trades):
        # Binance's trades name the venue's order id only: the orders fetched map it to ours.
        order_id = trade.client_order_id or by_venue_id.get(trade.venue_order_id)
        order = None if order_id is None else mine.get(order_id)
        if order is None:
            name = order_id or f"venue:{trade.venue_order_id}"
            found.discrepancies.append(_unknown(name, f"trade {trade.trade_id}"))
            continue
        fill_id = trade_fill_id(order.order_id, trade.trade_id)
        if fill_id in order.trade_ids:
            found.matched += 1
            continue
        before = added.get(order.order_id, Decimal(0))
        booked = order.filled_quantity + before
        if not (order.status in _FILLABLE or order.in_doubt):
            detail = f"trade {trade.trade_id} on a {order.status} order"
            found.discrepancies.append(_on(order, DiscrepancyKind.FILL_ON_ENDED_ORDER, detail))
            continue
        if booked + trade.quantity > order.quantity:
            detail = (
                f"trade {trade.trade_id} of {trade.quantity} overfills {booked} of {order.quantity}"
            )
            found.discrepancies.append(_on(order, DiscrepancyKind.QUANTITY_MISMATCH, detail))
            continue
        added[order.order_id] = before + trade.quantity
        found.fills.append(
            ApplyFill(
                command_id=fill_id,
                order_id=order.order_id,
                account_id=order.account_id,
                quantity=trade.quantity,
                price=trade.price,
                fee=quote_fee(trade, order.symbol),
                executed_at=trade.executed_at,
            )
        )
    return added


_PENDING = "pending"
_MATCHED = "matched"
# What the venue's end of an order resolves an in-doubt one as (its fills are booked first).
_ENDED = {
    VenueOrderStatus.CANCELLED: Resolution.CANCELLED,
    VenueOrderStatus.EXPIRED: Resolution.CANCELLED,
    VenueOrderStatus.FILLED: Resolution.LIVE,  # live until its fills, booked above, end it
}


def _compare(
    order: OurOrder,
    word: VenueOrderState | NotAtVenue,
    filled_here: Decimal,
    *,
    now: float,
    window: float,
) -> Discrepancy | Resolve | str:
    """One order beside the venue's word on it: a discrepancy, a resolution, pending or
    matched."""
    if isinstance(word, NotAtVenue):
        return _not_at_venue(order, word, now=now, window=window)
    if word.status is VenueOrderStatus.REJECTED:
        if order.in_doubt:
            return _resolve(order, Resolution.REJECTED, "VENUE_REJECTED")
        if order.status.is_terminal:
            return _MATCHED
        return _on(order, DiscrepancyKind.VENUE_REJECTED_LIVE_ORDER, "rejected at the venue")
    if filled_here != word.filled:
        detail = f"filled {filled_here} here, {word.filled} at the venue"
        return _on(order, DiscrepancyKind.QUANTITY_MISMATCH, detail)
    return _known(order, word.status)


def _not_at_venue(
    order: OurOrder, word: NotAtVenue, *, now: float, window: float
) -> Discrepancy | Resolve | str:
    """The venue says it has no such order."""
    if not order.in_doubt:
        if order.status.is_terminal:
            return _MATCHED  # ended here, and gone from the venue's memory
        return _on(order, DiscrepancyKind.MISSING_AT_VENUE, word.reason)
    sent = order.submitted_at
    if sent is not None and now - sent < window:
        return _PENDING  # the submit may still be on its way: never guess
    return _resolve(order, Resolution.REJECTED, word.reason or VENUE_UNKNOWN)


def _known(order: OurOrder, status: VenueOrderStatus) -> Discrepancy | Resolve | str:
    """The venue has the order, open or ended, and its filled quantity agrees with ours."""
    if status is VenueOrderStatus.OPEN:
        if order.status.is_terminal or order.status is OrderStatus.FILLED:
            detail = f"{order.status} here"
            return _on(order, DiscrepancyKind.OPEN_AT_VENUE_ENDED_HERE, detail)
        if order.in_doubt:
            return _resolve(order, Resolution.LIVE, "VENUE_OPEN")
        return _MATCHED
    ended = _ENDED[status]
    if order.in_doubt:
        return _resolve(order, ended, f"VENUE_{status}")
    if ended is Resolution.CANCELLED and order.status in _FILLABLE:
        # Ended there (our cancel whose answer was lost, an IOC remainder, the venue's expiry):
        # end it here too, with what filled.
        return _resolve(order, Resolution.CANCELLED, f"VENUE_{status}")
    return _MATCHED


def _resolve(order: OurOrder, resolution: Resolution, reason: str) -> Resolve:
    return Resolve(order.order_id, order.account_id, resolution, reason)


def _unique(trades: Iterable[VenueTrade]) -> Sequence[VenueTrade]:
    """Each trade once (a venue page may repeat one), in the venue's time order."""
    by_id = {t.trade_id: t for t in trades}
    return sorted(by_id.values(), key=lambda t: (t.executed_at, t.trade_id))


def _on(order: OurOrder, kind: DiscrepancyKind, detail: str) -> Discrepancy:
    return Discrepancy(kind, order.account_id, order.order_id, detail)


def _unknown(order_id: str, detail: str) -> Discrepancy:
    return Discrepancy(DiscrepancyKind.UNKNOWN_VENUE_ORDER, None, order_id, detail)


def summary_counts(found: Plan) -> Mapping[str, int]:
    """The counts a run reports (before the driver applies it)."""
    return {
        "matched": found.matched,
        "booked": len(found.fills),
        "resolved": len(found.resolutions),
        "pending": found.pending,
        "discrepancies": len(found.discrepancies),
    }
