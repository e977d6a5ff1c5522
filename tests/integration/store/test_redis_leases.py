"""Leases on the real Redis: one holder, renewed only by it, expired by Redis, released by it."""

from __future__ import annotations

import asyncio

import pytest

from oms.config import Settings
from oms.store.redis_leases import RedisLeases
from oms.store.redis_store import redis_client

pytestmark = pytest.mark.integration


async def test_lease_when_two_owners_then_one_holds_and_only_it_renews_or_releases(
    settings: Settings, unique: str
) -> None:
    redis = redis_client(settings)
    leases = RedisLeases(redis, deployment=f"it-{unique}")
    try:
        assert await leases.acquire("market-data:BTC-USD", "a", 5000) is True
        assert await leases.acquire("market-data:BTC-USD", "b", 5000) is False
        assert await leases.renew("market-data:BTC-USD", "b", 5000) is False
        assert await leases.release("market-data:BTC-USD", "b") is False
        assert await leases.renew("market-data:BTC-USD", "a", 5000) is True
        assert await leases.holder("market-data:BTC-USD") == "a"

        assert await leases.release("market-data:BTC-USD", "a") is True
        assert await leases.acquire("market-data:BTC-USD", "b", 5000) is True
    finally:
        await redis.delete(leases.key("market-data:BTC-USD"))
        await redis.aclose()


async def test_lease_when_the_holder_stops_renewing_then_redis_expires_it_for_another(
    settings: Settings, unique: str
) -> None:
    redis = redis_client(settings)
    leases = RedisLeases(redis, deployment=f"it-{unique}")
    try:
        assert await leases.acquire("market-data:ETH-USD", "dead", 200) is True

        await asyncio.sleep(0.3)

        assert await leases.renew("market-data:ETH-USD", "dead", 200) is False
        assert await leases.acquire("market-data:ETH-USD", "alive", 5000) is True
    finally:
        await redis.delete(leases.key("market-data:ETH-USD"))
        await redis.aclose()
