"""The owner map in memory (``oms.engine.owners``): the unit tests' adapter, on a given clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from oms.engine.owners import Owner, OwnerMap, ReplicaEntry

__all__ = ["MemoryOwnerMap"]


class MemoryOwnerMap(OwnerMap):
    """``OwnerMap`` as two dicts with expiry times, as Redis keeps it."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Entries live ``ttl_s`` of ``clock`` unless published again."""
        self._ttl_s = ttl_s
        self._clock = clock
        self._owners: dict[int, tuple[Owner, float]] = {}
        self._entries: dict[str, tuple[ReplicaEntry, float]] = {}

    async def publish(self, entry: ReplicaEntry, released: Iterable[int]) -> None:
        """Record the entry and its partitions; give up ``released`` where still its own."""
        until = self._clock() + self._ttl_s
        self._entries[entry.address] = (entry, until)
        for partition in entry.partitions:
            self._owners[partition] = (entry.owner, until)
        self._release(entry.owner, set(released) - entry.partitions)

    async def withdraw(self, entry: ReplicaEntry) -> None:
        """Remove the entry and the partitions it still holds."""
        self._entries.pop(entry.address, None)
        self._release(entry.owner, entry.partitions)

    def _release(self, owner: Owner, partitions: Iterable[int]) -> None:
        for partition in partitions:
            held = self._owners.get(partition)
            if held is not None and held[0] == owner:
                del self._owners[partition]

    async def owner(self, partition: int) -> Owner | None:
        """The partition's owner while its entry lives."""
        held = self._owners.get(partition)
        if held is None or held[1] <= self._clock():
            return None
        return held[0]

    async def replicas(self) -> list[ReplicaEntry]:
        """Every replica whose entry lives, by address."""
        now = self._clock()
        return [e for _, (e, until) in sorted(self._entries.items()) if until > now]
