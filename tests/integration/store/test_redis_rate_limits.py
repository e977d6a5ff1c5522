"""Rate-limit buckets in the real Redis: shared by replicas, atomic, gone once idle; a
placement's claims taken in its count's script call, and only if its buckets pass."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from oms.config import Settings
from oms.domain.rate_limits import MICROS, Bucket, LimitScope, Rate
from oms.store.redis_rate_limits import RedisAdmission, RedisRateLimits
from oms.store.redis_store import RedisIdempotencyStore


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


async def test_acquire_and_claim_when_the_buckets_pass_then_the_claims_are_taken_in_that_call(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange: two replicas' admissions over the same buckets and idempotency keys
    def admission(client: aioredis.Redis) -> RedisAdmission:
        limits = RedisRateLimits(client, deployment=unique)
        return RedisAdmission(limits, RedisIdempotencyStore(client, prefix=f"idem-{unique}:"))

    first, second = admission(clients[0]), admission(clients[1])
    bucket = [Bucket(LimitScope.KEY, "key:k4", Rate(per_s=0.1, burst=5))]
    keys = ["a1:key:k", "a1:client:c"]

    # Act
    verdict, claims = await first.acquire_and_claim(bucket, keys, "o-1", b"body-1", 60)
    again, held = await second.acquire_and_claim(bucket, keys, "o-2", b"body-2", 60)

    # Assert: the first took both claims; the second, counted too, learns their holder
    assert verdict.allowed
    assert again.allowed
    assert [c.first for c in claims] == [True, True]
    assert [(c.first, c.order_id, c.fingerprint) for c in held] == [(False, "o-1", b"body-1")] * 2


async def test_acquire_and_claim_when_a_bucket_refuses_then_no_claim_is_taken(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange
    idempotency = RedisIdempotencyStore(clients[0], prefix=f"idem-{unique}:")
    admission = RedisAdmission(RedisRateLimits(clients[0], deployment=unique), idempotency)
    bucket = [Bucket(LimitScope.ADDRESS, "10.9.9.9", Rate(per_s=0.1, burst=1))]

    # Act: a burst of one: the second request is refused with its own claim
    passed, _ = await admission.acquire_and_claim(bucket, ["a1:client:c1"], "o-1", b"b1", 60)
    refused, claims = await admission.acquire_and_claim(bucket, ["a1:client:c2"], "o-2", b"b2", 60)
    later = await idempotency.claim("a1:client:c2", "o-3", b"b3", 60)

    # Assert: the refused request left its key free for whoever comes next
    assert passed.allowed
    assert refused.refused_by is LimitScope.ADDRESS
    assert claims == []
    assert later.first


async def test_acquire_and_claim_when_a_loop_turn_mixes_requests_then_each_gets_its_own_answer(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange: one script call carries bare counts, claims, and a refusal together
    limits = RedisRateLimits(clients[0], deployment=unique)
    admission = RedisAdmission(limits, RedisIdempotencyStore(clients[0], prefix=f"idem-{unique}:"))
    roomy = [Bucket(LimitScope.KEY, "key:k5", Rate(per_s=0.1, burst=10))]
    tight = [Bucket(LimitScope.KEY, "key:k6", Rate(per_s=0.1, burst=1))]

    # Act
    bare, claimed, tight_first, tight_second = await asyncio.gather(
        limits.acquire(roomy),
        admission.acquire_and_claim(roomy, ["a1:client:x", "a1:key:y"], "o-x", b"bx", 60),
        admission.acquire_and_claim(tight, ["a1:client:t1"], "o-t1", b"bt1", 60),
        admission.acquire_and_claim(tight, ["a1:client:t2"], "o-t2", b"bt2", 60),
    )

    # Assert
    assert bare.allowed
    assert claimed[0].allowed
    assert [(c.first, c.order_id) for c in claimed[1]] == [(True, "o-x"), (True, "o-x")]
    assert tight_first[0].allowed
    assert [c.order_id for c in tight_first[1]] == ["o-t1"]
    assert tight_second[0].refused_by is LimitScope.KEY
    assert tight_second[1] == []
