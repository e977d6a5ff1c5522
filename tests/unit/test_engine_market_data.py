"""Stale market data through the engine: the venue refuses MARKET orders on a stopped feed."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from oms.config import Settings
from oms.domain.enums import OrderStatus, OrderType, TimeInForce
from oms.domain.limits import RiskLimits
from oms.domain.orders import Order
from oms.domain.reasons import OrderCheckReason
from oms.engine.core import EngineCore
from oms.store.memory import MemoryOrderRepository
from tests.unit.engine_helpers import FUNDS, place, tick

STALE_S = 5.0


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
        Settings(simulated_feed=False, market_data_stale_s=STALE_S),
        repository=MemoryOrderRepository(),
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        clock=clock,
    )
    e.start()
    e.open_account("a1", FUNDS).get(timeout=5)
    e.on_tick(tick())  # bid 100.00, ask 100.10, seen at 1000
    e.wait_idle()
    yield e
    e.stop()


def _market_order(engine: EngineCore) -> Order:
    command = place(kind=OrderType.MARKET, price=None, tif=TimeInForce.IOC, quantity="0.5")
    engine.place_order(command).get(timeout=5)
    engine.wait_idle()
    order = engine.get_order(command.order_id).get(timeout=5)
    assert order is not None
    return order


def test_market_order_when_feed_stopped_longer_than_bound_then_rejected_market_data_stale(
    engine: EngineCore, clock: Clock
) -> None:
    before = engine.totals().get(timeout=5)
    clock.now = 1000.0 + STALE_S + 0.5

    order = _market_order(engine)

    assert engine.market_data_stale("BTC-USD")
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason is OrderCheckReason.MARKET_DATA_STALE
    assert order.filled_quantity == 0
    assert engine.account("a1").get(timeout=5).balances["USD"].reserved == 0
    assert engine.totals().get(timeout=5) == before


def test_market_order_when_feed_within_bound_then_filled(engine: EngineCore, clock: Clock) -> None:
    clock.now = 1000.0 + STALE_S - 0.5

    order = _market_order(engine)

    assert not engine.market_data_stale("BTC-USD")
    assert order.status is OrderStatus.SETTLED
    assert order.filled_quantity == Decimal("0.5")


def test_market_order_when_ticks_return_after_staleness_then_filled_again(
    engine: EngineCore, clock: Clock
) -> None:
    clock.now = 1100.0
    assert _market_order(engine).reject_reason is OrderCheckReason.MARKET_DATA_STALE

    engine.on_tick(tick(ts=1100.0))
    engine.wait_idle()
    order = _market_order(engine)

    assert order.status is OrderStatus.SETTLED
    assert engine.market_data_ages() == {"BTC-USD": 0.0}


def test_limit_order_when_feed_stale_then_still_accepted(engine: EngineCore, clock: Clock) -> None:
    clock.now = 1100.0
    command = place(price="99.00")

    engine.place_order(command).get(timeout=5)
    engine.wait_idle()

    order = engine.get_order(command.order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.ACCEPTED


def test_market_order_when_an_older_tick_replayed_then_still_stale(
    engine: EngineCore, clock: Clock
) -> None:
    clock.now = 1100.0

    engine.on_tick(tick(ts=999.0))  # older than the book's: not the market any more
    engine.wait_idle()

    assert _market_order(engine).reject_reason is OrderCheckReason.MARKET_DATA_STALE
