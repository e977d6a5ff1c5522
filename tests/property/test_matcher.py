"""Properties of the simulated matcher, checked against a plain model of what was asked.

The invariants, in plain words (each is also the docstring of the check that holds it):

1. Executions never exceed the order quantity: what an order filled plus what still rests (or
   was cancelled, or was left over) is exactly its quantity.
2. A BUY never executes above its protection price (nor its limit), a SELL never below.
3. FOK yields all or nothing: either executions for the whole quantity, or none at all.
4. Every execution price is on the instrument's tick grid and every quantity is a positive
   multiple of its lot size; the fee is quantity x price x rate rounded down to the price grid.
5. Execution ids are unique, and each order's are numbered 1, 2, 3, ... without gaps.
6. After the price walks through a resting order's price enough, it drains: every tick that
   crosses the best resting order fills at least one lot of it, so the book empties.
7. Cancel removes exactly the remaining quantity: it answers quantity minus what was filled, and
   the order never fills again.
8. The index holds exactly the orders the model says are resting.
9. A tick fills a resting order only from levels at or through its price, and never hands out
   more than its levels show, however many orders it fills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument
from oms.marketdata import BookLevel, Tick
from oms.venue import Execution, Matcher, Outcome, VenueOrder

FEE_RATE = Decimal("0.001")
MID = 10_000  # in ticks: the market moves around here, orders are priced near it


def _price(instrument: Instrument, ticks: int) -> Decimal:
    return Decimal(ticks) * instrument.tick_size


def _qty(instrument: Instrument, lots: int) -> Decimal:
    return Decimal(lots) * instrument.lot_size


# Strategies draw plain numbers (ticks and lots) so they do not depend on the instrument the run
# picked, and are handed straight to the rules: that shrinks far better than drawing inside.
_LEVELS = st.lists(st.tuples(st.integers(1, 3), st.integers(1, 60)), max_size=5)
BOOK_SPECS = st.tuples(st.integers(MID - 25, MID + 25), st.integers(1, 4), _LEVELS, _LEVELS)
"""(best bid, spread, bid levels, ask levels); a level is (gap in ticks from the previous, lots)."""


def _order_specs(*, gtc_limit: bool) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(
        st.sampled_from(Side),
        st.just(OrderType.LIMIT)
        if gtc_limit
        else st.sampled_from((OrderType.MARKET, OrderType.LIMIT)),
        st.just(TimeInForce.GTC)
        if gtc_limit
        else st.sampled_from((TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)),
        st.integers(1, 200),  # lots
        st.integers(MID - 30, MID + 30),  # limit (or reference) price in ticks
        st.integers(0, 3),  # protection stricter than the limit by this many ticks
        st.booleans(),  # protection half a tick off the grid
        st.integers(1, 3),  # account
    )


ORDER_SPECS = _order_specs(gtc_limit=False)
GTC_LIMIT_SPECS = _order_specs(gtc_limit=True)


def make_book(instrument: Instrument, spec: tuple[Any, ...]) -> Tick:
    """A valid L2 snapshot near ``MID`` from a ``BOOK_SPECS`` draw: 0 to 5 levels a side."""
    best_bid, spread, bid_levels, ask_levels = spec

    def side(best: int, step: int, levels: list[tuple[int, int]]) -> tuple[BookLevel, ...]:
        out, price = [], best
        for n, (gap, lots) in enumerate(levels):
            price += step * gap if n else 0
            out.append(BookLevel(_price(instrument, price), _qty(instrument, lots)))
        return tuple(out)

    bids = side(best_bid, -1, bid_levels)
    asks = side(best_bid + spread, +1, ask_levels)
    return Tick(
        instrument.symbol,
        _price(instrument, best_bid),
        bids[0].price if bids else None,
        asks[0].price if asks else None,
        bids,
        asks,
        0.0,
    )


def make_order(instrument: Instrument, order_id: str, spec: tuple[Any, ...]) -> VenueOrder:
    """Any order the risk supervisor could accept, from an ``ORDER_SPECS`` draw.

    A LIMIT order's protection price is its limit, sometimes a little stricter, sometimes half
    a tick off the grid (the venue must round it the safe way); a MARKET order's is the price.
    """
    side, type_, tif, lots, ticks, stricter, off_grid, account = spec
    half_tick = instrument.tick_size / 2 if off_grid else Decimal(0)
    protection_ticks = ticks - stricter if side is Side.BUY else ticks + stricter
    protection = _price(instrument, protection_ticks) + (
        half_tick if side is Side.BUY else -half_tick
    )
    return VenueOrder(
        order_id,
        f"acct-{account}",
        instrument.symbol,
        side,
        type_,
        tif,
        _qty(instrument, lots),
        _price(instrument, ticks) if type_ is OrderType.LIMIT else None,
        protection,
    )


@dataclass
class _Model:
    """What the test knows of one order: the order, its fills, and where it is."""

    order: VenueOrder
    executions: list[Execution] = field(default_factory=list)
    resting: bool = False
    cancelled: Decimal | None = None
    left_over: Decimal | None = None  # IOC/MARKET/FOK remainder the venue dropped

    @property
    def filled(self) -> Decimal:
        return sum((e.quantity for e in self.executions), Decimal(0))


class MatcherMachine(RuleBasedStateMachine):
    """Arrivals, ticks and cancels in any order on one instrument, against a plain model."""

    def __init__(self) -> None:
        super().__init__()
        self.instrument = DEFAULT_INSTRUMENTS[0]
        self.matcher = Matcher(FEE_RATE)
        self.model: dict[str, _Model] = {}
        self.next_id = 0

    @initialize(instrument=st.sampled_from(DEFAULT_INSTRUMENTS))
    def choose_instrument(self, instrument: Instrument) -> None:
        """Every run trades one instrument, so the grids vary between runs."""
        self.instrument = instrument

    @rule(spec=ORDER_SPECS, book=BOOK_SPECS)
    def arrive(self, spec: tuple[Any, ...], book: tuple[Any, ...]) -> None:
        """A new order of any type, side and time in force arrives against a snapshot."""
        self._arrive(spec, book)

    @rule(spec=GTC_LIMIT_SPECS, book=BOOK_SPECS)
    def arrive_gtc_limit(self, spec: tuple[Any, ...], book: tuple[Any, ...]) -> None:
        """A GTC LIMIT order arrives: these are the ones that rest, so they get their own rule."""
        self._arrive(spec, book)

    def _arrive(self, spec: tuple[Any, ...], book_spec: tuple[Any, ...]) -> None:
        self.next_id += 1
        order = make_order(self.instrument, f"o-{self.next_id}", spec)
        book = make_book(self.instrument, book_spec)
        result = self.matcher.on_arrival(order, book)
        model = _Model(order, list(result.executions))
        self.model[order.order_id] = model
        assert result.remaining == order.quantity - model.filled
        if order.time_in_force is TimeInForce.FOK:
            assert result.outcome in (Outcome.FILLED, Outcome.KILLED)
        if result.outcome is Outcome.RESTING:
            assert order.type is OrderType.LIMIT
            assert order.time_in_force is TimeInForce.GTC
            assert result.remaining > 0
            model.resting = True
        elif result.outcome is Outcome.FILLED:
            assert result.remaining == 0
        else:
            assert result.remaining > 0
            model.left_over = result.remaining

    @rule(book_spec=BOOK_SPECS)
    def tick(self, book_spec: tuple[Any, ...]) -> None:
        """The market moves: a new snapshot may cross resting orders."""
        book = make_book(self.instrument, book_spec)
        executions = self.matcher.on_tick(book)
        taken = {Side.BUY: Decimal(0), Side.SELL: Decimal(0)}
        for execution in executions:
            model = self.model[execution.order_id]
            assert model.resting, "only resting orders fill on a tick"
            side = model.order.side
            # Only levels at or through the order's price may fill it, at most what they show.
            crossing = (
                [level for level in book.asks if level.price <= execution.price]
                if side is Side.BUY
                else [level for level in book.bids if level.price >= execution.price]
            )
            assert execution.quantity <= sum(level.quantity for level in crossing)
            taken[side] += execution.quantity
            model.executions.append(execution)
            if model.filled == model.order.quantity:
                model.resting = False
        # One tick's levels are shared once among all the orders it fills.
        assert taken[Side.BUY] <= sum(level.quantity for level in book.asks)
        assert taken[Side.SELL] <= sum(level.quantity for level in book.bids)

    @precondition(lambda self: bool(self.model))
    @rule(pick=st.integers(0, 1000))
    def cancel(self, pick: int) -> None:
        """Cancel removes exactly the remaining quantity (and nothing when not resting)."""
        order_id = f"o-{pick % self.next_id + 1}"
        model = self.model[order_id]
        removed = self.matcher.cancel(order_id)
        if model.resting:
            assert removed == model.order.quantity - model.filled
            model.resting = False
            model.cancelled = removed
        else:
            assert removed is None

    @invariant()
    def executions_never_exceed_the_order_quantity(self) -> None:
        """Filled plus resting, cancelled or left over is exactly the order's quantity."""
        for order_id, model in self.model.items():
            quantity = model.order.quantity
            assert model.filled <= quantity
            if model.resting:
                assert self.matcher.remaining(order_id) == quantity - model.filled
            else:
                assert self.matcher.remaining(order_id) is None
                rest = model.cancelled or model.left_over or Decimal(0)
                assert model.filled + rest == quantity

    @invariant()
    def buys_never_execute_above_and_sells_never_below_their_protection_or_limit(self) -> None:
        """A BUY never executes above its protection/limit price, a SELL never below."""
        for model in self.model.values():
            order = model.order
            for execution in model.executions:
                if order.side is Side.BUY:
                    assert execution.price <= order.protection_price
                    assert order.limit_price is None or execution.price <= order.limit_price
                else:
                    assert execution.price >= order.protection_price
                    assert order.limit_price is None or execution.price >= order.limit_price

    @invariant()
    def fok_orders_fill_all_or_nothing(self) -> None:
        """FOK yields all or nothing."""
        for model in self.model.values():
            if model.order.time_in_force is TimeInForce.FOK:
                assert model.filled in (Decimal(0), model.order.quantity)

    @invariant()
    def executions_are_on_the_grids_with_the_fee_rounded_down(self) -> None:
        """Every price is on the tick grid, every quantity a positive multiple of the lot."""
        tick, lot = self.instrument.tick_size, self.instrument.lot_size
        for model in self.model.values():
            for execution in model.executions:
                assert execution.quantity > 0
                assert execution.quantity % lot == 0
                assert execution.price % tick == 0
                exact = execution.quantity * execution.price * FEE_RATE
                assert execution.fee == exact.quantize(tick, ROUND_DOWN)
                assert 0 <= execution.fee <= exact

    @invariant()
    def execution_ids_are_unique_and_numbered_per_order_without_gaps(self) -> None:
        """Each order's execution ids are order_id:1, order_id:2, ... in the order they came."""
        for order_id, model in self.model.items():
            expected = [f"{order_id}:{n}" for n in range(1, len(model.executions) + 1)]
            assert [e.execution_id for e in model.executions] == expected

    @invariant()
    def the_index_holds_exactly_the_resting_orders(self) -> None:
        """The matcher's resting count is the number of orders the model says rest."""
        assert self.matcher.resting_count() == sum(m.resting for m in self.model.values())


TestMatcherMachine = MatcherMachine.TestCase
TestMatcherMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


@st.composite
def resting_books(draw: st.DrawFn) -> tuple[Instrument, list[VenueOrder]]:
    """Up to 30 GTC LIMIT orders on both sides of MID, none crossing at arrival."""
    instrument = draw(st.sampled_from(DEFAULT_INSTRUMENTS))
    resting = []
    for n in range(draw(st.integers(1, 30))):
        side = draw(st.sampled_from(Side))
        ticks = draw(
            st.integers(MID - 50, MID - 1) if side is Side.BUY else st.integers(MID + 1, MID + 50)
        )
        price = _price(instrument, ticks)
        resting.append(
            VenueOrder(
                f"r-{n}",
                "acct-1",
                instrument.symbol,
                side,
                OrderType.LIMIT,
                TimeInForce.GTC,
                _qty(instrument, draw(st.integers(1, 40))),
                price,
                price,
            )
        )
    return instrument, resting


# One walked-through tick: (ask ticks below MID, bid ticks above MID, lots of each level).
_WALK_TICKS = st.tuples(
    st.integers(MID - 70, MID - 50),
    st.integers(MID + 50, MID + 70),
    st.lists(st.integers(1, 5), min_size=1, max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(setup=resting_books(), walk=st.lists(_WALK_TICKS, min_size=1, max_size=8))
def test_resting_orders_when_the_price_walks_through_them_then_drain(
    setup: tuple[Instrument, list[VenueOrder]], walk: list[tuple[int, int, list[int]]]
) -> None:
    """After the price walks through a resting order's price enough, it drains.

    Every tick below places asks under the lowest resting BUY and bids over the highest resting
    SELL, with any positive quantities (the drawn ticks, repeated); each such tick fills at least
    one lot of the best order on each side, so within (total resting lots) ticks the index is
    empty and every order filled exactly its quantity, at its own price.
    """
    # Arrange
    instrument, resting = setup
    matcher = Matcher(FEE_RATE)
    empty = Tick(instrument.symbol, _price(instrument, MID), None, None, (), (), 0.0)
    for order in resting:
        assert matcher.on_arrival(order, empty).outcome is Outcome.RESTING
    total_lots = sum(int(order.quantity / instrument.lot_size) for order in resting)
    limits = {order.order_id: order.limit_price for order in resting}

    # Act
    filled: dict[str, Decimal] = {}
    for step in range(total_lots):
        ask, bid, lots = walk[step % len(walk)]
        asks = tuple(
            BookLevel(_price(instrument, ask + i), _qty(instrument, n)) for i, n in enumerate(lots)
        )
        bids = tuple(
            BookLevel(_price(instrument, bid - i), _qty(instrument, n)) for i, n in enumerate(lots)
        )
        # Asks under the buys and bids over the sells would be a crossed book in one tick: the
        # walk is two one-sided ticks instead.
        for tick in (
            Tick(instrument.symbol, asks[0].price, None, asks[0].price, (), asks, float(step)),
            Tick(instrument.symbol, bids[0].price, bids[0].price, None, bids, (), float(step)),
        ):
            for execution in matcher.on_tick(tick):
                assert execution.price == limits[execution.order_id]
                filled[execution.order_id] = filled.get(execution.order_id, Decimal(0)) + (
                    execution.quantity
                )
        if not matcher.resting_count():
            break

    # Assert
    assert matcher.resting_count() == 0
    assert filled == {order.order_id: order.quantity for order in resting}
