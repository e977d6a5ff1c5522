"""The order actor: a thin shell around one order's ``OrderProcess``.

What the order does is decided by ``oms.domain.order_process.OrderProcess``, a pure state machine
(see its module for the life of an order and its phase table). This actor only hands it each
message it receives, records the events it decided in the journal, and turns its effects into
messages: ``Accept`` and ``Settle`` to the risk supervisor, ``Submit`` and ``CancelAtVenue`` to the
venue, ``Idle`` and ``Finished`` to the directory. It talks only in messages and never blocks on
a future; risk and the venue tell their answers back.

The actor keeps what is about actors, not orders: the count of routed messages the directory
checks an ``Idle`` notice against, the fault-injection hook, and the rerouting of messages that
reach it after it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pykka import ActorDeadError, ActorRef
from pykka._envelope import Envelope

from oms.actors.journal import Journal
from oms.actors.messages import (
    Accept,
    AmendAnswer,
    AmendResting,
    CancelAtVenue,
    CommitAmendment,
    Finished,
    GetOrder,
    Idle,
    Matched,
    QueryAtVenue,
    QueryOrder,
    ReserveAmend,
    Resume,
    RiskAnswer,
    Route,
    RouteTriggered,
    RouteVenueFills,
    Settle,
    Settled,
    Submit,
    Triggered,
    VenueAmended,
    VenueCancelled,
    VenueFills,
    VenueInDoubt,
    VenueRefusedPlace,
    VenueSaid,
)
from oms.actors.ports import StoredOrder
from oms.actors.runtime import DispatchedActor, Dispatcher, DispatchFuture, tell
from oms.domain.commands import AmendOrder, ApplyFill, CancelOrder, ExpireOrder, PlaceOrder
from oms.domain.errors import DomainError
from oms.domain.events import CancelReason
from oms.domain.instruments import Instrument
from oms.domain.order_process import (
    PULL_FROM_VENUE,
    QUERY_VENUE,
    REPORT_FINISHED,
    REPORT_IDLE,
    SUBMIT_TO_VENUE,
    WITHDRAW_FROM_VENUE,
    AmendAtVenue,
    AskRisk,
    CommitAmend,
    DropVenueFill,
    Effect,
    OrderProcess,
    Phase,
    ProcessContext,
    ReserveForAmend,
    SettleWithRisk,
)
from oms.domain.orders import Order
from oms.domain.reasons import OrderCheckReason, RejectionReason, known_rejection_reason
from oms.venue import Outcome, VenueOrder

logger = logging.getLogger(__name__)

_RESTING = Outcome.RESTING
_AWAITING_RISK = Phase.AWAITING_RISK
# Builds a message (a NamedTuple) straight from a tuple of its fields, skipping the generated
# ``__new__``'s Python frame: half the cost, and these are made several times per order.
_new = tuple.__new__
# The commands the directory routes here.
_ROUTED = (PlaceOrder, CancelOrder, ApplyFill, AmendOrder, ExpireOrder)
# The arrivals the venue refused outright, with the rejection's reason code and detail.
_REFUSED_AT_VENUE = {
    Outcome.POST_ONLY_REJECTED: (
        OrderCheckReason.POST_ONLY_WOULD_CROSS,
        "a post-only order would have taken liquidity on arrival",
    ),
    Outcome.STOP_WRONG_SIDE: (
        OrderCheckReason.STOP_PRICE_WRONG_SIDE,
        "the last price had already passed the stop price on arrival (a BUY stop must be above "
        "it, a SELL stop below)",
    ),
    Outcome.MARKET_DATA_STALE: (
        OrderCheckReason.MARKET_DATA_STALE,
        "the symbol's market data has stopped: a MARKET order would fill against an old book",
    ),
}
_OUTCOME_REASON = {
    Outcome.CANCELLED_REMAINDER: CancelReason.REMAINDER,
    Outcome.KILLED: CancelReason.FOK_KILLED,
}


class OrderContext:
    """What every order actor of an engine shares: its peers, journal, clock and instruments."""

    __slots__ = (
        "clock",
        "directory",
        "fail_at",
        "instruments",
        "journal",
        "process",
        "record_all",
        "risk",
        "venue",
    )

    def __init__(
        self,
        *,
        journal: Journal,
        instruments: Mapping[str, Instrument],
        clock: Callable[[], float],
    ) -> None:
        self.journal = journal
        # Bound once: every message's events go through it (one call, not one per event).
        self.record_all = journal.record_all
        self.instruments = instruments
        self.clock = clock
        # The order processes' shared context and outbox: one dispatcher thread runs them all.
        self.process = ProcessContext(instruments)
        self.directory: ActorRef[Any] | None = None
        self.risk: ActorRef[Any] | None = None
        self.venue: ActorRef[Any] | None = None
        # Fault injection (``OMS_FAULT_FAIL_ORDER_AT``): the actor of the n-th order placed
        # from now raises halfway through its first turn; 0 never.
        self.fail_at = 0


class InjectedFailure(RuntimeError):
    """A failure the fault-injection setting asked for (never raised otherwise)."""

    code = "INJECTED_FAILURE"


class OrderActor(DispatchedActor):
    """One order's actor (not in pykka's registry: the directory is the registry of orders)."""

    registered = False
    handlers: ClassVar[dict[type, str]] = {
        PlaceOrder: "on_place",
        RiskAnswer: "on_risk_answer",
        Matched: "on_matched",
        Settled: "on_settled",
        VenueFills: "on_venue_fills",
        ApplyFill: "on_fill",
        CancelOrder: "on_cancel",
        AmendOrder: "on_amend",
        ExpireOrder: "on_expire",
        Triggered: "on_triggered",
        AmendAnswer: "on_amend_answer",
        VenueAmended: "on_venue_amended",
        VenueCancelled: "on_venue_cancelled",
        VenueSaid: "on_venue_said",
        VenueRefusedPlace: "on_venue_refused_place",
        VenueInDoubt: "on_venue_in_doubt",
        QueryOrder: "on_query",
        Resume: "on_resume",
    }

    handled = 0  # routed messages handled: the directory's staleness check for Idle

    def __init__(
        self,
        dispatcher: Dispatcher,
        ctx: OrderContext,
        restored: StoredOrder | None = None,
    ) -> None:
        """A fresh actor, or one rehydrated from the store (then it rests at the venue)."""
        super().__init__(dispatcher)
        self.ctx = ctx
        if restored is None:
            self.process = OrderProcess(ctx.process)
        else:
            events = restored.events
            self.process = OrderProcess.restored(
                ctx.process,
                restored.order,
                (event.command_id for event in events),
                events[0].request_id if events else None,  # a NEW order asks risk again
                external=ctx.venue is None,
            )

    @property
    def order(self) -> Order | None:
        """The order as its process holds it (None before the PlaceOrder)."""
        return self.process.order

    # -- after the actor stopped -----------------------------------------------------------

    def _dispatch(self, item: Any) -> None:
        """The runtime's dispatch, except that a stopped actor hands routed messages back.

        The directory routes to the actor it holds as live. A message it queued before the actor
        stopped (the order ended on an earlier message, or the actor was passivated or failed)
        would be refused: an ask would fail with ``ActorDeadError`` (a 500 at the API) and a
        tell would be lost. Routed again, it meets the order as the store has it. The dispatcher
        calls this only for an ask or a stopped actor, never for a tell to a live one.
        """
        if self._stop_flag._set and self._reroute(item):
            return
        super()._dispatch(item)

    def _reroute(self, item: Any) -> bool:
        """Send a routed message that reached this stopped actor back through the directory."""
        if type(item) is Envelope:
            message, reply = item.message, item.reply_to
        else:
            message, reply = item, None
        directory = self.ctx.directory
        if directory is None or not (reply is None or isinstance(reply, DispatchFuture)):
            return False
        order = self.process.order
        if isinstance(message, _ROUTED):
            again: Any = Route(message, reply)
        elif order is not None and type(message) is VenueFills:
            again = RouteVenueFills(((order.order_id, message.fills),))
        elif order is not None and type(message) is Triggered:
            again = RouteTriggered(((order.order_id, message),))
        elif order is not None and type(message) is QueryOrder and reply is not None:
            again = GetOrder(order.order_id, reply)
        else:
            return False
        try:
            tell(directory, again)
        except ActorDeadError:  # the engine is stopping: refused, as it would have been
            return False
        return True

    # -- routed commands -------------------------------------------------------------------
    # Each hands the message to the process and then sends what it decided, in a ``finally``:
    # a refusal raises having decided nothing, but a venue batch refused halfway has applied
    # (and must book) the fills before the refused one.

    def on_place(self, command: PlaceOrder) -> Order:
        """Create the order (NEW) and ask risk; a replayed place changes nothing."""
        self.handled += 1
        process = self.process
        fresh = process.order is None
        ctx = self.ctx
        try:
            placed = process.place(command, ctx.clock())
        finally:
            self._emit()
        if ctx.fail_at and fresh and process.phase is _AWAITING_RISK:
            ctx.fail_at -= 1
            if not ctx.fail_at:  # after risk was asked: the turn is half done, as a bug leaves it
                raise InjectedFailure(f"injected failure placing {command.order_id}")
        return placed

    def on_cancel(self, command: CancelOrder) -> Order:
        """Cancel what is left; refused (``InvalidTransition``) once FILLED or terminal."""
        self.handled += 1
        try:
            return self.process.cancel(command, self.ctx.clock())
        finally:
            self._emit()

    def on_amend(self, command: AmendOrder) -> Order:
        """Amend price and/or quantity; refused (``InvalidTransition``) once FILLED or terminal."""
        self.handled += 1
        try:
            return self.process.amend(command, self.ctx.clock())
        finally:
            self._emit()

    def on_expire(self, command: ExpireOrder) -> Order:
        """A GTD order's time came: EXPIRED once what is left is out (too late: nothing)."""
        self.handled += 1
        try:
            return self.process.expire(command, self.ctx.clock())
        finally:
            self._emit()

    def on_triggered(self, message: Triggered) -> None:
        """The market crossed this stop order's price: it arrived as what it became."""
        self.handled += 1
        result = message.result
        outcome = result.outcome
        try:
            self.process.triggered(
                message.last_price,
                tuple([execution.to_fill(message.at) for execution in result.executions]),
                _OUTCOME_REASON.get(outcome),
                self.ctx.clock(),
                resting=outcome is _RESTING,
            )
        finally:
            self._emit()

    def on_fill(self, fill: ApplyFill) -> Order:
        """An external execution: refused loudly if it does not fit (overfill, terminal)."""
        self.handled += 1
        try:
            return self.process.fill(fill)
        finally:
            self._emit()

    def on_venue_fills(self, message: VenueFills) -> None:
        """Executions the simulated venue made on this resting order."""
        self.handled += 1
        try:
            self.process.venue_fills(message.fills, self.ctx.clock())
        finally:
            self._emit()

    def on_resume(self, _message: Resume) -> None:
        """After a restart, an open order that does not rest at the venue carries on.

        NEW: risk is asked again (it may accept or reject it now, with risk's reason: a MARKET
        order asked before the first tick since the restart is rejected ``NO_MARKET_PRICE``).
        FILLED: settled. ACCEPTED or PARTIALLY_FILLED (a MARKET, IOC or FOK order whose arrival
        at the venue was not recorded): the rest is cancelled (REMAINDER) and its reservation
        released. A GTC LIMIT order is not resumed: recovery puts it back in the venue's book
        and its actor is rehydrated when it is next needed. See ``OrderProcess.resume``.
        """
        self.handled += 1
        try:
            self.process.resume(self.ctx.clock())
        finally:
            self._emit()

    def on_query(self, _message: QueryOrder) -> Order:
        """The current state (a query is not a routed command: it does not count)."""
        order = self.process.order
        if order is None:
            raise DomainError("no such order yet", code="UNKNOWN_ORDER")
        return order

    # -- answers ---------------------------------------------------------------------------

    def on_risk_answer(self, answer: RiskAnswer) -> None:
        """Accepted: to the venue. Rejected: REJECTED. Already cancelled: release at once."""
        decision = answer.decision
        ctx = self.ctx
        try:
            if decision is not None and decision.accepted:
                reservation = decision.reservation
                assert reservation is not None, "an accepted decision carries its reservation"
                self.process.risk_accepted(
                    reservation.protection_price, ctx.clock(), to_venue=ctx.venue is not None
                )
            else:
                reason: RejectionReason
                if decision is None:
                    reason, detail = _risk_error(answer.error)
                else:
                    reason = decision.denials[0].reason
                    detail = "; ".join(str(denial) for denial in decision.denials)
                self.process.risk_rejected(reason, detail, ctx.clock())
        finally:
            self._emit()

    def on_amend_answer(self, answer: AmendAnswer) -> None:
        """Risk reserved for the amend (on to the venue) or refused it (the order stays)."""
        ctx = self.ctx
        try:
            if answer.protection_price is not None:
                self.process.amend_reserved(answer.protection_price, ctx.clock())
            else:
                reason: RejectionReason
                if answer.denials:
                    reason = answer.denials[0].reason
                    detail = "; ".join(str(denial) for denial in answer.denials)
                else:
                    reason, detail = _risk_error(answer.error)
                self.process.amend_denied(reason, detail, ctx.clock())
        finally:
            self._emit()

    def on_venue_amended(self, message: VenueAmended) -> None:
        """The venue changed the resting order (or refused, or no longer held it)."""
        try:
            self.process.venue_amended(message.remaining, self.ctx.clock(), refused=message.refused)
        finally:
            self._emit()

    def on_matched(self, message: Matched) -> None:
        """The venue's answer to the arrival: fills, and whether the rest rests or is gone."""
        result = message.result
        at = message.at
        outcome = result.outcome
        try:
            refused = _REFUSED_AT_VENUE.get(outcome)
            if refused is not None:
                self.process.refused_at_venue(*refused, self.ctx.clock())
                return
            self.process.arrived(
                tuple([execution.to_fill(at) for execution in result.executions]),
                _OUTCOME_REASON.get(outcome),
                self.ctx.clock(),
                resting=outcome is _RESTING,
            )
        finally:
            self._emit()

    def on_venue_said(self, message: VenueSaid) -> None:
        """A network venue's word on the order (its answer to the place, or to a query)."""
        try:
            explained = self.process.venue_said(
                message.word, message.venue_filled, self.ctx.clock()
            )
            if not explained:
                order = self.process.order
                logger.warning(
                    "venue's word %s on %s cannot be true of it: left in doubt for "
                    "reconciliation", message.word.value, order.order_id if order else "?",
                )  # fmt: skip
        finally:
            self._emit()

    def on_venue_refused_place(self, message: VenueRefusedPlace) -> None:
        """A network venue refused the place: REJECTED with its reason, reservation released."""
        try:
            self.process.refused_at_venue(message.reason, message.detail, self.ctx.clock())
        finally:
            self._emit()

    def on_venue_in_doubt(self, message: VenueInDoubt) -> None:
        """A place or cancel got no answer: IN_DOUBT until the venue's word."""
        try:
            self.process.in_doubt(message.request, message.reason, self.ctx.clock())
        finally:
            self._emit()

    def on_venue_cancelled(self, message: VenueCancelled) -> None:
        """The venue removed the order (or no longer held it: its fills are on their way)."""
        try:
            self.process.venue_cancelled(message.leaves, self.ctx.clock())
        finally:
            self._emit()

    def on_settled(self, message: Settled) -> None:
        """Fills booked; after the releasing settle the order ends SETTLED or CANCELLED."""
        try:
            self.process.settled(self.ctx.clock(), released=message.released is not None)
        finally:
            self._emit()

    # -- what the process decided ----------------------------------------------------------

    def _emit(self) -> None:
        """Record the events the process wrote and send its effects; leave the outbox empty.

        The outbox is shared by every order on this dispatcher, so it is emptied even when
        recording or sending fails: the next order must not inherit this one's decisions. The
        effects are told in the order they were decided, each as the message it stands for;
        the four every order makes are tested first and sent inline (a call per effect, or a
        type test where an identity test will do, shows in the time per order).
        """
        ctx = self.ctx
        out = ctx.process
        events = out.events
        effects = out.effects
        try:
            order = self.process.order
            if order is None:  # refused before anything was decided
                return
            if events:
                # With the order as it stands now: the journal keeps one order per id.
                ctx.record_all(order, events)
            for effect in effects:
                if effect is SUBMIT_TO_VENUE:
                    assert ctx.venue is not None, "only an engine with a venue submits to it"
                    tell(ctx.venue, _new(Submit, (_venue_order(order), self._actor_ref)))
                elif effect is REPORT_FINISHED:
                    self._stop()
                    if ctx.directory is not None:
                        tell(ctx.directory, _new(Finished, (order.order_id,)))
                elif isinstance(effect, SettleWithRisk):
                    assert ctx.risk is not None, "the engine wires the supervisor first"
                    settle = (order.order_id, effect.fills, effect.release, self._actor_ref)
                    tell(ctx.risk, _new(Settle, settle))
                elif isinstance(effect, AskRisk):
                    assert ctx.risk is not None, "the engine wires the supervisor first"
                    tell(ctx.risk, _new(Accept, (effect.order, effect.now, self._actor_ref)))
                else:
                    self._send_other(effect, order)
        finally:
            events.clear()
            effects.clear()

    def _send_other(self, effect: Effect, order: Order) -> None:
        """The effects made at most once per resting order, or only in a race."""
        if effect is REPORT_IDLE:
            directory = self.ctx.directory
            if directory is not None:
                tell(directory, _new(Idle, (order.order_id, self.handled)))
        elif effect is PULL_FROM_VENUE or effect is WITHDRAW_FROM_VENUE:
            venue = self.ctx.venue
            assert venue is not None, "only an order at the venue is taken out of it"
            reply = self._actor_ref if effect is PULL_FROM_VENUE else None
            tell(venue, CancelAtVenue(order.order_id, reply))
        elif isinstance(effect, ReserveForAmend):
            assert self.ctx.risk is not None, "the engine wires the supervisor first"
            tell(
                self.ctx.risk,
                ReserveAmend(
                    order.order_id, effect.delta, effect.price, effect.now, self._actor_ref
                ),
            )
        elif isinstance(effect, AmendAtVenue):
            venue = self.ctx.venue
            assert venue is not None, "only an order at the venue is amended there"
            terms = _venue_order(order)._replace(
                limit_price=effect.price, protection_price=effect.price
            )
            tell(venue, AmendResting(terms, effect.delta, self._actor_ref))
        elif isinstance(effect, CommitAmend):
            assert self.ctx.risk is not None, "the engine wires the supervisor first"
            tell(
                self.ctx.risk,
                CommitAmendment(order.order_id, effect.delta, effect.price, effect.venue_remaining),
            )
        elif effect is QUERY_VENUE:
            venue = self.ctx.venue
            assert venue is not None, "only an order sent to a venue is in doubt there"
            tell(venue, QueryAtVenue(_venue_order(order), self._actor_ref))
        elif isinstance(effect, DropVenueFill):
            logger.info(
                "dropped venue fill %s: %s has nothing left", effect.fill.command_id, order.order_id
            )
        else:  # an effect this shell does not know: a bug, never skipped in silence
            raise TypeError(f"unknown effect {effect!r}")


def _risk_error(code: str | None) -> tuple[RejectionReason, str]:
    """The rejection for a risk book that raised instead of deciding: the error's code when it
    is a rejection reason (an unlisted instrument, an invalid quantity), else ``RISK_ERROR``
    with the code as the detail."""
    if code is None:
        return OrderCheckReason.RISK_ERROR, ""
    known = known_rejection_reason(code)
    return (OrderCheckReason.RISK_ERROR, code) if known is None else (known, "")


def _venue_order(order: Order) -> VenueOrder:
    """The accepted order as the venue sees it (its protection price from the acceptance)."""
    protection_price = order.protection_price
    assert protection_price is not None, "an accepted order has its protection price"
    return _new(
        VenueOrder,
        (
            order.order_id,
            order.account_id,
            order.symbol,
            order.side,
            order.type,
            order.time_in_force,
            order.quantity,
            order.price,
            protection_price,
            order.post_only,
            # A triggered stop is at the venue as what it became (it only re-arrives after a
            # restart, when recovery restores it as such).
            order.stop_price if order.triggered_at is None else None,
        ),
    )
