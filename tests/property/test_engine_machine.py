"""The whole engine against a plain model: accounts, symbols, prices, places, cancels, kill switch,
amends, stops (triggered by the market), GTD expiry, cancel-all and replays.

Fills come from the simulated venue as prices move through resting orders (and at once for
marketable ones); a ``drain`` rule moves every market through all resting orders (twice: the
first pass triggers the stops, the second fills what they became).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from oms.config import Settings
from oms.domain.commands import AmendOrder, CancelAll, CancelOrder, PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import OrderAccepted, OrderFilled
from oms.domain.instruments import DEFAULT_INSTRUMENTS
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.transitions import InvalidTransition
from oms.engine.core import EngineCore
from oms.engine.ports import OrderQuery
from oms.marketdata import BookLevel, Tick
from oms.store.memory import MemoryOrderRepository

ACCOUNTS = ("acc-1", "acc-2", "acc-3")
SYMBOLS = ("BTC-USD", "ETH-USD")
INSTRUMENTS = {i.symbol: i for i in DEFAULT_INSTRUMENTS}
START = {"BTC-USD": 60_000, "ETH-USD": 3_000}  # whole quote units
FUNDS = {"USD": Decimal(200_000), "BTC": Decimal(2), "ETH": Decimal(40)}
COLLAR = Decimal("0.10")


@dataclass
class Placed:
    """What the model knows about a placed order when it was placed."""

    command: PlaceOrder
    reference: Decimal  # last price at placement
    halted: bool
    max_quantity: Decimal | None
    max_notional: Decimal | None


def _tick(symbol: str, bid: Decimal, ask: Decimal, size: Decimal, now: float) -> Tick:
    return Tick(symbol, bid, bid, ask, (BookLevel(bid, size),), (BookLevel(ask, size),), now)


class WholeEngine(RuleBasedStateMachine):
    """Conservation, reservations, positions, limits and draining hold after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.engine = EngineCore(
            Settings(simulated_feed=False, max_live_order_actors=4),
            repository=MemoryOrderRepository(),
            default_limits=RiskLimits(price_collar=COLLAR),
            clock=lambda: self.now,
        )
        self.engine.start()
        for account in ACCOUNTS:
            self.engine.open_account(account, FUNDS).get(timeout=5)
        self.prices: dict[str, Decimal] = {}
        for symbol in SYMBOLS:
            self._move(symbol, Decimal(START[symbol]), Decimal(1))
        self.engine.wait_idle()
        self.start_totals = self.engine.totals().get(timeout=5)
        self.placed: dict[str, Placed] = {}
        self.halted_global = False
        self.halted: set[str] = set()
        self.limits: dict[str, RiskLimits] = {a: RiskLimits(price_collar=COLLAR) for a in ACCOUNTS}
        self.drained = False
        self.n = 0
        self.commands: list[PlaceOrder | CancelOrder | AmendOrder] = []  # replayed by ``replay``
        self.ended: dict[str, object] = {}  # terminal orders as first seen: they never change

    def teardown(self) -> None:
        self.engine.stop()

    def _move(self, symbol: str, mid: Decimal, size: Decimal) -> None:
        tick_size = INSTRUMENTS[symbol].tick_size
        self.now += 1
        self.prices[symbol] = mid
        self.engine.on_tick(_tick(symbol, mid - tick_size * 5, mid + tick_size * 5, size, self.now))

    # -- rules -----------------------------------------------------------------------------

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        step=st.integers(min_value=-30, max_value=30),
        size=st.sampled_from(["0.05", "0.5", "5"]),
    )
    def price_moves(self, symbol: str, step: int, size: str) -> None:
        """The market moves by ``step`` tenths of a percent; resting orders it crosses fill."""
        mid = self.prices[symbol] * (1 + Decimal(step) / 1000)
        mid = mid.quantize(INSTRUMENTS[symbol].tick_size)
        self._move(symbol, mid, Decimal(size))
        self.engine.wait_idle()

    @rule(
        account=st.sampled_from(ACCOUNTS),
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(Side),
        kind=st.sampled_from(OrderType),
        tif=st.sampled_from(TimeInForce),
        lots=st.integers(min_value=1, max_value=400),
        offset=st.integers(min_value=-60, max_value=60),
        stop_offset=st.integers(min_value=1, max_value=40),
        lifetime=st.integers(min_value=1, max_value=20),
        post_only=st.booleans(),
    )
    def place(
        self,
        *,
        account: str,
        symbol: str,
        side: Side,
        kind: OrderType,
        tif: TimeInForce,
        lots: int,
        offset: int,
        stop_offset: int,
        lifetime: int,
        post_only: bool,
    ) -> None:
        """Place an order near the market (``offset`` tenths of a percent away); a stop's stop
        price ``stop_offset`` tenths of a percent away on the side it waits for; a GTD order
        lives ``lifetime`` seconds."""
        instrument = INSTRUMENTS[symbol]
        price = None
        if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            price = (self.prices[symbol] * (1 + Decimal(offset) / 1000)).quantize(
                instrument.tick_size
            )
        stop_price = None
        if kind in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT):
            away = Decimal(stop_offset if side is Side.BUY else -stop_offset) / 1000
            stop_price = (self.prices[symbol] * (1 + away)).quantize(instrument.tick_size)
        if kind is OrderType.STOP_MARKET and tif in (TimeInForce.GTC, TimeInForce.GTD):
            tif = TimeInForce.IOC
        expire_at = self.now + lifetime if tif is TimeInForce.GTD else None
        self.n += 1
        command = PlaceOrder(
            f"p{self.n}",
            f"o{self.n}",
            f"c{self.n}",
            account,
            symbol,
            side,
            kind,
            instrument.lot_size * lots * 10,
            price,
            tif,
            self.now,
            None,
            post_only and kind is OrderType.LIMIT and tif in (TimeInForce.GTC, TimeInForce.GTD),
            stop_price,
            expire_at,
        )
        limits = self.limits[account]
        self.placed[command.order_id] = Placed(
            command,
            self.prices[symbol] - instrument.tick_size * 5,
            self.halted_global or account in self.halted,
            limits.max_order_quantity,
            limits.max_order_notional,
        )
        self.engine.place_order(command).get(timeout=5)
        self.commands.append(command)
        self.engine.wait_idle()
        self.drained = False

    @precondition(lambda self: bool(self.placed))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """Cancel some order (refused if it is already done)."""
        order_id = data.draw(st.sampled_from(sorted(self.placed)))
        self.n += 1
        # FILLED and terminal orders refuse the cancel, as they should.
        command = CancelOrder(
            f"x{self.n}", order_id, self.placed[order_id].command.account_id, self.now
        )
        self.commands.append(command)
        with contextlib.suppress(InvalidTransition):
            self.engine.cancel_order(command).get(timeout=5)
        self.engine.wait_idle()

    @precondition(lambda self: bool(self.placed))
    @rule(
        data=st.data(),
        lots=st.one_of(st.none(), st.integers(min_value=1, max_value=400)),
        offset=st.one_of(st.none(), st.integers(min_value=-60, max_value=60)),
    )
    def amend(self, data: st.DataObject, lots: int | None, offset: int | None) -> None:
        """Amend some order's quantity and/or price (refused once FILLED or ended; rejected
        with a reason when it does not rest or risk refuses the new terms)."""
        order_id = data.draw(st.sampled_from(sorted(self.placed)))
        placed = self.placed[order_id].command
        instrument = INSTRUMENTS[placed.symbol]
        quantity = None if lots is None else instrument.lot_size * lots * 10
        price = None
        if offset is not None or quantity is None:
            price = (self.prices[placed.symbol] * (1 + Decimal(offset or 1) / 1000)).quantize(
                instrument.tick_size
            )
        self.n += 1
        command = AmendOrder(f"a{self.n}", order_id, placed.account_id, self.now, quantity, price)
        self.commands.append(command)
        with contextlib.suppress(InvalidTransition):
            self.engine.amend_order(command).get(timeout=5)
        self.engine.wait_idle()

    @rule(seconds=st.integers(min_value=1, max_value=15))
    def time_passes(self, seconds: int) -> None:
        """The clock moves on; GTD orders whose time came expire."""
        self.now += seconds
        self.engine.expire_due()
        self.engine.wait_idle()

    @rule(account=st.sampled_from(ACCOUNTS), symbol=st.one_of(st.none(), st.sampled_from(SYMBOLS)))
    def cancel_all(self, account: str, symbol: str | None) -> None:
        """Cancel every open order of an account (of one symbol)."""
        self.n += 1
        self.engine.cancel_all(CancelAll(f"all{self.n}", account, self.now, symbol)).get(timeout=5)
        self.engine.wait_idle()

    @precondition(lambda self: bool(self.commands))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """Any command sent again changes nothing."""
        command = data.draw(st.sampled_from(self.commands))
        before = self.engine.get_order(command.order_id).get(timeout=5)
        self.engine.submit([command])
        self.engine.wait_idle()
        assert self.engine.get_order(command.order_id).get(timeout=5) == before

    @rule(account=st.one_of(st.none(), st.sampled_from(ACCOUNTS)), halt=st.booleans())
    def kill_switch(self, account: str | None, halt: bool) -> None:
        """Halt or resume one account or everything."""
        state = TradingState.HALTED if halt else TradingState.ACTIVE
        self.engine.set_kill_switch(state, account).get(timeout=5)
        if account is None:
            self.halted_global = halt
        elif halt:
            self.halted.add(account)
        else:
            self.halted.discard(account)

    @rule(
        account=st.sampled_from(ACCOUNTS),
        max_quantity=st.one_of(st.none(), st.sampled_from(["0.5", "2", "20"])),
        max_notional=st.one_of(st.none(), st.sampled_from(["1000", "20000", "100000"])),
    )
    def change_limits(
        self, account: str, max_quantity: str | None, max_notional: str | None
    ) -> None:
        """Replace an account's per-order limits."""
        limits = RiskLimits(
            price_collar=COLLAR,
            max_order_quantity=None if max_quantity is None else Decimal(max_quantity),
            max_order_notional=None if max_notional is None else Decimal(max_notional),
        )
        self.engine.set_limits(account, limits).get(timeout=5)
        self.limits[account] = limits

    @rule()
    def drain(self) -> None:
        """Move every market through every resting order (deep books both ways), then back;
        twice, so that what a stop became on the first pass fills on the second."""
        for symbol in SYMBOLS:
            mid = self.prices[symbol]
            tick_size = INSTRUMENTS[symbol].tick_size
            low, high = tick_size * 10, (mid * 100).quantize(tick_size)
            for _ in range(2):
                self.now += 1
                self.engine.on_tick(
                    Tick(symbol, low, None, low, (), (BookLevel(low, Decimal(10**6)),), self.now)
                )
                self.engine.wait_idle()
                self.now += 1
                self.engine.on_tick(
                    Tick(symbol, high, high, None, (BookLevel(high, Decimal(10**6)),), (), self.now)
                )
                self.engine.wait_idle()
            self._move(symbol, mid, Decimal(1))
        self.engine.wait_idle()
        self.drained = True

    # -- invariants ------------------------------------------------------------------------

    def _orders(self) -> list:  # type: ignore[type-arg]
        return list(self.engine.list_orders(OrderQuery(limit=10**6)).get(timeout=5))

    @invariant()
    def nothing_created_or_destroyed(self) -> None:
        """Per asset the sum over all accounts (incl. VENUE and FEES) of balances plus
        reservations never changes."""
        assert self.engine.totals().get(timeout=5) == self.start_totals

    @invariant()
    def reservations_never_negative_and_zero_without_open_orders(self) -> None:
        """Reservations are never negative and are zero for an account with no open order."""
        open_accounts = {o.account_id for o in self._orders() if not o.is_terminal}
        for account in ACCOUNTS:
            snapshot = self.engine.account(account).get(timeout=5)
            for asset, balance in snapshot.balances.items():
                assert balance.reserved >= 0, (account, asset, balance)
                if account not in open_accounts:
                    assert balance.reserved == 0, (account, asset, balance)

    @invariant()
    def positions_equal_the_sum_of_their_fills(self) -> None:
        """Positions equal the sum of their fills."""
        expected: dict[tuple[str, str], Decimal] = {}
        for order in self._orders():
            for event in self.engine.order_events(order.order_id).get(timeout=5):
                if isinstance(event, OrderFilled):
                    signed = event.quantity if order.side is Side.BUY else -event.quantity
                    key = (order.account_id, order.symbol)
                    expected[key] = expected.get(key, Decimal(0)) + signed
        for account in ACCOUNTS:
            positions = self.engine.account(account).get(timeout=5).positions
            for symbol in SYMBOLS:
                held = positions[symbol].quantity if symbol in positions else Decimal(0)
                assert held == expected.get((account, symbol), Decimal(0)), (account, symbol)

    @invariant()
    def no_accepted_order_broke_a_limit(self) -> None:
        """No order was accepted that broke a limit at the time it was accepted."""
        for order_id, placed in self.placed.items():
            events = self.engine.order_events(order_id).get(timeout=5)
            if not any(isinstance(e, OrderAccepted) for e in events):
                continue
            command = placed.command
            assert not placed.halted, f"{order_id} accepted under the kill switch"
            if placed.max_quantity is not None:
                assert command.quantity <= placed.max_quantity, order_id
            price = command.price or command.stop_price or placed.reference
            if placed.max_notional is not None:
                assert command.quantity * price <= placed.max_notional, order_id
            if command.price is not None:
                assert abs(command.price - placed.reference) <= placed.reference * COLLAR * 2

    @invariant()
    def filled_never_exceeds_quantity(self) -> None:
        """Filled never exceeds quantity (the amended quantity included)."""
        for order in self._orders():
            assert order.filled_quantity <= order.quantity, order

    @invariant()
    def terminal_never_changes(self) -> None:
        """A terminal order never changes again."""
        for order in self._orders():
            if order.is_terminal:
                assert self.ended.setdefault(order.order_id, order) == order, order.order_id

    @invariant()
    def every_order_terminal_once_drained(self) -> None:
        """Once the market has drained them, every order is terminal."""
        if self.drained:
            still_open = [o.order_id for o in self._orders() if not o.is_terminal]
            assert not still_open, still_open


WholeEngine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWholeEngine = WholeEngine.TestCase
