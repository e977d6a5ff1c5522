"""The explicit message protocol between the engine's actors.

``NamedTuple``s, as pykka's own messages are: immutable (pykka hands the same object across
threads without copying it) and, unlike a frozen dataclass, cheap to build. That matters here:
every order makes about eight of them, and a frozen dataclass pays an ``object.__setattr__`` per
field (about 0.3 us each on this machine) where a tuple is one allocation. The actors dispatch on
the exact type, so two messages with equal fields never stand in for one another.
Replies between actors are messages told back to ``reply_to``, never a blocking ``get()``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from pykka import ActorRef

from oms.actors.ports import StoredOrder
from oms.actors.runtime import DispatchFuture
from oms.domain.commands import AmendOrder, ApplyFill, CancelOrder, ExpireOrder, PlaceOrder
from oms.domain.orders import Order
from oms.domain.reasons import Denial
from oms.marketdata import Tick
from oms.risk import RiskDecision
from oms.venue import MatchResult, VenueOrder

OrderCommand = PlaceOrder | CancelOrder | ApplyFill | AmendOrder | ExpireOrder

# -- to the directory -------------------------------------------------------------------------


class Route(NamedTuple):
    """Deliver a command to its order's actor; ``reply`` (if any) gets the actor's answer."""

    command: OrderCommand
    reply: DispatchFuture[Any] | None = None


class RouteMany(NamedTuple):
    """Deliver many commands in one hop (the stream layer's and the benchmark's batches)."""

    commands: tuple[OrderCommand, ...]


class RouteVenueFills(NamedTuple):
    """Executions the venue made on resting orders, per order (from a market tick)."""

    fills: tuple[tuple[str, tuple[ApplyFill, ...]], ...]


class RouteTriggered(NamedTuple):
    """Stop orders a market tick triggered, each with its arrival as what it became."""

    triggers: tuple[tuple[str, Triggered], ...]


class ForgetOrders(NamedTuple):
    """Stop every live order actor and forget it (their states are durable): the replica's
    share of the accounts changed, and what it owns now is rebuilt from the store."""


class ResumeOrders(NamedTuple):
    """After a restart: spawn the actors of these stored open orders and let each go on."""

    orders: tuple[StoredOrder, ...]


class Resume(NamedTuple):
    """To a rehydrated order actor after a restart: carry on from the stored state."""


class GetOrder(NamedTuple):
    """Ask for an order's current state; ``reply`` gets it (None if unknown)."""

    order_id: str
    reply: DispatchFuture[Order | None]


class Idle(NamedTuple):
    """From an order actor: nothing in flight, resting at the venue; may be passivated.

    ``handled`` counts the routed messages it has handled, so a stale notice (a command was
    routed to it after it was sent) is recognised and ignored.
    """

    order_id: str
    handled: int


class Finished(NamedTuple):
    """From an order actor: the order is terminal and the actor has stopped."""

    order_id: str


# -- to an order actor ------------------------------------------------------------------------


class VenueFills(NamedTuple):
    """Executions from the simulated venue (clipped to what is left; never refused loudly)."""

    fills: tuple[ApplyFill, ...]


class QueryOrder(NamedTuple):
    """Answer with the order's current state."""


class RiskAnswer(NamedTuple):
    """The supervisor's decision on a new order (``error``: the book refused to decide)."""

    decision: RiskDecision | None
    error: str | None = None


class Settled(NamedTuple):
    """The supervisor booked the fills (and released the reservation when asked)."""

    order_id: str
    released: Decimal | None


class Matched(NamedTuple):
    """The venue's answer to an arriving order."""

    result: MatchResult
    at: float


class Triggered(NamedTuple):
    """The last price crossed the order's stop: it arrived as what it became (``result``)."""

    result: MatchResult
    last_price: Decimal
    at: float


class VenueCancelled(NamedTuple):
    """The venue's answer to a cancel: what it removed, or None if it no longer held the order."""

    order_id: str
    leaves: Decimal | None


class AmendAnswer(NamedTuple):
    """The supervisor's decision on an amend: the protection price it reserved up to, or the
    denials (``error``: the book refused to decide, e.g. nothing left unfilled)."""

    protection_price: Decimal | None
    denials: tuple[Denial, ...] = ()
    error: str | None = None


class VenueAmended(NamedTuple):
    """The venue's answer to an amend: what it holds now (not positive: it refused, nothing
    changed), or None if it no longer held the order."""

    order_id: str
    remaining: Decimal | None


# -- to the risk supervisor -------------------------------------------------------------------


class Accept(NamedTuple):
    """Check and, if it passes, reserve for a new order; answer ``RiskAnswer`` to ``reply_to``."""

    order: PlaceOrder
    now: float
    reply_to: ActorRef[Any]


class Settle(NamedTuple):
    """Book these fills; then, if ``release``, release what is left of the reservation."""

    order_id: str
    fills: tuple[ApplyFill, ...]
    release: bool
    reply_to: ActorRef[Any]


class ReserveAmend(NamedTuple):
    """Check an amend and reserve for it; answer ``AmendAnswer`` to ``reply_to``."""

    order_id: str
    delta: Decimal
    price: Decimal
    now: float
    reply_to: ActorRef[Any]


class CommitAmendment(NamedTuple):
    """An amend is done (``delta`` zero: refused): adjust the open order, trim its reservation."""

    order_id: str
    delta: Decimal
    price: Decimal
    venue_remaining: Decimal | None


# -- to the simulated venue -------------------------------------------------------------------


class Submit(NamedTuple):
    """An accepted order arrives at the venue; answer ``Matched`` to ``reply_to``."""

    order: VenueOrder
    reply_to: ActorRef[Any]


class CancelAtVenue(NamedTuple):
    """Take the order out of the venue; answer ``VenueCancelled`` to ``reply_to`` if given."""

    order_id: str
    reply_to: ActorRef[Any] | None


class AmendResting(NamedTuple):
    """Change a resting order to ``order``'s terms by ``delta``; answer ``VenueAmended``."""

    order: VenueOrder
    delta: Decimal
    reply_to: ActorRef[Any]


class MarketTick(NamedTuple):
    """A market-data tick: update the book, fill the resting orders it crosses."""

    tick: Tick


__all__ = [
    "Accept",
    "AmendAnswer",
    "AmendResting",
    "CancelAtVenue",
    "CommitAmendment",
    "Finished",
    "GetOrder",
    "Idle",
    "MarketTick",
    "Matched",
    "Order",
    "OrderCommand",
    "QueryOrder",
    "ReserveAmend",
    "RiskAnswer",
    "Route",
    "RouteMany",
    "RouteTriggered",
    "RouteVenueFills",
    "Settle",
    "Settled",
    "Submit",
    "Triggered",
    "VenueAmended",
    "VenueCancelled",
    "VenueFills",
]
