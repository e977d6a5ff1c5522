"""Post-only, GTD expiry, stop orders and cancel-all end to end through the engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest

from oms.config import Settings
from oms.domain.commands import CancelAll
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.events import OrderExpired, OrderTriggered
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.orders import Order
from oms.domain.reasons import OrderCheckReason, RejectReason
from oms.engine.core import EngineCore
from oms.store.memory import MemoryOrderRepository
from tests.unit.engine_helpers import FUNDS, place, tick


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> Iterator[EngineCore]:
    e = EngineCore(
        Settings(simulated_feed=False),
        repository=MemoryOrderRepository(),
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        clock=clock,
    )
    e.start()
    for account in ("a1", "a2"):
        e.open_account(account, FUNDS).get(timeout=5)
    e.on_tick(tick())  # bid 100.00, ask 100.10
    e.wait_idle()
    yield e
    e.stop()


def _order(engine: EngineCore, order_id: str) -> Order:
    engine.wait_idle()
    order = engine.get_order(order_id).get(timeout=5)
    assert order is not None
    return order


def _reserved(engine: EngineCore, asset: str = "USD") -> Decimal:
    return engine.account("a1").get(timeout=5).balances[asset].reserved


def test_post_only_when_it_would_cross_then_rejected_never_filled(engine: EngineCore) -> None:
    command = replace(place(price="100.10"), post_only=True)

    engine.place_order(command).get(timeout=5)

    order = _order(engine, command.order_id)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason is OrderCheckReason.POST_ONLY_WOULD_CROSS
    assert order.filled_quantity == 0
    assert _reserved(engine) == 0


def test_post_only_when_it_would_rest_then_rests_as_maker(engine: EngineCore) -> None:
    command = replace(place(price="99.00"), post_only=True)

    engine.place_order(command).get(timeout=5)

    assert _order(engine, command.order_id).status is OrderStatus.ACCEPTED
    assert engine.resting_count().get(timeout=5) == 1


def test_post_only_when_not_limit_then_rejected_with_its_reason(engine: EngineCore) -> None:
    command = replace(place(kind=OrderType.MARKET, price=None, tif=TimeInForce.IOC), post_only=True)

    engine.place_order(command).get(timeout=5)

    assert _order(engine, command.order_id).reject_reason is OrderCheckReason.POST_ONLY_NOT_ALLOWED


def test_gtd_when_its_time_comes_then_expired_and_reservation_released(
    engine: EngineCore, clock: Clock
) -> None:
    command = replace(place(price="95.00", tif=TimeInForce.GTD), expire_at=1010.0)
    engine.place_order(command).get(timeout=5)
    assert _order(engine, command.order_id).status is OrderStatus.ACCEPTED
    assert engine.expire_due() == 0  # not yet

    clock.now = 1010.0
    engine.expire_due()

    order = _order(engine, command.order_id)
    assert order.status is OrderStatus.EXPIRED
    assert isinstance(engine.order_events(command.order_id).get(timeout=5)[-1], OrderExpired)
    assert _reserved(engine) == 0
    assert engine.resting_count().get(timeout=5) == 0


def test_gtd_when_partially_filled_then_expired_keeping_the_filled_part(
    engine: EngineCore, clock: Clock
) -> None:
    before = engine.totals().get(timeout=5)
    command = replace(place(price="99.00", quantity="2", tif=TimeInForce.GTD), expire_at=1010.0)
    engine.place_order(command).get(timeout=5)
    engine.on_tick(tick(bid="98.80", ask="98.90", size="1", ts=1001.0))
    engine.wait_idle()

    clock.now = 1011.0
    engine.expire_due()

    order = _order(engine, command.order_id)
    assert (order.status, order.filled_quantity) == (OrderStatus.EXPIRED, Decimal("1"))
    assert _reserved(engine) == 0
    assert engine.totals().get(timeout=5) == before


def test_gtd_when_expire_at_missing_then_rejected_with_its_reason(engine: EngineCore) -> None:
    command = place(price="95.00", tif=TimeInForce.GTD)

    engine.place_order(command).get(timeout=5)

    assert _order(engine, command.order_id).reject_reason is OrderCheckReason.EXPIRE_AT_REQUIRED


def test_stop_market_when_last_price_crosses_then_triggered_and_filled(engine: EngineCore) -> None:
    before = engine.totals().get(timeout=5)
    command = replace(
        place(kind=OrderType.STOP_MARKET, price=None, tif=TimeInForce.IOC),
        stop_price=Decimal("101.00"),
    )
    engine.place_order(command).get(timeout=5)
    assert _order(engine, command.order_id).status is OrderStatus.ACCEPTED
    assert _reserved(engine) > 0

    engine.on_tick(tick(bid="100.50", ask="100.60", ts=1001.0))  # below the stop: waits
    assert _order(engine, command.order_id).triggered_at is None
    engine.on_tick(tick(bid="101.00", ask="101.10", ts=1002.0))

    order = _order(engine, command.order_id)
    assert order.status is OrderStatus.SETTLED
    assert order.triggered_at is not None
    assert order.filled_quantity == Decimal("0.5")
    events = engine.order_events(command.order_id).get(timeout=5)
    assert any(isinstance(e, OrderTriggered) for e in events)
    assert _reserved(engine) == 0
    assert engine.totals().get(timeout=5) == before


@pytest.mark.parametrize(
    ("side", "stop_price"), [(Side.BUY, "100.00"), (Side.BUY, "99.00"), (Side.SELL, "100.00")]
)
def test_stop_when_the_last_price_has_passed_it_on_arrival_then_rejected_and_released(
    engine: EngineCore, side: Side, stop_price: str
) -> None:
    # The way a Kafka command arrives: no market at decode time, so the venue decides.
    before = engine.totals().get(timeout=5)
    command = replace(
        place(side=side, kind=OrderType.STOP_MARKET, price=None, tif=TimeInForce.IOC),
        stop_price=Decimal(stop_price),
    )  # last price 100.00

    engine.place_order(command).get(timeout=5)

    order = _order(engine, command.order_id)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason is OrderCheckReason.STOP_PRICE_WRONG_SIDE
    assert order.filled_quantity == 0
    assert _reserved(engine) == 0
    assert _reserved(engine, "BTC") == 0
    assert engine.resting_count().get(timeout=5) == 0
    assert engine.totals().get(timeout=5) == before


def test_stop_limit_when_triggered_then_rests_as_limit_until_crossed(engine: EngineCore) -> None:
    command = replace(
        place(side=Side.SELL, kind=OrderType.STOP_LIMIT, price="98.00"),
        stop_price=Decimal("99.00"),
    )
    engine.place_order(command).get(timeout=5)

    engine.on_tick(tick(bid="97.00", ask="97.10", ts=1001.0))  # triggers; bids below its limit
    triggered = _order(engine, command.order_id)
    assert triggered.triggered_at is not None
    assert triggered.status is OrderStatus.ACCEPTED
    engine.on_tick(tick(bid="98.50", ask="98.60", size="1", ts=1002.0))

    assert _order(engine, command.order_id).status is OrderStatus.SETTLED


def test_stop_when_cancelled_untriggered_then_cancelled_and_released(engine: EngineCore) -> None:
    command = replace(
        place(kind=OrderType.STOP_LIMIT, price="102.00"), stop_price=Decimal("101.50")
    )
    engine.place_order(command).get(timeout=5)
    engine.wait_idle()

    engine.cancel_all(CancelAll("all-1", "a1", 1000.0)).get(timeout=5)

    assert _order(engine, command.order_id).status is OrderStatus.CANCELLED
    assert _reserved(engine) == 0


def test_cancel_all_when_orders_of_two_symbols_then_only_the_symbol_asked(
    engine: EngineCore,
) -> None:
    btc = [place(price="95.00"), place(price="96.00")]
    eth = place(symbol="ETH-USD", price="95.00")
    other = place(account="a2", price="95.00")
    engine.on_tick(tick(symbol="ETH-USD"))
    for command in (*btc, eth, other):
        engine.place_order(command).get(timeout=5)
    engine.wait_idle()

    asked = engine.cancel_all(CancelAll("all-2", "a1", 1000.0, "BTC-USD")).get(timeout=5)

    assert asked == 2
    assert [_order(engine, c.order_id).status for c in btc] == [OrderStatus.CANCELLED] * 2
    assert _order(engine, eth.order_id).status is OrderStatus.ACCEPTED
    assert _order(engine, other.order_id).status is OrderStatus.ACCEPTED


def test_cancel_all_when_an_order_was_placed_after_it_was_requested_then_that_order_stays(
    engine: EngineCore,
) -> None:
    # The sweep runs once the engine is idle, later than the request: an order placed after
    # the cancel-all was requested is not its to cancel.
    before = replace(place(price="95.00"), created_at=500.0)
    after = replace(place(price="95.00"), created_at=1500.0)
    for command in (before, after):
        engine.place_order(command).get(timeout=5)
    engine.wait_idle()

    asked = engine.cancel_all(CancelAll("all-4", "a1", 1000.0)).get(timeout=5)

    assert asked == 1
    assert _order(engine, before.order_id).status is OrderStatus.CANCELLED
    assert _order(engine, after.order_id).status is OrderStatus.ACCEPTED


def test_cancel_all_when_replayed_then_nothing_more_changes(engine: EngineCore) -> None:
    command = place(price="95.00")
    engine.place_order(command).get(timeout=5)
    engine.wait_idle()
    engine.cancel_all(CancelAll("all-3", "a1", 1000.0)).get(timeout=5)
    cancelled = _order(engine, command.order_id)

    again = engine.cancel_all(CancelAll("all-3", "a1", 1000.0)).get(timeout=5)

    assert again == 0
    assert _order(engine, command.order_id) == cancelled


def test_kill_switch_when_an_account_is_halted_then_its_open_orders_are_cancelled(
    engine: EngineCore,
) -> None:
    mine, other = place(price="95.00"), place(account="a2", price="95.00")
    for command in (mine, other):
        engine.place_order(command).get(timeout=5)
    engine.wait_idle()

    engine.set_kill_switch(TradingState.HALTED, "a1").get(timeout=5)
    engine.wait_idle()

    assert _order(engine, mine.order_id).status is OrderStatus.CANCELLED
    assert _order(engine, other.order_id).status is OrderStatus.ACCEPTED


def _long_one_btc(engine: EngineCore) -> None:
    """a1 buys 1 BTC at the ask: a long position of 1."""
    engine.place_order(place(quantity="1", price="100.10")).get(timeout=5)
    engine.wait_idle()
    assert engine.account("a1").get(timeout=5).positions["BTC-USD"].quantity == Decimal("1")


def test_kill_switch_when_an_account_is_reducing_then_only_its_growing_orders_are_cancelled(
    engine: EngineCore,
) -> None:
    _long_one_btc(engine)
    reducing = replace(place(side=Side.SELL, quantity="0.4", price="105.00"), created_at=1.0)
    growing = replace(place(side=Side.BUY, quantity="0.5", price="95.00"), created_at=2.0)
    # With the 0.4 kept before it, this SELL would take the long of 1 past zero: it grows.
    crossing = replace(place(side=Side.SELL, quantity="0.8", price="106.00"), created_at=3.0)
    other = place(account="a2", price="95.00")
    for command in (reducing, growing, crossing, other):
        engine.place_order(command).get(timeout=5)
    engine.wait_idle()

    engine.set_kill_switch(TradingState.REDUCING, "a1").get(timeout=5)
    engine.wait_idle()

    assert _order(engine, reducing.order_id).status is OrderStatus.ACCEPTED
    assert _order(engine, growing.order_id).status is OrderStatus.CANCELLED
    assert _order(engine, crossing.order_id).status is OrderStatus.CANCELLED
    assert _order(engine, other.order_id).status is OrderStatus.ACCEPTED
    # The reducing SELL still holds its BTC; the cancelled BUY's USD came back.
    assert _reserved(engine, "BTC") == Decimal("0.4")
    assert _reserved(engine) == 0


def test_kill_switch_when_reducing_with_no_position_then_every_open_order_is_cancelled(
    engine: EngineCore,
) -> None:
    buy = place(price="95.00")
    sell = replace(place(side=Side.SELL, price="105.00"), created_at=1.0)
    for command in (buy, sell):
        engine.place_order(command).get(timeout=5)
    engine.wait_idle()

    engine.set_kill_switch(TradingState.REDUCING, "a1").get(timeout=5)
    engine.wait_idle()

    assert [_order(engine, c.order_id).status for c in (buy, sell)] == [OrderStatus.CANCELLED] * 2
    assert (_reserved(engine), _reserved(engine, "BTC")) == (0, 0)


def test_kill_switch_when_reducing_globally_then_every_accounts_growing_orders_are_cancelled(
    engine: EngineCore,
) -> None:
    _long_one_btc(engine)
    stop_loss = replace(
        place(side=Side.SELL, kind=OrderType.STOP_MARKET, price=None, tif=TimeInForce.IOC),
        stop_price=Decimal("90.00"),
    )
    others = place(account="a2", price="95.00")
    for command in (stop_loss, others):
        engine.place_order(command).get(timeout=5)
    engine.wait_idle()

    engine.set_kill_switch(TradingState.REDUCING).get(timeout=5)
    engine.wait_idle()

    assert _order(engine, stop_loss.order_id).status is OrderStatus.ACCEPTED  # it protects
    assert _order(engine, others.order_id).status is OrderStatus.CANCELLED


def test_kill_switch_when_reducing_then_a_new_growing_order_is_still_refused(
    engine: EngineCore,
) -> None:
    engine.set_kill_switch(TradingState.REDUCING, "a1").get(timeout=5)
    engine.wait_idle()
    command = place(price="95.00")

    engine.place_order(command).get(timeout=5)

    assert _order(engine, command.order_id).reject_reason is RejectReason.REDUCE_ONLY
