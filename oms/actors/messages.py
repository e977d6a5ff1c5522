"""The explicit message protocol between the engine's actors, and the one message style.

The rule, for all of oms: **every message an actor receives, and every effect the order process
emits, is a ``NamedTuple`` made ``distinct``** (``oms.domain.messages``). These here; the risk
supervisor's queries (``oms.actors.supervisor``), the venue's and the directory's own
(``oms.actors.venue``, ``oms.actors.directory``); the order process's effects
(``oms.domain.order_process``). Why a ``NamedTuple``: immutable (pykka hands the same object
across threads without copying it) and, unlike a frozen dataclass, cheap to build. That matters
here: every order makes about eight of them, and a frozen dataclass pays an
``object.__setattr__`` per field (about 0.3 us each on this machine) where a tuple is one
allocation. Why ``distinct``: a plain ``NamedTuple`` equals any tuple with the same fields, so
``Resume() == QueryOrder()``; distinct ones are equal only to their own type. The actors dispatch
on the exact type (``handlers``, keyed by class) and test singletons by identity, never by
equality, so two messages with equal fields never stand in for one another either way.

Domain commands and events (``oms.domain.commands``, ``oms.domain.events``) are not messages of
this kind but records: stored, serialized, replayed. They stay frozen slotted dataclasses, and an
actor that receives one (a routed ``PlaceOrder``, the supervisor's ``OpenAccount``) receives the
record itself. Replies between actors are messages told back to ``reply_to``, never a blocking
``get()``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from pykka import ActorRef

from oms.actors.ports import StoredOrder
from oms.actors.runtime import DispatchFuture
from oms.domain.commands import AmendOrder, ApplyFill, CancelOrder, ExpireOrder, PlaceOrder
from oms.domain.events import DoubtedRequest, VenueWord
from oms.domain.messages import distinct
from oms.domain.orders import Order
from oms.domain.reasons import Denial, RejectionReason
from oms.marketdata import Tick
from oms.risk import RiskDecision
from oms.risk.restore import BookRestore
from oms.venue import MatchResult, VenueOrder

OrderCommand = PlaceOrder | CancelOrder | ApplyFill | AmendOrder | ExpireOrder

# -- to the directory -------------------------------------------------------------------------


@distinct
class Route(NamedTuple):
    """Deliver a command to its order's actor; ``reply`` (if any) gets the actor's answer."""

    command: OrderCommand
    reply: DispatchFuture[Any] | None = None


@distinct
class RouteMany(NamedTuple):
    """Deliver many commands in one hop (the stream layer's and the benchmark's batches)."""

    commands: tuple[OrderCommand, ...]


@distinct
class RouteVenueFills(NamedTuple):
    """Executions the venue made on resting orders, per order (from a market tick)."""

    fills: tuple[tuple[str, tuple[ApplyFill, ...]], ...]


@distinct
class RouteReconciled(NamedTuple):
    """Reconciliation's word on an order whose place is in doubt, to its actor (rehydrated if
    need be); ``reply`` gets whether the order took it (``ReconciledWord``)."""

    order_id: str
    word: ReconciledWord
    reply: DispatchFuture[Any]


@distinct
class RouteTriggered(NamedTuple):
    """Stop orders a market tick triggered, each with its arrival as what it became."""

    triggers: tuple[tuple[str, Triggered], ...]


@distinct
class ForgetOrders(NamedTuple):
    """Stop every live order actor and forget it (their states are durable): the replica's
    share of the accounts changed, and what it owns now is rebuilt from the store."""


@distinct
class ResumeOrders(NamedTuple):
    """After a restart: spawn the actors of these stored open orders and let each go on."""

    orders: tuple[StoredOrder, ...]


@distinct
class Resume(NamedTuple):
    """To a rehydrated order actor after a restart: carry on from the stored state."""


@distinct
class GetOrder(NamedTuple):
    """Ask for an order's current state; ``reply`` gets it (None if unknown)."""

    order_id: str
    reply: DispatchFuture[Order | None]


@distinct
class Idle(NamedTuple):
    """From an order actor: nothing in flight, resting at the venue; may be passivated.

    ``handled`` counts the routed messages it has handled, so a stale notice (a command was
    routed to it after it was sent) is recognised and ignored.
    """

    order_id: str
    handled: int


@distinct
class Finished(NamedTuple):
    """From an order actor: the order is terminal and the actor has stopped."""

    order_id: str


# -- to an order actor ------------------------------------------------------------------------


@distinct
class VenueFills(NamedTuple):
    """Executions from the simulated venue (clipped to what is left; never refused loudly)."""

    fills: tuple[ApplyFill, ...]


@distinct
class QueryOrder(NamedTuple):
    """Answer with the order's current state."""


@distinct
class RiskAnswer(NamedTuple):
    """The supervisor's decision on a new order (``error``: the book refused to decide)."""

    decision: RiskDecision | None
    error: str | None = None


@distinct
class Settled(NamedTuple):
    """The supervisor booked the fills (and released the reservation when asked)."""

    order_id: str
    released: Decimal | None


@distinct
class Matched(NamedTuple):
    """The venue's answer to an arriving order."""

    result: MatchResult
    at: float


@distinct
class Triggered(NamedTuple):
    """The last price crossed the order's stop: it arrived as what it became (``result``)."""

    result: MatchResult
    last_price: Decimal
    at: float


@distinct
class VenueCancelled(NamedTuple):
    """The venue's answer to a cancel: what it removed, or None if it no longer held the order."""

    order_id: str
    leaves: Decimal | None


@distinct
class AmendAnswer(NamedTuple):
    """The supervisor's decision on an amend: the protection price it reserved up to, or the
    denials (``error``: the book refused to decide, e.g. nothing left unfilled)."""

    protection_price: Decimal | None
    denials: tuple[Denial, ...] = ()
    error: str | None = None


@distinct
class VenueAmended(NamedTuple):
    """The venue's answer to an amend: what it holds now (not positive: it refused, nothing
    changed), or None if it no longer held the order."""

    order_id: str
    remaining: Decimal | None
    # Why a venue refused outright (a network venue without an in-place amend), else None.
    refused: RejectionReason | None = None


@distinct
class VenueSaid(NamedTuple):
    """A network venue's word on the order: its answer to the place, or to the query of a doubt
    (``venue_filled``: what it has filled there; the fills arrive on ``executions``)."""

    word: VenueWord
    venue_filled: Decimal


@distinct
class ReconciledWord(NamedTuple):
    """The venue's word on an in-doubt order, as reconciliation read it: taken as the
    gateway's ``VenueSaid`` would be, once whichever comes first; answers whether it was."""

    word: VenueWord
    venue_filled: Decimal


@distinct
class VenueRefusedPlace(NamedTuple):
    """A network venue refused the place outright (``reason``: a ``VENUE_*`` rejection code)."""

    reason: RejectionReason
    detail: str


@distinct
class VenueInDoubt(NamedTuple):
    """A request to a network venue got no answer (``reason``: the port's code): the venue's
    word on the order is asked, and comes as ``VenueSaid``."""

    request: DoubtedRequest
    reason: str


# -- to the risk supervisor -------------------------------------------------------------------


@distinct
class Accept(NamedTuple):
    """Check and, if it passes, reserve for a new order; answer ``RiskAnswer`` to ``reply_to``."""

    order: PlaceOrder
    now: float
    reply_to: ActorRef[Any]


@distinct
class Settle(NamedTuple):
    """Book these fills; then, if ``release``, release what is left of the reservation."""

    order_id: str
    fills: tuple[ApplyFill, ...]
    release: bool
    reply_to: ActorRef[Any]


@distinct
class ReserveAmend(NamedTuple):
    """Check an amend and reserve for it; answer ``AmendAnswer`` to ``reply_to``."""

    order_id: str
    delta: Decimal
    price: Decimal
    now: float
    reply_to: ActorRef[Any]


@distinct
class CommitAmendment(NamedTuple):
    """An amend is done (``delta`` zero: refused): adjust the open order, trim its reservation."""

    order_id: str
    delta: Decimal
    price: Decimal
    venue_remaining: Decimal | None


@distinct
class RestoreBook(NamedTuple):
    """Recovery: put accounts, a checkpoint, reservations and fills back into the book, all in
    one turn; answers ``BookRestored`` (``oms.risk.restore``)."""

    plan: BookRestore


# -- to the simulated venue -------------------------------------------------------------------


@distinct
class Submit(NamedTuple):
    """An accepted order arrives at the venue; answer ``Matched`` to ``reply_to``."""

    order: VenueOrder
    reply_to: ActorRef[Any]


@distinct
class CancelAtVenue(NamedTuple):
    """Take the order out of the venue; answer ``VenueCancelled`` to ``reply_to`` if given."""

    order_id: str
    reply_to: ActorRef[Any] | None


@distinct
class AmendResting(NamedTuple):
    """Change a resting order to ``order``'s terms by ``delta``; answer ``VenueAmended``."""

    order: VenueOrder
    delta: Decimal
    reply_to: ActorRef[Any]


@distinct
class QueryAtVenue(NamedTuple):
    """Ask a network venue for its word on ``order`` (a restored in-doubt order); answer
    ``VenueSaid`` to ``reply_to``."""

    order: VenueOrder
    reply_to: ActorRef[Any]


@distinct
class MarketTick(NamedTuple):
    """A market-data tick: update the book, fill the resting orders it crosses."""

    tick: Tick


@distinct
class ForgetResting(NamedTuple):
    """A rebuild: take every resting order out (the replica's share of the accounts changed;
    what it owns now rests again through ``RestAgain``)."""


@distinct
class RestAgain(NamedTuple):
    """Recovery: put these stored open GTC LIMIT orders back in the book, with what is left of
    them, without matching; answers the ids of those that were resting already (left as they
    are).

    The stored orders themselves, not a copy per order: a rebuild of a million resting orders
    would otherwise hold a million more tuples at once, each one more for the collector to scan.
    """

    orders: tuple[StoredOrder, ...]


__all__ = [
    "Accept",
    "AmendAnswer",
    "AmendResting",
    "CancelAtVenue",
    "CommitAmendment",
    "Finished",
    "ForgetResting",
    "GetOrder",
    "Idle",
    "MarketTick",
    "Matched",
    "Order",
    "OrderCommand",
    "QueryAtVenue",
    "QueryOrder",
    "ReconciledWord",
    "ReserveAmend",
    "RestAgain",
    "RestoreBook",
    "RiskAnswer",
    "Route",
    "RouteMany",
    "RouteReconciled",
    "RouteTriggered",
    "RouteVenueFills",
    "Settle",
    "Settled",
    "Submit",
    "Triggered",
    "VenueAmended",
    "VenueCancelled",
    "VenueFills",
    "VenueInDoubt",
    "VenueRefusedPlace",
    "VenueSaid",
]
