"""Rate-limit buckets in the real Redis: shared by replicas, atomic, gone once idle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from oms.config import Settings
from oms.domain.rate_limits import MICROS, Bucket, LimitScope, Rate
from oms.store.redis_rate_limits import RedisRateLimits


@pytest.fixture
async def clients(settings: Settings, unique: str) -> AsyncIterator[list[aioredis.Redis]]:
    """Two clients (two replicas' pools); the test's keys (all hold ``unique``) deleted after."""
    clients = [aioredis.from_url(settings.redis_url) for _ in range(2)]
    yield clients
    keys = [key async for key in clients[0].scan_iter(match=f"*{unique}*", count=10_000)]
    if keys:
        await clients[0].delete(*keys)
    for client in clients:
        await client.aclose()


async def test_acquire_when_two_replicas_burst_together_then_exactly_the_burst_passes(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange: a slow refill (one every 10 s), so only the burst can pass during the test
    replicas = [RedisRateLimits(client, deployment=unique) for client in clients]
    bucket = [Bucket(LimitScope.KEY, "key:k1", Rate(per_s=0.1, burst=7))]

    # Act: 40 requests at once, half through each replica
    verdicts = await asyncio.gather(*(replicas[n % 2].acquire(bucket) for n in range(40)))

    # Assert
    refused = [v for v in verdicts if not v.allowed]
    assert sum(v.allowed for v in verdicts) == 7
    assert {v.refused_by for v in refused} == {LimitScope.KEY}
    assert all(9 * MICROS < v.retry_after_us <= 10 * MICROS for v in refused)


async def test_acquire_when_the_address_refuses_then_the_key_is_not_counted(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange
    store = RedisRateLimits(clients[0], deployment=unique)
    key = Bucket(LimitScope.KEY, "key:k2", Rate(per_s=0.1, burst=5))
    address = Bucket(LimitScope.ADDRESS, "10.1.2.3", Rate(per_s=0.1, burst=2))

    # Act
    together = [await store.acquire([key, address]) for _ in range(4)]
    key_alone = [await store.acquire([key]) for _ in range(4)]

    # Assert: the address let 2 through; the key counted only those 2, so 3 more pass alone
    assert [v.allowed for v in together] == [True, True, False, False]
    assert together[-1].refused_by is LimitScope.ADDRESS
    assert [v.allowed for v in key_alone] == [True, True, True, False]


async def test_acquire_when_a_bucket_is_used_then_its_key_expires_when_idle(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange
    store = RedisRateLimits(clients[0], deployment=unique)
    bucket = Bucket(LimitScope.KEY, "key:k3", Rate(per_s=20, burst=2))

    # Act
    verdict = await store.acquire([bucket])
    ttl_ms = await clients[0].pttl(store.key(bucket))

    # Assert: one request at 20/s keeps its bucket for about one interval (50 ms)
    assert verdict.allowed
    assert 0 < ttl_ms <= 60
