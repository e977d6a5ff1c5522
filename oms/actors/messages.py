"""The explicit message protocol between the engine's actors.

Frozen slotted dataclasses (pykka hands the same object across threads without copying it).
Replies between actors are messages told back to ``reply_to``, never a blocking ``get()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pykka import ActorRef

from oms.actors.runtime import DispatchFuture
from oms.domain.commands import ApplyFill, CancelOrder, PlaceOrder
from oms.domain.orders import Order
from oms.marketdata import Tick
from oms.risk import RiskDecision
from oms.venue import MatchResult, VenueOrder

OrderCommand = PlaceOrder | CancelOrder | ApplyFill

# -- to the directory -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """Deliver a command to its order's actor; ``reply`` (if any) gets the actor's answer."""

    command: OrderCommand
    reply: DispatchFuture[Any] | None = None


@dataclass(frozen=True, slots=True)
class RouteMany:
    """Deliver many commands in one hop (the stream layer's and the benchmark's batches)."""

    commands: tuple[OrderCommand, ...]


@dataclass(frozen=True, slots=True)
class RouteVenueFills:
    """Executions the venue made on resting orders, per order (from a market tick)."""

    fills: tuple[tuple[str, tuple[ApplyFill, ...]], ...]


@dataclass(frozen=True, slots=True)
class GetOrder:
    """Ask for an order's current state; ``reply`` gets it (None if unknown)."""

    order_id: str
    reply: DispatchFuture[Order | None]


@dataclass(frozen=True, slots=True)
class Idle:
    """From an order actor: nothing in flight, resting at the venue; may be passivated.

    ``handled`` counts the routed messages it has handled, so a stale notice (a command was
    routed to it after it was sent) is recognised and ignored.
    """

    order_id: str
    handled: int


@dataclass(frozen=True, slots=True)
class Finished:
    """From an order actor: the order is terminal and the actor has stopped."""

    order_id: str


# -- to an order actor ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VenueFills:
    """Executions from the simulated venue (clipped to what is left; never refused loudly)."""

    fills: tuple[ApplyFill, ...]


@dataclass(frozen=True, slots=True)
class QueryOrder:
    """Answer with the order's current state."""


@dataclass(frozen=True, slots=True)
class RiskAnswer:
    """The supervisor's decision on a new order (``error``: the book refused to decide)."""

    decision: RiskDecision | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    """The supervisor booked the fills (and released the reservation when asked)."""

    order_id: str
    released: Decimal | None


@dataclass(frozen=True, slots=True)
class Matched:
    """The venue's answer to an arriving order."""

    result: MatchResult
    at: float


@dataclass(frozen=True, slots=True)
class VenueCancelled:
    """The venue's answer to a cancel: what it removed, or None if it no longer held the order."""

    order_id: str
    leaves: Decimal | None


# -- to the risk supervisor -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accept:
    """Check and, if it passes, reserve for a new order; answer ``RiskAnswer`` to ``reply_to``."""

    order: PlaceOrder
    now: float
    reply_to: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Settle:
    """Book these fills; then, if ``release``, release what is left of the reservation."""

    order_id: str
    fills: tuple[ApplyFill, ...]
    release: bool
    reply_to: ActorRef[Any]


# -- to the simulated venue -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submit:
    """An accepted order arrives at the venue; answer ``Matched`` to ``reply_to``."""

    order: VenueOrder
    reply_to: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class CancelAtVenue:
    """Take the order out of the venue; answer ``VenueCancelled`` to ``reply_to`` if given."""

    order_id: str
    reply_to: ActorRef[Any] | None


@dataclass(frozen=True, slots=True)
class MarketTick:
    """A market-data tick: update the book, fill the resting orders it crosses."""

    tick: Tick


__all__ = [
    "Accept",
    "CancelAtVenue",
    "Finished",
    "GetOrder",
    "Idle",
    "MarketTick",
    "Matched",
    "Order",
    "OrderCommand",
    "QueryOrder",
    "RiskAnswer",
    "Route",
    "RouteMany",
    "RouteVenueFills",
    "Settle",
    "Settled",
    "Submit",
    "VenueCancelled",
    "VenueFills",
]
