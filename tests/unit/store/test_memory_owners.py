"""The owner map's contract, on the in-memory adapter (the Redis one: tests/integration)."""

from __future__ import annotations

from oms.engine.owners import Owner, ReplicaEntry
from oms.store.memory_owners import MemoryOwnerMap


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _entry(name: str, partitions: set[int], at: float = 100.0) -> ReplicaEntry:
    return ReplicaEntry(name, f"http://{name}:8080", frozenset(partitions), at)


async def test_owner_when_a_replica_published_its_partitions_then_names_it_for_each() -> None:
    # Arrange
    owners = MemoryOwnerMap(ttl_s=4.0, clock=Clock())

    # Act
    await owners.publish(_entry("a", {0, 1}), released=())
    await owners.publish(_entry("b", {2}), released=())

    # Assert
    assert await owners.owner(0) == Owner("a", "http://a:8080")
    assert await owners.owner(2) == Owner("b", "http://b:8080")
    assert await owners.owner(3) is None
    assert [e.replica for e in await owners.replicas()] == ["a", "b"]


async def test_owner_when_the_heartbeat_stops_past_the_ttl_then_the_entry_is_gone() -> None:
    # Arrange
    clock = Clock()
    owners = MemoryOwnerMap(ttl_s=4.0, clock=clock)
    await owners.publish(_entry("a", {0}), released=())

    # Act
    clock.now += 4.5

    # Assert
    assert await owners.owner(0) is None
    assert await owners.replicas() == []


async def test_publish_when_a_partition_was_taken_by_another_then_releasing_it_keeps_the_new_owner() -> (
    None
):
    # Arrange: a owned 0 and 1; b took 1 in a rebalance
    owners = MemoryOwnerMap(ttl_s=4.0, clock=Clock())
    await owners.publish(_entry("a", {0, 1}), released=())
    await owners.publish(_entry("b", {1}), released=())

    # Act: a's next beat owns nothing of them and gives both up
    await owners.publish(_entry("a", set()), released={0, 1})

    # Assert
    assert await owners.owner(0) is None
    assert await owners.owner(1) == Owner("b", "http://b:8080")


async def test_withdraw_when_a_replica_stops_then_its_partitions_and_entry_go() -> None:
    # Arrange
    owners = MemoryOwnerMap(ttl_s=4.0, clock=Clock())
    await owners.publish(_entry("a", {0}), released=())
    await owners.publish(_entry("b", {1}), released=())

    # Act
    await owners.withdraw(_entry("a", {0}))

    # Assert
    assert await owners.owner(0) is None
    assert [e.replica for e in await owners.replicas()] == ["b"]
