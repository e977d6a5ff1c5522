"""Properties of the risk book, checked against a plain model of deposits, fills and open orders.

The invariants, in plain words (each is also the docstring of the check that holds it):

1. Nothing is created or destroyed: for every asset, the sum over all accounts (VENUE and FEES
   included) of available plus reserved equals what was deposited.
2. Reservations are never negative, and an account with no open order has nothing reserved.
3. What is reserved in an account is exactly what its open orders' reservations hold.
4. A trading account's available balance is never negative.
5. Positions equal the sum of their fills (buys add, sells subtract).
6. Every ledger entry balances, and each account's balance is its deposit plus its postings.
7. No order was accepted that broke a limit at the time: an accepted order passed the dry-run
   check just before, reserved at most what was available, and no order passed a HALTED switch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from oms.domain.commands import ApplyFill, PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.errors import InsufficientFunds
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from oms.domain.limits import RiskLimits, TradingState
from oms.risk import FEES, VENUE, RiskBook, imbalance

FEE_RATE = Decimal("0.001")
INSTRUMENTS = instrument_map(DEFAULT_INSTRUMENTS)
SYMBOLS = ("BTC-USD", "ETH-USD")
START_PRICES = {"BTC-USD": Decimal("50000.00"), "ETH-USD": Decimal("3000.00")}
ACCOUNTS = ("alice", "bob")
DEPOSITS = {"USD": Decimal("200000"), "BTC": Decimal("2"), "ETH": Decimal("20")}
LIMITS = (
    RiskLimits(),
    RiskLimits(price_collar=Decimal("0.05"), max_order_notional=Decimal("50000")),
    RiskLimits(
        max_position=Decimal("1.5"),
        max_concentration=Decimal("0.8"),
        daily_loss_limit=Decimal("500"),
        velocity_window_s=5.0,
        max_orders_per_window=6,
        max_notional_per_window=Decimal("150000"),
    ),
)


@dataclass
class ModelOrder:
    """What the model remembers of an accepted order."""

    account: str
    symbol: str
    side: Side
    remaining: Decimal
    protection: Decimal
    open: bool = True


class RiskBookMachine(RuleBasedStateMachine):
    """Random places, fills (also replayed and late), releases, marks, kill switch and limits."""

    def __init__(self) -> None:
        super().__init__()
        self.book = RiskBook(INSTRUMENTS, fee_rate=FEE_RATE)
        for account in ACCOUNTS:
            self.book.open_account(account, DEPOSITS)
        self.deposits = {asset: amount * len(ACCOUNTS) for asset, amount in DEPOSITS.items()}
        self.now = 1_000.0
        self.counter = 0
        self.orders: dict[str, ModelOrder] = {}
        self.filled: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.postings: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.booked: list[ApplyFill] = []
        for symbol, price in START_PRICES.items():
            self.book.mark_price(symbol, price, self.now)

    # Rules

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        moves=st.integers(min_value=-300, max_value=300),
        seconds=st.floats(min_value=0, max_value=4000),
    )
    def mark(self, symbol: str, moves: int, seconds: float) -> None:
        """The market moves (by up to 3%) and time passes (sometimes past midnight)."""
        start = START_PRICES[symbol]
        price = (start * (1 + Decimal(moves) / 10_000)).quantize(INSTRUMENTS[symbol].tick_size)
        self.now += seconds
        self.book.mark_price(symbol, price, self.now)

    @rule(
        account=st.sampled_from(ACCOUNTS),
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(Side),
        market=st.booleans(),
        lots=st.integers(min_value=1, max_value=2000),
        offset=st.integers(min_value=-800, max_value=800),
    )
    def place(
        self, *, account: str, symbol: str, side: Side, market: bool, lots: int, offset: int
    ) -> None:
        """Place an order of up to 2,000 lots, LIMIT up to 8% off the last price, or MARKET."""
        instrument = INSTRUMENTS[symbol]
        self.counter += 1
        reference = self.book.last_price(symbol)
        assert reference is not None
        price = None
        if not market:
            price = (reference * (1 + Decimal(offset) / 10_000)).quantize(instrument.tick_size)
        order = PlaceOrder(
            f"c{self.counter}",
            f"o{self.counter}",
            f"x{self.counter}",
            account,
            symbol,
            side,
            OrderType.MARKET if market else OrderType.LIMIT,
            instrument.lot_size * lots * (10 if symbol == "ETH-USD" else 1),
            price,
            TimeInForce.GTC,
            self.now,
        )
        dry_run = self.book.check(order, self.now)
        state = self.book.trading_state(), self.book.trading_state(account)
        before = self.book.balances(account)

        decision = self.book.accept(order, self.now)

        event("accepted" if decision.accepted else f"denied {dry_run[0].reason}")
        assert decision.accepted == (dry_run == ())
        assert decision.denials == dry_run
        if decision.accepted:
            assert TradingState.HALTED not in state
            reservation = decision.reservation
            assert reservation is not None
            assert 0 < reservation.amount <= before[reservation.asset].available
            self.orders[order.order_id] = ModelOrder(
                account, symbol, side, order.quantity, reservation.protection_price
            )
        assert self.book.accept(order, self.now) == decision  # replay is a no-op

    @precondition(lambda self: any(order.remaining for order in self.orders.values()))
    @rule(data=st.data(), share=st.integers(min_value=1, max_value=4))
    def fill(self, data: st.DataObject, share: int) -> None:
        """The venue fills part or all of an order, never beyond its protection price."""
        order_id = data.draw(
            st.sampled_from(sorted(i for i, o in self.orders.items() if o.remaining))
        )
        order = self.orders[order_id]
        instrument = INSTRUMENTS[order.symbol]
        quantity = max(
            instrument.lot_size,
            (order.remaining * share / 4).quantize(instrument.lot_size, ROUND_DOWN),
        )
        improvement = data.draw(st.integers(min_value=0, max_value=200)) * instrument.tick_size
        is_buy = order.side is Side.BUY
        price = order.protection - improvement if is_buy else order.protection + improvement
        price = max(price, instrument.tick_size)
        self._book(order_id, order, quantity, price)

    @precondition(lambda self: any(not order.open for order in self.orders.values()))
    @rule(data=st.data())
    def late_fill(self, data: st.DataObject) -> None:
        """A fill arrives after its order was released: booked against available, or refused."""
        order_id = data.draw(
            st.sampled_from(sorted(i for i, o in self.orders.items() if not o.open))
        )
        order = self.orders[order_id]
        instrument = INSTRUMENTS[order.symbol]
        self._book(order_id, order, instrument.lot_size, order.protection)

    @precondition(lambda self: bool(self.booked))
    @rule(data=st.data())
    def replay_fill(self, data: st.DataObject) -> None:
        """The venue sends an execution it already sent: nothing changes."""
        execution = data.draw(st.sampled_from(self.booked))
        totals, balances = self.book.totals(), self.book.balances(execution.account_id)

        assert self.book.book_fill(execution) is None

        assert self.book.totals() == totals
        assert self.book.balances(execution.account_id) == balances

    @precondition(lambda self: any(order.open for order in self.orders.values()))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        """The order ends (cancelled, expired or settled): what is left reserved goes back."""
        order_id = data.draw(st.sampled_from(sorted(i for i, o in self.orders.items() if o.open)))
        reservation = self.book.open_reservation(order_id)
        assert reservation is not None

        released = self.book.release(order_id)

        assert released == reservation.amount
        assert self.book.release(order_id) == 0
        self.orders[order_id].open = False
        self.orders[order_id].remaining = Decimal(0)

    @rule(
        state=st.sampled_from(TradingState),
        account=st.sampled_from((None, *ACCOUNTS)),
    )
    def kill_switch(self, state: TradingState, account: str | None) -> None:
        """Someone flips a kill switch, globally or for one account."""
        self.book.set_trading_state(state, account)

    @rule(account=st.sampled_from(ACCOUNTS), limits=st.sampled_from(LIMITS))
    def change_limits(self, account: str, limits: RiskLimits) -> None:
        """An account's limits change while orders are open."""
        self.book.set_limits(account, limits)

    def _book(self, order_id: str, order: ModelOrder, quantity: Decimal, price: Decimal) -> None:
        tick = INSTRUMENTS[order.symbol].tick_size
        fee = (quantity * price * FEE_RATE).quantize(tick, ROUND_DOWN)
        self.counter += 1
        execution = ApplyFill(
            f"e{self.counter}", order_id, order.account, quantity, price, fee, self.now
        )
        totals = self.book.totals()
        try:
            entry = self.book.book_fill(execution)
        except InsufficientFunds:
            event("late fill refused")
            assert not order.open  # only a fill with nothing reserved may find too little
            assert self.book.totals() == totals
            return
        assert entry is not None
        assert imbalance(entry.postings) == {}
        for posting in entry.postings:
            self.postings[(posting.account_id, posting.asset)] += posting.amount
        signed = quantity if order.side is Side.BUY else -quantity
        self.filled[(order.account, order.symbol)] += signed
        order.remaining = max(order.remaining - quantity, Decimal(0))
        self.booked.append(execution)

    # Invariants

    @invariant()
    def nothing_created_or_destroyed(self) -> None:
        """For every asset, available plus reserved over all accounts equals what was deposited."""
        totals = self.book.totals()
        for asset, deposited in self.deposits.items():
            assert totals.get(asset, Decimal(0)) == deposited
        assert set(totals) <= {*self.deposits, "SOL"}
        assert totals.get("SOL", Decimal(0)) == 0

    @invariant()
    def reservations_never_negative_and_zero_without_open_orders(self) -> None:
        """Reservations are never negative; an account with no open order has nothing reserved."""
        for account in ACCOUNTS:
            has_open = any(o.open for o in self.orders.values() if o.account == account)
            for balance in self.book.balances(account).values():
                assert balance.reserved >= 0
                if not has_open:
                    assert balance.reserved == 0

    @invariant()
    def reserved_equals_open_reservations(self) -> None:
        """What is reserved in an account is exactly what its open orders' reservations hold."""
        held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for order_id, order in self.orders.items():
            reservation = self.book.open_reservation(order_id)
            assert (reservation is not None) == order.open
            if reservation is not None:
                assert reservation.amount >= 0
                held[(order.account, reservation.asset)] += reservation.amount
        for account in ACCOUNTS:
            for asset, balance in self.book.balances(account).items():
                assert balance.reserved == held[(account, asset)]

    @invariant()
    def available_never_negative(self) -> None:
        """A trading account's available balance is never negative."""
        for account in ACCOUNTS:
            for balance in self.book.balances(account).values():
                assert balance.available >= 0

    @invariant()
    def positions_equal_sum_of_fills(self) -> None:
        """Positions equal the sum of their fills (buys add, sells subtract)."""
        for account in ACCOUNTS:
            positions = self.book.snapshot(account).positions
            for symbol in SYMBOLS:
                held = positions[symbol].quantity if symbol in positions else Decimal(0)
                assert held == self.filled[(account, symbol)]

    @invariant()
    def balances_are_deposits_plus_postings(self) -> None:
        """Each account's balance is its deposit plus the postings of the entries booked to it."""
        for account in (*ACCOUNTS, VENUE, FEES):
            for asset, balance in self.book.balances(account).items():
                deposit = DEPOSITS.get(asset, Decimal(0)) if account in ACCOUNTS else Decimal(0)
                assert balance.total == deposit + self.postings[(account, asset)]


RiskBookMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestRiskBook = RiskBookMachine.TestCase
