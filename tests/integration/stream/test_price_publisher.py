"""One publisher per symbol across replicas, on the real Redis and Kafka: two publishers of
the simulated walk share the symbols without overlap, and a dead one's symbols move."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from oms.config import Settings
from oms.domain.instruments import DEFAULT_INSTRUMENTS
from oms.marketdata import SimulatedFeed
from oms.store.redis_leases import RedisLeases
from oms.store.redis_store import redis_client
from oms.stream.names import topic_names
from oms.stream.price_publisher import PricePublisher, SimulatedSource
from oms.stream.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")
LEASE_S = 1.5


def _publisher(settings: Settings, redis: aioredis.Redis, owner: str) -> PricePublisher:
    feed = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=7)
    return PricePublisher(
        settings,
        topic_names(settings).prices,
        SimulatedSource(feed, lambda _symbol: None),
        symbols=SYMBOLS,
        leases=RedisLeases(redis, deployment=settings.topic_suffix),
        owner=owner,
    )


async def _until(check: Callable[[], bool], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "not within the bound"
        await asyncio.sleep(0.05)


async def test_publishers_when_two_replicas_then_each_symbol_once_and_moved_when_one_dies(
    settings: Settings, unique: str
) -> None:
    # Arrange
    run = settings.replace(topic_suffix=f"pub-{unique}", market_data_lease_s=LEASE_S)
    await ensure_topics(run, (TopicSpec(topic_names(run).prices, 1, "symbol"),))
    redis = redis_client(run)
    first, second = _publisher(run, redis, "first"), _publisher(run, redis, "second")
    try:
        await first.start()
        await _until(lambda: len(first.leases.held) == len(SYMBOLS), 5.0)
        await second.start()
        await asyncio.sleep(LEASE_S)  # several rounds of both

        # Assert: the first holds every symbol, the second publishes nothing.
        assert first.leases.held == set(SYMBOLS)
        assert second.leases.held == frozenset()
        assert second.published == {}

        # Act: the first dies without giving its leases back.
        await first.stop(release=False)
        died = time.monotonic()
        await _until(lambda: second.leases.held == set(SYMBOLS), 3 * LEASE_S)
        moved_after = time.monotonic() - died

        # Assert: within the lease and a round, and the second now publishes them.
        assert moved_after <= LEASE_S + LEASE_S / 3 + 0.5
        await _until(lambda: set(second.published) == set(SYMBOLS), 2.0)
    finally:
        await second.stop()
        await first.stop()
        await redis.aclose()
