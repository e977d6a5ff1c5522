"""One order against a plain model: any sequence of places, cancels, fills and replays.

The order runs through the real engine (order actor, directory, risk supervisor, journal) with
external fills only, so every step is the engine's decision, checked against a few dicts.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from oms.domain.commands import ApplyFill, CancelOrder, PlaceOrder
from oms.domain.enums import TERMINAL_STATUSES, OrderStatus, OrderType, Side, TimeInForce
from oms.domain.events import OrderEvent
from oms.domain.limits import TradingState
from oms.domain.orders import apply
from oms.domain.transitions import ORDER_TRANSITIONS
from tests.unit.engine_helpers import make_engine, tick

QUANTITY = Decimal("1")
LOT = Decimal("0.1")
_S = OrderStatus
# Which statuses may follow which (the table's moves), for checking an observed history.
LEGAL_MOVES = {(before, after) for (before, _), after in ORDER_TRANSITIONS.items()}
OPEN = {_S.ACCEPTED, _S.PARTIALLY_FILLED}


class OneOrder(RuleBasedStateMachine):
    """The engine's view of one order must match a model that only knows the table."""

    def __init__(self) -> None:
        super().__init__()
        self.engine = make_engine(simulated_venue=False)
        self.engine.on_tick(tick(bid="100.00", ask="100.10"))
        self.engine.wait_idle()
        self.order_id = "the-order"
        self.sent: list[PlaceOrder | CancelOrder | ApplyFill] = []
        self.n = 0
        # the model
        self.placed = False
        self.status: OrderStatus | None = None
        self.filled = Decimal(0)
        # what was observed
        self.history: list[OrderEvent] = []
        self.statuses: list[OrderStatus] = []
        self.max_filled = Decimal(0)
        self.replay_changed = False

    def teardown(self) -> None:
        self.engine.stop()

    def _id(self, kind: str) -> str:
        self.n += 1
        return f"{kind}-{self.n}"

    def _observe(self) -> None:
        self.engine.wait_idle()
        self.history = list(self.engine.order_events(self.order_id).get(timeout=5))
        order = self.engine.get_order(self.order_id).get(timeout=5)
        if order is not None:
            if not self.statuses or self.statuses[-1] is not order.status:
                self.statuses.append(order.status)
            self.max_filled = max(self.max_filled, order.filled_quantity)
            self.observed = order

    # -- rules -----------------------------------------------------------------------------

    @precondition(lambda self: not self.placed)
    @rule(halted=st.booleans(), side=st.sampled_from(Side))
    def place(self, halted: bool, side: Side) -> None:
        """Place the order; with the kill switch on, risk rejects it."""
        state = TradingState.HALTED if halted else TradingState.ACTIVE
        self.engine.set_kill_switch(state).get(timeout=5)
        command = PlaceOrder(
            self._id("place"),
            self.order_id,
            "cl",
            "a1",
            "BTC-USD",
            side,
            OrderType.LIMIT,
            QUANTITY,
            Decimal("100.00"),
            TimeInForce.GTC,
            1000.0,
        )
        self.engine.place_order(command).get(timeout=5)
        self.sent.append(command)
        self.placed = True
        self.status = _S.REJECTED if halted else _S.ACCEPTED
        self._observe()

    @precondition(lambda self: self.placed)
    @rule(lots=st.integers(min_value=1, max_value=12))
    def fill(self, lots: int) -> None:
        """An execution of ``lots`` lots: applied if it fits, refused otherwise."""
        quantity = LOT * lots
        command = ApplyFill(
            self._id("fill"),
            self.order_id,
            "a1",
            quantity,
            Decimal("100.00"),
            Decimal("0.01"),
            1000.0,
        )
        fits = self.status in OPEN and self.filled + quantity <= QUANTITY
        try:
            self.engine.apply_fill(command).get(timeout=5)
            applied = True
        except Exception:  # noqa: BLE001 - the refusal is what the model predicts
            applied = False
        assert applied == fits, f"fill of {quantity} at {self.status}: applied={applied}"
        if fits:
            self.sent.append(command)
            self.filled += quantity
            self.status = _S.SETTLED if self.filled == QUANTITY else _S.PARTIALLY_FILLED
        self._observe()

    @precondition(lambda self: self.placed)
    @rule()
    def cancel(self) -> None:
        """Ask to cancel: only an open order can be cancelled."""
        command = CancelOrder(self._id("cancel"), self.order_id, "a1", 1000.0)
        allowed = self.status in OPEN
        try:
            self.engine.cancel_order(command).get(timeout=5)
            accepted = True
        except Exception:  # noqa: BLE001 - the refusal is what the model predicts
            accepted = False
        assert accepted == allowed, f"cancel at {self.status}: accepted={accepted}"
        if allowed:
            self.sent.append(command)
            self.status = _S.CANCELLED
        self._observe()

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """Send again a command the order already applied."""
        command = data.draw(st.sampled_from(self.sent))
        before = list(self.engine.order_events(self.order_id).get(timeout=5))
        route = {
            PlaceOrder: self.engine.place_order,
            CancelOrder: self.engine.cancel_order,
            ApplyFill: self.engine.apply_fill,
        }[type(command)]
        route(command).get(timeout=5)  # type: ignore[operator]
        self._observe()
        self.replay_changed = self.history != before

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def status_matches_model(self) -> None:
        """The engine's status is the model's."""
        if self.placed:
            assert self.observed.status is self.status

    @invariant()
    def status_moves_only_along_the_table(self) -> None:
        """Status moves only along the table."""
        statuses = [_S.NEW]
        order = None
        for event in self.history:
            order = apply(order, event)
            if order.status is not statuses[-1]:
                statuses.append(order.status)
        for before, after in itertools.pairwise(statuses):
            assert (before, after) in LEGAL_MOVES, f"{before} -> {after}"

    @invariant()
    def terminal_states_never_change(self) -> None:
        """Terminal states never change."""
        for i, status in enumerate(self.statuses):
            if status in TERMINAL_STATUSES:
                assert self.statuses[i:] == [status], self.statuses

    @invariant()
    def filled_never_decreases_nor_exceeds_quantity(self) -> None:
        """Filled quantity never decreases and never exceeds quantity."""
        if self.placed:
            assert self.observed.filled_quantity == self.max_filled
            assert self.observed.filled_quantity <= QUANTITY
            assert self.observed.filled_quantity == self.filled

    @invariant()
    def sequence_numbers_have_no_gaps(self) -> None:
        """Sequence numbers have no gaps."""
        assert [e.sequence for e in self.history] == list(range(1, len(self.history) + 1))

    @invariant()
    def replaying_a_command_is_a_no_op(self) -> None:
        """Replaying a command is a no-op."""
        assert not self.replay_changed


OneOrder.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOneOrder = OneOrder.TestCase
