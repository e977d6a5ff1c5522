"""The publisher sends a tick only while its symbol's lease is held (no broker needed)."""

from __future__ import annotations

from oms.config import Settings
from oms.marketdata import Tick
from oms.stream.price_publisher import PricePublisher, Publish
from tests.unit.engine_helpers import tick
from tests.unit.stream.feed_leases_fakes import Clock, MemoryLeases


class _Silent:
    """A source that produces nothing (the test hands ticks in itself)."""

    async def run(self, symbol: str, publish: Publish) -> None:
        del symbol, publish


async def test_publish_when_the_lease_is_not_held_then_the_tick_is_dropped() -> None:
    store = MemoryLeases(Clock())
    store.leases["market-data:BTC-USD"] = ("other", 100.0)  # another replica publishes it
    publisher = PricePublisher(
        Settings(),
        "prices-unit",
        _Silent(),
        symbols=("BTC-USD",),
        leases=store,
        owner="me",
    )
    await publisher.leases.step()
    one: Tick = tick()

    await publisher._publish(one)  # the gate every tick goes through

    assert publisher.leases.held == frozenset()
    assert publisher.dropped == 1
    assert publisher.published == {}
