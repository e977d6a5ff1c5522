"""This replica's line in the owner map: what it owns of ``orders`` and where it answers.

Written when the share changes (at once: the ingestion pokes the beacon when a rebalance begins,
which empties the share, and when the rebuild of the new share is done) and every
``owner_heartbeat_s`` between, each write living ``owner_ttl_s``: a replica killed without a
word drops out of the map within the TTL. What is owned is what has been *rebuilt*: a partition
enters the map only once its accounts' state is whole here, so a read forwarded on the map's
word never meets a replica still reading the store. A write that fails (Redis away) is logged
once and tried again at the next beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from oms.config import Settings
from oms.engine.owners import OwnerMap, ReplicaEntry

logger = logging.getLogger(__name__)

WITHDRAW_TIMEOUT_S = 1.0  # a clean stop's last word; the TTL removes the entry anyway


class OwnerBeacon:
    """Publishes this replica's entry: on every change of its share, and every heartbeat."""

    def __init__(
        self,
        settings: Settings,
        owners: OwnerMap,
        owned: Callable[[], frozenset[int] | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``owned``: the partitions rebuilt and owned now (None during a rebalance)."""
        self._settings = settings
        self._owners = owners
        self._owned = owned
        self._clock = clock
        self.replica = settings.replica_name()
        self.address = settings.advertised_url()
        self._published: frozenset[int] = frozenset()
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def entry(self) -> ReplicaEntry:
        """This replica as the map shows it now."""
        return ReplicaEntry(self.replica, self.address, self._owned() or frozenset(), self._clock())

    def poke(self) -> None:
        """The share changed: write it now, not at the next heartbeat."""
        self._poked.set()

    async def start(self) -> None:
        """Write the entry, then keep it alive."""
        await self.beat()
        self._task = asyncio.create_task(self._run(), name="oms-owner-beacon")

    async def stop(self) -> None:
        """Stop beating and take this replica out of the map (bounded: the TTL is the rest)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        entry = ReplicaEntry(self.replica, self.address, self._published, self._clock())
        with contextlib.suppress(RedisError, TimeoutError):
            await asyncio.wait_for(self._owners.withdraw(entry), WITHDRAW_TIMEOUT_S)

    async def beat(self) -> None:
        """Write the entry once; a failure is logged (once per run of failures), not raised."""
        entry = self.entry()
        try:
            await self._owners.publish(entry, released=self._published)
        except (RedisError, OSError) as error:
            if not self._failing:
                logger.warning("owner map not written (%r): reads wait for the next beat", error)
            self._failing = True
            return
        if self._failing:
            logger.info("owner map written again")
        self._failing = False
        self._published = entry.partitions

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), self._settings.owner_heartbeat_s)
            self._poked.clear()
            await self.beat()
