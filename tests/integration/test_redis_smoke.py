"""Redis smoke test: the idempotency claim the API will make (SET NX EX)."""

from __future__ import annotations

import redis.asyncio as aioredis

from oms.config import Settings


async def test_set_nx_ex_when_claimed_twice_then_the_first_wins_and_the_second_is_refused(
    settings: Settings, unique: str
) -> None:
    # Arrange
    client = aioredis.from_url(settings.redis_url)
    key = f"idempotency:smoke:{unique}"
    try:
        # Act
        first = await client.set(key, b"order-1", nx=True, ex=60)
        second = await client.set(key, b"order-2", nx=True, ex=60)
        value = await client.get(key)
        ttl = await client.ttl(key)
    finally:
        await client.delete(key)
        await client.aclose()

    # Assert
    assert first is True
    assert second is None
    assert value == b"order-1"
    assert 0 < ttl <= 60
