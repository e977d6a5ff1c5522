"""The order actor: owns one order's state and walks it through risk, the venue and settlement.

Every change is a domain event applied with ``apply`` (the transition table decides) and
recorded in the journal. The actor talks only in messages: it tells the risk supervisor and the
venue, and they tell their answers back; it never blocks on a future.

Life of an order here:
  PlaceOrder -> OrderPlaced (NEW) -> Accept -> RiskAnswer -> OrderAccepted / OrderRejected
  -> Submit -> Matched (executions + outcome) -> OrderFilled* -> Settle (book the fills, and
  release the reservation once nothing more can fill) -> Settled -> OrderSettled / OrderCancelled.
A resting order waits for ``VenueFills`` (routed by the directory) or a cancel; once nothing is
in flight it tells the directory it is ``Idle`` so the directory may passivate it.

A cancel is final only when the venue has confirmed it *and* every fill the venue made before
confirming has arrived: the venue reports the quantity it removed (its leaves), and the order is
closed once ``filled == quantity - leaves``. That is why a fill crossing a cancel in flight never
meets a CANCELLED order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar

from pykka import ActorDeadError, ActorRef
from pykka._envelope import Envelope

from oms.actors.journal import Journal
from oms.actors.messages import (
    Accept,
    CancelAtVenue,
    Finished,
    GetOrder,
    Idle,
    Matched,
    QueryOrder,
    Resume,
    RiskAnswer,
    Route,
    RouteVenueFills,
    Settle,
    Settled,
    Submit,
    VenueCancelled,
    VenueFills,
)
from oms.actors.ports import StoredOrder
from oms.actors.runtime import DispatchedActor, Dispatcher, DispatchFuture, tell
from oms.domain.commands import ApplyFill, CancelOrder, PlaceOrder
from oms.domain.enums import TERMINAL_STATUSES, OrderStatus, OrderType
from oms.domain.errors import DomainError, InvalidOrder
from oms.domain.events import (
    CancelReason,
    OrderEvent,
    new_order_accepted,
    new_order_cancelled,
    new_order_filled,
    new_order_placed,
    new_order_rejected,
    new_order_settled,
)
from oms.domain.instruments import Instrument
from oms.domain.orders import Order, apply
from oms.domain.transitions import InvalidTransition, Trigger
from oms.venue import MatchResult, Outcome, VenueOrder

logger = logging.getLogger(__name__)

_FILLED = OrderStatus.FILLED
_NEW = OrderStatus.NEW
_TERMINAL = (
    TERMINAL_STATUSES  # ``order.status in _TERMINAL`` is ``order.is_terminal``, two calls less
)
_RESTING = Outcome.RESTING
_LIMIT = OrderType.LIMIT
# Builds a message (a NamedTuple) straight from a tuple of its fields, skipping the generated
# ``__new__``'s Python frame: half the cost, and these are made several times per order.
_new = tuple.__new__
_ROUTED = (PlaceOrder, CancelOrder, ApplyFill)  # the commands the directory routes here
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
        "record",
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
        self.record = journal.record  # bound once: every event of every order goes through it
        self.instruments = instruments
        self.clock = clock
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
        VenueCancelled: "on_venue_cancelled",
        QueryOrder: "on_query",
        Resume: "on_resume",
    }

    # The order's state between messages. The immutable defaults live on the class, so a fresh
    # actor (one per order) stores only what differs from them.
    order: Order | None = None
    handled = 0  # routed messages handled: the directory's staleness check for Idle
    in_flight = 0  # requests told to risk or the venue and not answered yet
    at_venue = False  # resting in the simulated venue's index
    closing: CancelReason | None = None  # the rest will never fill, and why
    close_at: Decimal | None = None  # filled quantity at which a closing order ends
    releasing = False  # the Settle that releases the reservation has been sent
    released = False  # ... and the supervisor has answered it
    arriving = False  # Submit sent, the venue's Matched not back yet
    cancel_wanted = False  # a cancel waits for the venue (arrival or cancel answer)
    cancel_id: str | None = None  # the CancelOrder the OrderCancelled will answer
    # The requests whose commands the risk answer and the requested cancel answer, for their
    # events (``oms.correlation``); None when the command came without one.
    place_request: str | None = None
    cancel_request: str | None = None

    def __init__(
        self,
        dispatcher: Dispatcher,
        ctx: OrderContext,
        restored: StoredOrder | None = None,
    ) -> None:
        """A fresh actor, or one rehydrated from the store (then it rests at the venue)."""
        super().__init__(dispatcher)
        self.ctx = ctx
        self.applied: set[str] = set()
        if restored is not None:
            self.order = restored.order
            self.applied = {event.command_id for event in restored.events}
            self.at_venue = not restored.order.is_terminal and restored.order.status is not _NEW
            if restored.events and restored.events[0].request_id is not None:
                self.place_request = restored.events[0].request_id  # a NEW order asks risk again

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
        order = self.order
        if isinstance(message, _ROUTED):
            again: Any = Route(message, reply)
        elif order is not None and type(message) is VenueFills:
            again = RouteVenueFills(((order.order_id, message.fills),))
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

    def on_place(self, command: PlaceOrder) -> Order:
        """Create the order (NEW) and ask risk; a replayed place changes nothing."""
        self.handled += 1
        if self.order is not None:
            return self.order
        ctx = self.ctx
        now = ctx.clock()
        request = command.request_id
        if request is not None:
            self.place_request = request
        placed = self._record(
            new_order_placed(
                command.order_id,
                1,
                command.command_id,
                command.created_at,
                command.client_order_id,
                command.account_id,
                command.symbol,
                command.side,
                command.type,
                command.quantity,
                command.price,
                command.time_in_force,
                request,
            ),
        )
        invalid = self._invalid(command)
        if invalid is not None:
            self._record(
                new_order_rejected(
                    command.order_id,
                    2,
                    command.command_id,
                    now,
                    invalid.code,
                    str(invalid),
                    request,
                ),
            )
            self._finish()
            return placed
        risk = ctx.risk
        assert risk is not None, "the engine wires the supervisor before any order"
        self.in_flight += 1
        tell(risk, _new(Accept, (command, now, self._actor_ref)))
        if ctx.fail_at:
            ctx.fail_at -= 1
            if not ctx.fail_at:  # after risk was asked: the turn is half done, as a bug leaves it
                raise InjectedFailure(f"injected failure placing {command.order_id}")
        return placed

    def on_cancel(self, command: CancelOrder) -> Order:
        """Cancel what is left; refused (``InvalidTransition``) once FILLED or terminal."""
        self.handled += 1
        order = self._current()
        if command.command_id in self.applied:
            return order
        if order.status is _NEW:
            # Legal from NEW: cancelled before risk answered; an acceptance that still arrives
            # is released at once (see on_risk_answer).
            self._event_cancel(command.command_id, CancelReason.REQUESTED, command.request_id)
            return self._current()
        if order.status is _FILLED or order.is_terminal:
            raise InvalidTransition(order.status, Trigger.CANCEL)
        self.applied.add(command.command_id)
        if self.cancel_id is None:
            self.cancel_id = command.command_id
            self.cancel_request = command.request_id
        if self.closing is not None or self.cancel_wanted:
            return order  # already on its way out
        if self.at_venue:
            self._cancel_at_venue()
        elif self.arriving:
            self.cancel_wanted = True  # sent to the venue when it answers the arrival
        else:
            self.closing, self.close_at = CancelReason.REQUESTED, order.filled_quantity
            self._step()
        return order

    def on_fill(self, fill: ApplyFill) -> Order:
        """An external execution: refused loudly if it does not fit (overfill, terminal)."""
        self.handled += 1
        if fill.command_id in self.applied:
            return self._current()
        self._apply_fills((fill,))
        self._step()
        order = self._current()
        if order.status is _FILLED and self.at_venue:
            # Filled elsewhere: take the leftover out of the simulated venue (its later fills,
            # if any were in flight, find nothing left and are dropped).
            self.at_venue = False
            venue = self.ctx.venue
            assert venue is not None
            tell(venue, CancelAtVenue(order.order_id, None))
        return order

    def on_venue_fills(self, message: VenueFills) -> None:
        """Executions the simulated venue made on this resting order."""
        self.handled += 1
        order = self._current()
        fills: list[ApplyFill] = []
        left = order.remaining_quantity
        for fill in message.fills:
            if fill.command_id in self.applied:
                continue
            if order.status is _FILLED or order.is_terminal or left <= 0:
                logger.info(
                    "dropped venue fill %s: %s has nothing left",
                    fill.command_id,
                    order.order_id,
                    extra={"order_id": order.order_id, "account_id": order.account_id},
                )
                continue
            if fill.quantity > left:
                fill = _clip(fill, left, self.ctx.instruments[order.symbol])  # noqa: PLW2901
            left -= fill.quantity
            fills.append(fill)
        if fills:
            self._apply_fills(tuple(fills))
        self._step()

    def on_resume(self, _message: Resume) -> None:
        """After a restart, an open order that does not rest at the venue carries on.

        NEW: risk never answered durably, so it is asked again (with the order as placed);
        it may accept or reject it now, with risk's reason (a MARKET order asked before the
        first tick since the restart is rejected ``NO_MARKET_PRICE``: nothing bounds its price). FILLED: its release is settled, then SETTLED.
        ACCEPTED or PARTIALLY_FILLED (a MARKET, IOC or FOK order whose arrival at the venue
        was not recorded): its moment to match has passed, so the rest is cancelled
        (REMAINDER) and its reservation released. A GTC LIMIT order is not resumed: recovery
        puts it back in the venue's book and its actor is rehydrated when it is next needed.
        """
        self.handled += 1
        order = self._current()
        self.at_venue = False
        if order.is_terminal:
            self._finish()
            return
        if order.status is _NEW:
            risk = self.ctx.risk
            assert risk is not None, "the engine wires the supervisor before any order"
            self.in_flight += 1
            tell(risk, _new(Accept, (_as_placed(order), self.ctx.clock(), self._actor_ref)))
            return
        if order.status is not _FILLED and self.closing is None:
            self.closing, self.close_at = CancelReason.REMAINDER, order.filled_quantity
        self._step()

    def on_query(self, _message: QueryOrder) -> Order:
        """The current state (a query is not a routed command: it does not count)."""
        return self._current()

    # -- answers ---------------------------------------------------------------------------

    def on_risk_answer(self, answer: RiskAnswer) -> None:
        """Accepted: to the venue. Rejected: REJECTED. Already cancelled: release at once."""
        self.in_flight -= 1
        order = self._current()
        decision = answer.decision
        ctx = self.ctx
        now = ctx.clock()
        if order.status in _TERMINAL:  # cancelled while risk was deciding
            if decision is not None and decision.accepted:
                self._send_settle((), release=True)
            self._step()
            return
        if decision is None or not decision.accepted:
            if decision is None:
                reason, detail = answer.error or "RISK_ERROR", ""
            else:
                reason = str(decision.denials[0].reason)
                detail = "; ".join(str(denial) for denial in decision.denials)
            self._record(
                new_order_rejected(
                    order.order_id,
                    order.version + 1,
                    _place_id(self),
                    now,
                    reason,
                    detail,
                    self.place_request,
                )
            )
            self._finish()
            return
        reservation = decision.reservation
        assert reservation is not None, "an accepted decision carries its reservation"
        order_id = order.order_id
        self._record(
            new_order_accepted(
                order_id,
                order.version + 1,
                f"place:{order_id}",
                now,
                reservation.protection_price,
                self.place_request,
            )
        )
        venue = ctx.venue
        if venue is None:  # no simulated venue: fills come from outside only
            return
        self.in_flight += 1
        self.arriving = True
        tell(
            venue,
            _new(
                Submit,
                (
                    _new(
                        VenueOrder,
                        (
                            order_id,
                            order.account_id,
                            order.symbol,
                            order.side,
                            order.type,
                            order.time_in_force,
                            order.quantity,
                            order.price,
                            reservation.protection_price,
                        ),
                    ),
                    self._actor_ref,
                ),
            ),
        )

    def on_matched(self, message: Matched) -> None:
        """The venue's answer to the arrival: fills, and whether the rest rests or is gone."""
        self.in_flight -= 1
        self.arriving = False
        result: MatchResult = message.result
        at = message.at
        fills = tuple([execution.to_fill(at) for execution in result.executions])
        outcome = result.outcome
        if outcome is _RESTING:
            self.at_venue = True
            if self.cancel_wanted:
                self._cancel_at_venue()
        else:
            reason = _OUTCOME_REASON.get(outcome)
            if reason is not None:
                order = self._current()
                filled = order.filled_quantity + sum(f.quantity for f in fills)
                self.closing, self.close_at = reason, filled
        if fills:
            self._apply_fills(fills)
        self._step()

    def on_venue_cancelled(self, message: VenueCancelled) -> None:
        """The venue removed the order (or no longer held it: its fills are on their way)."""
        self.in_flight -= 1
        self.at_venue = False
        self.cancel_wanted = False
        order = self._current()
        if message.leaves is not None and not order.is_terminal and order.status is not _FILLED:
            self.closing = CancelReason.REQUESTED
            self.close_at = order.quantity - message.leaves
        self._step()

    def on_settled(self, message: Settled) -> None:
        """Fills booked; after the releasing settle the order ends SETTLED or CANCELLED."""
        self.in_flight -= 1
        if message.released is not None:
            self.released = True
        self._step()

    # -- the machinery ---------------------------------------------------------------------

    def _apply_fills(self, fills: tuple[ApplyFill, ...]) -> None:
        """Apply the fills (all or, on the first refusal, only those before it) and book them."""
        applied = 0
        try:
            order = self._current()
            for fill in fills:
                order = self._record(
                    new_order_filled(
                        order.order_id,
                        order.version + 1,
                        fill.command_id,
                        fill.executed_at,
                        fill.quantity,
                        fill.price,
                        fill.fee,
                    )
                )
                applied += 1
        finally:
            if applied:
                booked = fills if applied == len(fills) else fills[:applied]
                self._send_settle(booked, release=self._done_filling())

    def _step(self) -> None:
        """After any change: end the order, release its reservation, or announce idleness."""
        if self.released:
            if not self.in_flight:
                self._end()
            return
        order = self._current()
        if order.status in _TERMINAL:  # REJECTED, or cancelled while NEW: nothing was reserved
            self._finish()
            return
        if not self.releasing and self._done_filling():
            self._send_settle((), release=True)
        elif not self.in_flight:
            self._maybe_idle()

    def _end(self) -> None:
        """Everything booked and released: SETTLED if filled, else CANCELLED; then stop."""
        order = self._current()
        now = self.ctx.clock()
        if order.status is _FILLED:
            self._record(
                new_order_settled(
                    order.order_id, order.version + 1, f"settle:{order.order_id}", now
                )
            )
        elif not order.is_terminal:
            reason = self.closing or CancelReason.REQUESTED
            # Carries the cancel's own id when one was asked for, so that a replay of that
            # CancelOrder after the actor is gone is still recognised from the history.
            if reason is CancelReason.REQUESTED and self.cancel_id:
                command_id, request = self.cancel_id, self.cancel_request
            else:
                command_id, request = f"cancel:{order.order_id}", None
            self._record(
                new_order_cancelled(
                    order.order_id, order.version + 1, command_id, now, reason, request
                )
            )
        self._finish()

    def _cancel_at_venue(self) -> None:
        venue = self.ctx.venue
        assert venue is not None
        self.in_flight += 1
        self.cancel_wanted = True
        tell(venue, CancelAtVenue(self._current().order_id, self.actor_ref))

    def _done_filling(self) -> bool:
        order = self.order
        assert order is not None, "only an existing order fills"
        if order.status is _FILLED:
            return True
        return self.closing is not None and order.filled_quantity == self.close_at

    def _send_settle(self, fills: tuple[ApplyFill, ...], *, release: bool) -> None:
        if release:
            if self.releasing:
                release = False
            else:
                self.releasing = True
        risk = self.ctx.risk
        assert risk is not None
        self.in_flight += 1
        order = self.order
        assert order is not None, "only an existing order settles"
        tell(risk, _new(Settle, (order.order_id, fills, release, self._actor_ref)))

    def _event_cancel(self, command_id: str, reason: CancelReason, request: str | None) -> None:
        order = self._current()
        self._record(
            new_order_cancelled(
                order.order_id, order.version + 1, command_id, self.ctx.clock(), reason, request
            )
        )
        if not self.in_flight:
            self._finish()

    def _maybe_idle(self) -> None:
        if self.at_venue and not self.in_flight and self.closing is None:
            directory = self.ctx.directory
            if directory is not None:
                tell(directory, _new(Idle, (self._current().order_id, self.handled)))

    def _finish(self) -> None:
        """Terminal and nothing in flight: stop, and let the directory forget the actor."""
        if self.in_flight:
            return
        order = self.order
        assert order is not None, "only an existing order finishes"
        self._stop()
        directory = self.ctx.directory
        if directory is not None:
            tell(directory, _new(Finished, (order.order_id,)))

    def _record(self, event: OrderEvent) -> Order:
        """Apply ``event`` (the table decides), remember its command, journal it; the new order."""
        order = apply(self.order, event)  # raises, changing nothing, if the table says no
        self.order = order
        self.applied.add(event.command_id)
        self.ctx.record(order, event)
        return order

    def _current(self) -> Order:
        order = self.order
        if order is None:
            raise DomainError("no such order yet", code="UNKNOWN_ORDER")
        return order

    def _invalid(self, command: PlaceOrder) -> InvalidOrder | None:
        """Validation that needs no state (the API does it at the door; streams may not)."""
        try:
            instrument = self.ctx.instruments.get(command.symbol)
            if instrument is None:
                return InvalidOrder(f"{command.symbol!r} is not listed", code="UNKNOWN_INSTRUMENT")
            instrument.check_quantity(command.quantity)
            if command.type is _LIMIT:
                if command.price is None:
                    return InvalidOrder("a LIMIT order needs a price", code="PRICE_REQUIRED")
                instrument.check_price(command.price)
            elif command.price is not None:
                return InvalidOrder("a MARKET order takes no price", code="PRICE_NOT_ALLOWED")
        except InvalidOrder as invalid:
            return invalid
        return None


def _place_id(actor: OrderActor) -> str:
    """The command id an acceptance or rejection answers: the order's PlaceOrder."""
    return f"place:{actor._current().order_id}"


def _as_placed(order: Order) -> PlaceOrder:
    """The PlaceOrder an order was placed with, rebuilt from its state (risk reads only these)."""
    return PlaceOrder(
        f"place:{order.order_id}",
        order.order_id,
        order.client_order_id,
        order.account_id,
        order.symbol,
        order.side,
        order.type,
        order.quantity,
        order.price,
        order.time_in_force,
        order.created_at,
    )


def _clip(fill: ApplyFill, quantity: Decimal, instrument: Instrument) -> ApplyFill:
    """A simulated fill cut to what the order has left (it was also filled from outside)."""
    exponent = instrument.tick_size.as_tuple().exponent
    assert isinstance(exponent, int)
    fee = (fill.fee * quantity / fill.quantity).quantize(Decimal(1).scaleb(exponent), ROUND_DOWN)
    return ApplyFill(
        fill.command_id, fill.order_id, fill.account_id, quantity, fill.price, fee, fill.executed_at
    )
