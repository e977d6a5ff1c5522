"""The owner map on the real local Redis: one script per beat, entries that expire, releases
that keep another replica's partition."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from oms.config import Settings
from oms.engine.owners import Owner, ReplicaEntry
from oms.store.redis_owners import RedisOwnerMap
from oms.store.redis_store import redis_client

pytestmark = pytest.mark.integration


@pytest.fixture
async def owners() -> AsyncIterator[RedisOwnerMap]:
    """A map of its own group, with a short TTL."""
    client = redis_client(Settings.from_env())
    group = f"test-{uuid.uuid4().hex[:8]}"
    try:
        yield RedisOwnerMap(client, deployment="it", group=group, ttl_s=0.5)
    finally:
        keys = [k async for k in client.scan_iter(match=f"owners:it:{group}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def _entry(name: str, partitions: set[int]) -> ReplicaEntry:
    return ReplicaEntry(name, f"http://{name}:8080", frozenset(partitions), time.time())


async def test_publish_when_two_replicas_share_the_partitions_then_each_is_named_and_listed(
    owners: RedisOwnerMap,
) -> None:
    # Act
    await owners.publish(_entry("a", {0, 1, 2}), released=())
    await owners.publish(_entry("b", {3, 4, 5}), released=())

    # Assert
    assert await owners.owner(1) == Owner("a", "http://a:8080")
    assert await owners.owner(4) == Owner("b", "http://b:8080")
    listed = {e.replica: sorted(e.partitions) for e in await owners.replicas()}
    assert listed == {"a": [0, 1, 2], "b": [3, 4, 5]}


async def test_publish_when_the_beat_stops_then_the_entries_expire(owners: RedisOwnerMap) -> None:
    # Arrange
    await owners.publish(_entry("a", {0}), released=())

    # Act
    await asyncio.sleep(0.7)

    # Assert
    assert await owners.owner(0) is None
    assert await owners.replicas() == []


async def test_publish_when_releasing_a_partition_another_took_then_it_keeps_its_new_owner(
    owners: RedisOwnerMap,
) -> None:
    # Arrange
    await owners.publish(_entry("a", {0, 1}), released=())
    await owners.publish(_entry("b", {1}), released=())

    # Act
    await owners.publish(_entry("a", set()), released={0, 1})
    await owners.withdraw(_entry("b", set()))

    # Assert: a gave 0 up; 1 is b's (its withdraw named no partition, so 1 stays until its TTL)
    assert await owners.owner(0) is None
    assert await owners.owner(1) == Owner("b", "http://b:8080")
    assert [e.replica for e in await owners.replicas()] == ["a"]
