"""The beacon writes this replica's share of ``orders`` to the owner map (in memory here)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from oms.config import Settings
from oms.engine.owners import Owner, ReplicaEntry
from oms.store.memory_owners import MemoryOwnerMap
from oms.stream.owner_beacon import OwnerBeacon

SETTINGS = Settings(replica="r1", http_port=9001, owner_heartbeat_s=0.05, owner_ttl_s=1.0)
ME = Owner("r1", "http://127.0.0.1:9001")


class Share:
    """What the ingestion says this replica owns now."""

    def __init__(self, owned: frozenset[int] | None) -> None:
        self.owned = owned

    def __call__(self) -> frozenset[int] | None:
        return self.owned


class DownMap(MemoryOwnerMap):
    """A map whose Redis is away."""

    async def publish(self, entry: ReplicaEntry, released: Iterable[int]) -> None:
        raise RedisConnectionError("refused")


async def test_beat_when_the_share_changes_then_the_map_follows_and_gives_the_rest_up() -> None:
    # Arrange
    owners = MemoryOwnerMap(ttl_s=1.0)
    share = Share(frozenset({0, 1}))
    beacon = OwnerBeacon(SETTINGS, owners, share)
    await beacon.beat()

    # Act: a rebalance begins (nothing owned), then ends with partition 1 only
    share.owned = None
    await beacon.beat()
    during = [await owners.owner(p) for p in (0, 1)]
    share.owned = frozenset({1})
    await beacon.beat()

    # Assert
    assert during == [None, None]
    assert [await owners.owner(p) for p in (0, 1)] == [None, ME]
    assert [sorted(e.partitions) for e in await owners.replicas()] == [[1]]


async def test_poke_when_running_then_writes_before_the_next_heartbeat() -> None:
    # Arrange: a heartbeat far away, so only the poke can write
    owners = MemoryOwnerMap(ttl_s=5.0)
    share = Share(frozenset())
    beacon = OwnerBeacon(SETTINGS.replace(owner_heartbeat_s=60.0), owners, share)
    await beacon.start()
    try:
        # Act
        share.owned = frozenset({2})
        beacon.poke()
        for _ in range(50):
            if await owners.owner(2) is not None:
                break
            await asyncio.sleep(0.01)

        # Assert
        assert await owners.owner(2) == ME
    finally:
        await beacon.stop()
    assert await owners.owner(2) is None  # a stop takes it out of the map


async def test_beat_when_redis_is_away_then_logged_once_and_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Arrange
    beacon = OwnerBeacon(SETTINGS, DownMap(ttl_s=1.0), Share(frozenset({0})))

    # Act
    with caplog.at_level(logging.WARNING, logger="oms.stream.owner_beacon"):
        for _ in range(3):
            await beacon.beat()

    # Assert
    assert len([r for r in caplog.records if "owner map not written" in r.message]) == 1
