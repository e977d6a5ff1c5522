"""Stale market data through the engine: the venue refuses MARKET orders on a stopped feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest

from oms.config import Settings
from oms.domain.commands import ApplyFill
from oms.domain.enums import OrderStatus, OrderType, TimeInForce
from oms.domain.limits import RiskLimits
from oms.domain.orders import Order
from oms.domain.reasons import OrderCheckReason
from oms.engine.core import EngineCore
from oms.store.memory import MemoryOrderRepository
from oms.venue.faulty import FaultyVenue
from oms.venue.gateway import VenueGateway
from oms.venue.port import PlaceRequest, VenueOrderState
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


# -- the network venue (OMS_VENUE=ccxt): the same check, before anything is sent ---------------


class CountingVenue(FaultyVenue):
    """The in-memory exchange, counting the places that reached it."""

    places: int = 0

    async def place(self, request: PlaceRequest) -> VenueOrderState:
        self.places += 1
        return await super().place(request)


async def _on_network_venue(clock: Clock, stale_after: float) -> tuple[EngineCore, VenueGateway]:
    venue = CountingVenue()

    async def publish(fills: Sequence[ApplyFill]) -> None:
        core.submit(list(fills))

    gateway = VenueGateway(venue, publish, query_delay_s=3600.0, poll_s=0.05)
    core = EngineCore(
        Settings(simulated_feed=False, market_data_stale_s=STALE_S),
        repository=MemoryOrderRepository(),
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        clock=clock,
        gateway=gateway,
    )
    core.start()
    gateway.start()
    core.open_account("a1", FUNDS).get(timeout=5)
    core.on_tick(tick())  # seen at 1000
    core.wait_idle()
    clock.now = 1000.0 + stale_after
    return core, gateway


async def _network_market_order(core: EngineCore) -> Order:
    command = place(kind=OrderType.MARKET, price=None, tif=TimeInForce.IOC, quantity="0.5")
    core.place_order(command).get(timeout=5)  # answered on the engine's thread, not the loop
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        order = await asyncio.wrap_future(core.repository.read(command.order_id))
        if order is not None and order.order.is_terminal:
            return order.order
        await asyncio.sleep(0.02)
    raise AssertionError(f"{command.order_id} did not end")


def test_market_order_when_feed_stopped_with_a_network_venue_then_rejected_and_never_sent(
    clock: Clock,
) -> None:
    async def scenario() -> tuple[Order, bool, int, Decimal]:
        # Arrange: the last tick is older than the bound
        core, gateway = await _on_network_venue(clock, STALE_S + 0.5)
        try:
            # Act
            order = await _network_market_order(core)
            stale = core.market_data_stale("BTC-USD")
            reserved = core.account("a1").get(timeout=5).balances["USD"].reserved
            assert isinstance(gateway.port, CountingVenue)
            return order, stale, gateway.port.places, reserved
        finally:
            await gateway.stop()
            core.stop()

    order, stale, places, reserved = asyncio.run(scenario())

    # Assert
    assert stale  # so the door answers 422 MARKET_DATA_STALE
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason is OrderCheckReason.MARKET_DATA_STALE
    assert places == 0
    assert reserved == 0


def test_market_order_when_feed_within_bound_with_a_network_venue_then_sent_to_the_venue(
    clock: Clock,
) -> None:
    async def scenario() -> tuple[Order, bool, int]:
        # Arrange: the last tick is within the bound
        core, gateway = await _on_network_venue(clock, STALE_S - 0.5)
        try:
            # Act
            order = await _network_market_order(core)
            assert isinstance(gateway.port, CountingVenue)
            return order, core.market_data_stale("BTC-USD"), gateway.port.places
        finally:
            await gateway.stop()
            core.stop()

    order, stale, places = asyncio.run(scenario())

    # Assert: sent (this in-memory exchange takes LIMIT orders only: its refusal, not ours)
    assert not stale
    assert places == 1
    assert order.reject_reason is not OrderCheckReason.MARKET_DATA_STALE
