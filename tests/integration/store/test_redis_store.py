"""Redis idempotency claims, the order cache and the order-book cache against the real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from oms.config import Settings
from oms.marketdata import BookLevel, Tick
from oms.store.redis_store import (
    RedisIdempotencyStore,
    RedisOrderBookCache,
    RedisOrderCache,
)
from tests.unit.store.histories import settled_history, states


@pytest.fixture
async def client(settings: Settings, unique: str) -> AsyncIterator[aioredis.Redis]:
    """A client; every key the test made (they all hold ``unique``) is deleted afterwards."""
    redis = aioredis.from_url(settings.redis_url)
    yield redis
    # count: a shared Redis can hold many other keys (24 h idempotency keys of demo runs)
    keys = [key async for key in redis.scan_iter(match=f"*{unique}*", count=10_000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_the_first_claim_wins_and_a_second_learns_the_holder(
    settings: Settings, client: aioredis.Redis, unique: str
) -> None:
    # Arrange
    store = RedisIdempotencyStore(client)
    key = f"acct-{unique}:key:k1"

    # Act
    first = await store.claim(key, "o-1", b"\x01fingerprint", settings.idempotency_ttl_s)
    second = await store.claim(key, "o-2", b"\x02other", settings.idempotency_ttl_s)
    ttl = await client.ttl(f"idempotency:{key}")

    # Assert
    assert (first.first, first.order_id, first.fingerprint) == (True, "o-1", b"\x01fingerprint")
    assert (second.first, second.order_id, second.fingerprint) == (
        False,
        "o-1",
        b"\x01fingerprint",
    )
    assert settings.idempotency_ttl_s - 5 < ttl <= settings.idempotency_ttl_s == 24 * 3600


async def test_twenty_concurrent_claims_make_exactly_one_first(
    settings: Settings, client: aioredis.Redis, unique: str
) -> None:
    # Arrange
    store = RedisIdempotencyStore(client)
    key = f"acct-{unique}:client:c-1"

    # Act
    claims = await asyncio.gather(
        *(store.claim(key, f"o-{i}", b"same", settings.idempotency_ttl_s) for i in range(20))
    )

    # Assert
    winners = [c for c in claims if c.first]
    assert len(winners) == 1
    assert {c.order_id for c in claims} == {winners[0].order_id}


async def test_the_order_cache_keeps_the_latest_state_with_a_ttl(
    settings: Settings, client: aioredis.Redis, unique: str
) -> None:
    # Arrange
    cache = RedisOrderCache(client)
    history = settled_history(f"o-{unique}")
    placed, done = states(history)[0], states(history)[-1]

    # Act
    await cache.put(placed, settings.order_cache_ttl_s)
    await cache.put_many([done], settings.order_cache_ttl_s)
    found = await cache.get(done.order_id)
    ttl = await client.ttl(f"order:{done.order_id}")

    # Assert
    assert found == done
    assert 0 < ttl <= settings.order_cache_ttl_s
    assert await cache.get(f"missing-{unique}") is None


async def test_the_order_book_cache_lives_about_a_second(
    client: aioredis.Redis, unique: str
) -> None:
    # Arrange
    books = RedisOrderBookCache(client)
    bid, ask = (
        BookLevel(Decimal("100.00"), Decimal("1.5")),
        BookLevel(Decimal("100.10"), Decimal("2")),
    )
    tick = Tick(f"SYM-{unique}", Decimal("100.00"), bid.price, ask.price, (bid,), (ask,), 1.0)

    # Act
    await books.put(tick)
    found = await books.get(tick.symbol)
    ttl_ms = await client.pttl(f"orderbook:{tick.symbol}")

    # Assert
    assert found == tick.to_dict()
    assert found is not None
    assert found["bids"] == [{"price": "100.00", "quantity": "1.5"}]
    assert 0 < ttl_ms <= 1000


async def test_many_concurrent_cache_puts_beyond_the_pool_size_all_land_with_their_ttl(
    settings: Settings, client: aioredis.Redis, unique: str
) -> None:
    # Arrange: more concurrent puts than the client's pool has connections (100)
    cache = RedisOrderCache(client)
    orders = [states(settled_history(f"o{i}-{unique}"))[0] for i in range(300)]

    # Act
    await asyncio.gather(*(cache.put(order, settings.order_cache_ttl_s) for order in orders))
    found = await asyncio.gather(*(cache.get(order.order_id) for order in orders))

    # Assert
    assert found == orders
    assert 0 < await client.ttl(f"order:{orders[-1].order_id}") <= settings.order_cache_ttl_s


async def test_many_concurrent_claims_on_distinct_keys_all_win_beyond_the_pool_size(
    settings: Settings, client: aioredis.Redis, unique: str
) -> None:
    # Arrange: more concurrent claims than the client's pool has connections (100)
    store = RedisIdempotencyStore(client)
    keys = [f"acct-{unique}:client:c-{i}" for i in range(300)]

    # Act
    claims = await asyncio.gather(
        *(store.claim(k, f"o-{i}", b"fp", settings.idempotency_ttl_s) for i, k in enumerate(keys))
    )
    again = await asyncio.gather(
        *(store.claim(k, f"x-{i}", b"fp", settings.idempotency_ttl_s) for i, k in enumerate(keys))
    )

    # Assert
    assert [c.order_id for c in claims] == [f"o-{i}" for i in range(300)]
    assert all(c.first for c in claims)
    assert [(c.first, c.order_id) for c in again] == [(False, f"o-{i}") for i in range(300)]
