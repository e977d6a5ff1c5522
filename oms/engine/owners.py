"""The owner map's port: which replica owns which partition of ``orders``, and where it answers.

Kafka's group decides who owns a partition; each replica writes what it was given (once it has
rebuilt it) with its internal address, refreshed every heartbeat under a TTL, so a dead
replica's entries expire by themselves. Readers take the map as a hint: the replica a read is
forwarded to checks that it still owns the account's partition before it answers, so an entry
a rebalance made stale costs a 503, never a stale answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Owner:
    """The replica a partition's reads go to: its name and where the others reach it."""

    replica: str
    address: str


@dataclass(frozen=True, slots=True)
class ReplicaEntry:
    """One live replica: its name, where the others reach it, what it owns, when it last beat.

    ``address`` is the identity in the map: two processes on one host may share a name, never
    an address. ``partitions`` is empty while a rebalance is rebuilding its share.
    """

    replica: str
    address: str
    partitions: frozenset[int]
    heartbeat: float

    @property
    def owner(self) -> Owner:
        """This replica as the owner of its partitions."""
        return Owner(self.replica, self.address)


class OwnerMap(Protocol):
    """Where the replicas of one consumer group record what they own (Redis in ``oms serve``)."""

    async def publish(self, entry: ReplicaEntry, released: Iterable[int]) -> None:
        """Record ``entry`` and own its partitions for a TTL; give up ``released`` (those this
        replica owned before), unless another replica has taken them meanwhile."""

    async def withdraw(self, entry: ReplicaEntry) -> None:
        """Remove this replica and every partition it still holds (a clean stop)."""

    async def owner(self, partition: int) -> Owner | None:
        """The live replica owning ``partition`` (None: none has recorded it, or it expired)."""

    async def replicas(self) -> list[ReplicaEntry]:
        """Every live replica, by address."""
