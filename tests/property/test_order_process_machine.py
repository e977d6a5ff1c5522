"""One order's process alone (no actors) against a small world that answers what it asks.

The world is a risk desk and a venue, each answering its requests in the order they were sent
(as the actors do), a market that fills what rests at the venue (those fills reach the order
later, as they take a hop through the directory), fills and cancels from outside, passivation,
and a restart that loses the request in flight. Any interleaving of those is a rule; after
every step the invariants below hold:

- Filled never exceeds quantity.
- A terminal order never changes.
- Replaying any message changes nothing.
- Reservation effects balance: risk is asked to release at most once, only for an order it
  accepted, and exactly once by the time an accepted order is done.
- The process waits for exactly the requests the world has not answered.
- Done means ended: DONE once the order is terminal and nothing is in flight, reported once.
- An order reports itself idle only when it rests with nothing in flight.
- The order is the fold of the events the process wrote.
- Nothing hangs: with one venue filling it, an order with every answer and fill in is resting,
  working or done.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from oms.domain.commands import ApplyFill, CancelOrder, PlaceOrder
from oms.domain.errors import DomainError
from oms.domain.events import CancelReason, OrderEvent
from oms.domain.order_process import (
    PULL_FROM_VENUE,
    REPORT_FINISHED,
    REPORT_IDLE,
    SUBMIT_TO_VENUE,
    WITHDRAW_FROM_VENUE,
    AskRisk,
    DropVenueFill,
    Effect,
    OrderProcess,
    Phase,
    SettleWithRisk,
)
from oms.domain.orders import Order, fold
from oms.domain.reasons import RejectReason
from tests.unit.domain.order_process_builders import (
    NOW,
    PRICE,
    QUANTITY,
    context,
    place_command,
    snapshot,
)

LOT = Decimal("0.1")
_P = Phase
_OPEN_AT_REST = {_P.RESTING, _P.WORKING, _P.DONE}


class OrderProcessMachine(RuleBasedStateMachine):
    """The process's decisions, checked against the world's bookkeeping."""

    def __init__(self) -> None:
        super().__init__()
        self.ctx = context()
        self.process = OrderProcess(self.ctx)
        self.with_venue = True
        self.risk: deque[Effect] = deque()  # requests to risk, answered in order
        self.venue: deque[Effect] = deque()  # requests to the venue, answered in order
        self.held: Decimal | None = None  # what the venue's book holds of the order
        self.executions = 0  # executions the venue made (their ids count them)
        self.in_transit: list[ApplyFill] = []  # venue fills on their way to the order
        self.delivered: list[ApplyFill] = []
        self.history: list[OrderEvent] = []
        self.sent: list[PlaceOrder | CancelOrder | ApplyFill] = []
        self.n = 0
        self.accepted = 0
        self.releases = 0
        self.finished = 0
        self.outside_fills = 0
        self.terminal: Order | None = None
        self.replay_changed = False
        self.idle_when_busy = False

    # -- the world's side of the outbox ----------------------------------------------------

    def _take(self) -> list[Effect]:
        """Record what the process decided and hand its requests to whoever answers them."""
        self.history.extend(self.ctx.events)
        effects = list(self.ctx.effects)
        self.ctx.events.clear()
        self.ctx.effects.clear()
        for effect in effects:
            if isinstance(effect, AskRisk):
                self.risk.append(effect)
            elif isinstance(effect, SettleWithRisk):
                self.risk.append(effect)
                self.releases += effect.release
            elif effect is SUBMIT_TO_VENUE or effect is PULL_FROM_VENUE:
                self.venue.append(effect)
            elif effect is WITHDRAW_FROM_VENUE:
                self.held = None
            elif effect is REPORT_FINISHED:
                self.finished += 1
            elif effect is REPORT_IDLE:
                process = self.process
                self.idle_when_busy |= process.phase is not _P.RESTING or bool(process.pending)
            else:
                assert isinstance(effect, DropVenueFill), effect
        order = self.process.order
        if order is not None and order.is_terminal and self.terminal is None:
            self.terminal = order
        return effects

    def _id(self, kind: str) -> str:
        self.n += 1
        return f"{kind}-{self.n}"

    def _live(self) -> bool:
        return self.process.phase not in (_P.UNPLACED, _P.DONE)

    # -- rules -----------------------------------------------------------------------------

    @initialize(with_venue=st.booleans())
    def choose_venue(self, with_venue: bool) -> None:
        """A simulated venue answers arrivals, or fills come from outside only."""
        self.with_venue = with_venue

    @precondition(lambda self: self.process.phase is _P.UNPLACED)
    @rule(valid=st.booleans())
    def place(self, valid: bool) -> None:
        """Place the order (an off-lot quantity is invalid as placed)."""
        command = place_command(quantity=QUANTITY if valid else Decimal("0.00001"))
        self.process.place(command, NOW)
        self.sent.append(command)
        self._take()

    @precondition(lambda self: bool(self.risk))
    @rule(accept=st.booleans())
    def risk_answers(self, accept: bool) -> None:
        """Risk answers its oldest request: accept or reject an order, or settle."""
        request = self.risk.popleft()
        if isinstance(request, AskRisk):
            if accept:
                self.accepted += 1
                self.process.risk_accepted(PRICE, NOW, to_venue=self.with_venue)
            else:
                self.process.risk_rejected(RejectReason.INSUFFICIENT_BUYING_POWER, "", NOW)
        else:
            assert isinstance(request, SettleWithRisk)
            self.process.settled(NOW, released=request.release)
        self._take()

    @precondition(lambda self: bool(self.venue))
    @rule(
        lots=st.integers(min_value=0, max_value=10),
        rest=st.sampled_from(["RESTING", "REMAINDER", "KILLED"]),
    )
    def venue_answers(self, lots: int, rest: str) -> None:
        """The venue answers its oldest request: an arrival (fills, and the rest rests or is
        cancelled), or a cancel (what it removed, None if it no longer held the order)."""
        request = self.venue.popleft()
        if request is PULL_FROM_VENUE:
            leaves, self.held = self.held, None
            self.process.venue_cancelled(leaves, NOW)
            self._take()
            return
        assert request is SUBMIT_TO_VENUE
        if rest == "KILLED":
            lots = 0
        fills = (self._execution(LOT * lots),) if lots else ()
        left = QUANTITY - LOT * lots
        if left == 0:
            self.process.arrived(fills, None, NOW, resting=False)
        elif rest == "RESTING":
            self.held = left
            self.process.arrived(fills, None, NOW, resting=True)
        else:
            reason = CancelReason.FOK_KILLED if rest == "KILLED" else CancelReason.REMAINDER
            self.process.arrived(fills, reason, NOW, resting=False)
        self.delivered.extend(fills)
        self._take()

    def _execution(self, quantity: Decimal) -> ApplyFill:
        self.executions += 1
        return ApplyFill(
            f"o-1:{self.executions}", "o-1", "a1", quantity, PRICE, Decimal("0.01"), NOW
        )

    @precondition(lambda self: self.held is not None)
    @rule(lots=st.integers(min_value=1, max_value=10))
    def market_crosses(self, lots: int) -> None:
        """A tick fills part or all of what rests; the fill is on its way to the order."""
        assert self.held is not None
        quantity = min(self.held, LOT * lots)
        self.held -= quantity
        if not self.held:
            self.held = None
        self.in_transit.append(self._execution(quantity))

    @precondition(lambda self: bool(self.in_transit))
    @rule(count=st.integers(min_value=1, max_value=3))
    def venue_fills_arrive(self, count: int) -> None:
        """The oldest fills on their way reach the order (dropped by the directory if it
        ended: its actor is gone)."""
        batch, self.in_transit = self.in_transit[:count], self.in_transit[count:]
        if self.process.phase is _P.DONE:
            return
        self.process.venue_fills(tuple(batch), NOW)
        self.delivered.extend(batch)
        self._take()

    @precondition(lambda self: self._live())
    @rule(lots=st.integers(min_value=1, max_value=12))
    def outside_fill(self, lots: int) -> None:
        """An execution from outside: applied if it fits, refused (changing nothing) if not."""
        command = ApplyFill(self._id("x"), "o-1", "a1", LOT * lots, PRICE, Decimal("0.01"), NOW)
        before = snapshot(self.process)
        try:
            self.process.fill(command)
        except DomainError:
            assert snapshot(self.process) == before
            return
        self.outside_fills += 1
        self.sent.append(command)
        self._take()

    @precondition(lambda self: self._live())
    @rule()
    def cancel(self) -> None:
        """Ask to cancel: refused (changing nothing) once FILLED or ended."""
        command = CancelOrder(self._id("cancel"), "o-1", "a1", NOW)
        before = snapshot(self.process)
        try:
            self.process.cancel(command, NOW)
        except DomainError:
            assert snapshot(self.process) == before
            return
        self.sent.append(command)
        self._take()

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def replay_command(self, data: st.DataObject) -> None:
        """Send again a command the order applied (also once it is done)."""
        command = data.draw(st.sampled_from(self.sent))
        before = snapshot(self.process)
        if isinstance(command, PlaceOrder):
            self.process.place(command, NOW)
        elif isinstance(command, CancelOrder):
            self.process.cancel(command, NOW)
        else:
            self.process.fill(command)
        self.replay_changed |= snapshot(self.process) != before

    @precondition(
        lambda self: bool(self.delivered) and self.process.phase in (_P.RESTING, _P.CANCELLING)
    )
    @rule(data=st.data())
    def venue_fill_again(self, data: st.DataObject) -> None:
        """The venue sends an execution it sent before."""
        fill = data.draw(st.sampled_from(self.delivered))
        before = snapshot(self.process)[:-1]  # all but the effects: idleness may be reported
        self.process.venue_fills((fill,), NOW)
        self.replay_changed |= snapshot(self.process)[:-1] != before
        effects = self._take()
        self.replay_changed |= any(effect is not REPORT_IDLE for effect in effects)

    @precondition(lambda self: self.process.phase is _P.RESTING and not self.process.pending)
    @rule()
    def passivate_and_rehydrate(self) -> None:
        """An idle resting order's actor is stopped and later rebuilt from the store."""
        order = self.process.order
        assert order is not None
        self.process = OrderProcess.restored(
            self.ctx, order, {event.command_id for event in self.history}
        )
        assert self.process.phase is _P.RESTING

    @precondition(
        lambda self: (
            (self.process.phase is _P.AWAITING_RISK and len(self.risk) == 1)
            or (self.process.phase is _P.ARRIVING and not self.risk and len(self.venue) == 1)
        )
    )
    @rule()
    def restart_and_resume(self) -> None:
        """A restart loses the request in flight (risk's answer to a NEW order, or the venue's
        to an arrival); the order is rebuilt from its history and resumed."""
        self.risk.clear()
        self.venue.clear()
        order = self.process.order
        assert order is not None
        self.process = OrderProcess.restored(
            self.ctx, order, {event.command_id for event in self.history}
        )
        assert self.process.phase in (_P.PLACED, _P.RESTING)
        self.process.resume(NOW)
        self._take()

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def filled_never_exceeds_quantity(self) -> None:
        """Filled never exceeds quantity."""
        order = self.process.order
        if order is not None:
            assert order.filled_quantity <= order.quantity

    @invariant()
    def a_terminal_order_never_changes(self) -> None:
        """A terminal order never changes."""
        if self.terminal is not None:
            assert self.process.order == self.terminal

    @invariant()
    def replaying_any_message_changes_nothing(self) -> None:
        """Replaying any message changes nothing."""
        assert not self.replay_changed

    @invariant()
    def reservation_effects_balance(self) -> None:
        """Risk is asked to release at most once, only for an order it accepted, and exactly
        once by the time an accepted order is done."""
        assert self.releases <= self.accepted <= 1
        if self.process.phase is _P.DONE:
            assert self.releases == self.accepted

    @invariant()
    def the_process_waits_for_exactly_what_is_unanswered(self) -> None:
        """The process waits for exactly the requests the world has not answered."""
        assert self.process.pending == len(self.risk) + len(self.venue)

    @invariant()
    def done_means_ended(self) -> None:
        """DONE once the order is terminal and nothing is in flight, reported once."""
        order = self.process.order
        done = self.process.phase is _P.DONE
        assert self.finished == int(done)
        if done:
            assert order is not None
            assert order.is_terminal
            assert not self.process.pending
        elif order is not None and order.is_terminal:
            assert self.process.pending, "a terminal order waits only for answers"

    @invariant()
    def idle_only_when_resting_with_nothing_in_flight(self) -> None:
        """An order reports itself idle only when it rests with nothing in flight."""
        assert not self.idle_when_busy

    @invariant()
    def the_order_is_the_fold_of_its_events(self) -> None:
        """The order is the fold of the events the process wrote."""
        if self.history:
            assert fold(self.history) == self.process.order

    @invariant()
    def nothing_hangs(self) -> None:
        """With one venue filling it, an order with every answer and fill in is resting,
        working or done."""
        if self.outside_fills and self.with_venue:
            return  # two venues filling one order can leave it waiting (see PHASE_MOVES)
        if self.process.order is None or self.risk or self.venue or self.in_transit:
            return
        assert self.process.phase in _OPEN_AT_REST, self.process.phase


OrderProcessMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderProcessMachine = OrderProcessMachine.TestCase
