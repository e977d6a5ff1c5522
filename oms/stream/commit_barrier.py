"""The commit barrier: a batch's offsets are committed only once everything it caused is durable.

The ingestion hands fetched batches to the engine and to this barrier (``hand``); the barrier's
own task (``run``) then, for every batch handed over before it looked:

1. runs the durability steps in order, each retried with back-off until it succeeds, never
   skipped (the ingestion's: the engine idle, the store durable, the event sink drained), so a
   store that is down stops commits (lag grows) instead of committing what it has not stored;
2. stops for good if the engine failed meanwhile: what it did may be half done, so nothing more
   is acknowledged (the replica restarts and the next owner replays from the last commit);
3. dead-letters the commands the engine refused (their answers are awaited here, not on the
   fetch path) and waits for every dead letter's acknowledgement;
4. commits the batches' offsets (later batches hold later offsets).

It bounds what is in flight in records (``max_in_flight``): fetching and deciding overlap the
durability of what came before, but no further. Two barriers start at least ``min_interval_s``
apart while nobody needs them sooner: a barrier makes the store write whatever it holds and
Kafka take an offset commit, and at a moderate rate one per fetch is many (at 1,000 orders/s,
50-72 a second); the orders themselves do not wait for it (their events go out once the store
has them, whoever asked it to write). A stop, a rebalance (``settle``) or half of
``max_in_flight`` in flight cuts the pause short; a crash replays at most the pause's records
more, which changes nothing. Kafka stays outside: the offsets are keyed by
whatever the committer keys them by (``TopicPartition`` in the ingestion).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from oms.domain.errors import DomainError
from oms.retrying import retry_until_done
from oms.stream.dead_letters import Record, StreamStats

logger = logging.getLogger(__name__)

P = TypeVar("P", bound=Hashable)
Step = Callable[[], Awaitable[Any]]
# Puts a refused record on its dead-letter topic; the future resolves on Kafka's ack.
DeadLetter = Callable[[Record, str, str], Awaitable[asyncio.Future[Any]]]


@dataclass(slots=True)
class Handed(Generic[P]):
    """One fetched batch, handed to the engine, not yet committed."""

    offsets: dict[P, int]  # next offset to commit, per partition
    records: int
    # Commands whose refusal goes to the dead-letter topic: their record and the engine's answer.
    answers: list[tuple[Record, asyncio.Future[Any]]] = field(default_factory=list)
    dead: list[asyncio.Future[Any]] = field(default_factory=list)  # dead letters sent already


class CommitBarrier(Generic[P]):
    """Holds the batches in flight and commits their offsets once they are durable."""

    def __init__(
        self,
        *,
        steps: Sequence[tuple[str, Step]],
        commit: Callable[[dict[P, int]], Awaitable[None]],
        dead_letter: DeadLetter,
        failure: Callable[[], str | None],
        stats: StreamStats,
        max_in_flight: int,
        min_interval_s: float = 0.0,
        initial_s: float = 0.05,
        max_s: float = 5.0,
    ) -> None:
        """``steps``: (name, step) to await in order before a commit; ``commit`` the offsets;
        ``failure``: where the engine failed, None while it is sound; ``min_interval_s``: the
        least time from one barrier's start to the next's while nothing hurries it."""
        self._steps = tuple(steps)
        self._commit = commit
        self._dead_letter = dead_letter
        self._failure = failure
        self._stats = stats
        self.max_in_flight = max_in_flight
        self.min_interval_s = min_interval_s
        self._initial_s = initial_s
        self._max_s = max_s
        self._in_flight: deque[Handed[P]] = deque()
        self._records = 0
        self._room = asyncio.Event()  # fewer than max_in_flight records in flight
        self._room.set()
        self._handed = asyncio.Event()  # a batch was handed over
        self._settled = asyncio.Event()  # nothing in flight
        self._settled.set()
        self._failed = asyncio.Event()  # the engine failed: nothing more will be committed
        self._hurry = asyncio.Event()  # the pause between barriers ends now
        self._settling = 0  # ``settle`` calls waiting: no pause while any does

    # -- the fetching side -----------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Batches handed over and not committed."""
        return len(self._in_flight)

    @property
    def failed(self) -> bool:
        """True once the engine failed: this barrier commits nothing more."""
        return self._failed.is_set()

    def room(self) -> int:
        """How many more records may be handed over now (at least 1 once there is room)."""
        return max(1, self.max_in_flight - self._records)

    async def wait_for_room(self) -> None:
        """Return once fewer than ``max_in_flight`` records are in flight (the wait is counted:
        ``StreamStats.room_wait_s``)."""
        if self._room.is_set():
            return
        began = time.perf_counter()
        await self._room.wait()
        self._stats.room_wait_s += time.perf_counter() - began

    def hand(self, batch: Handed[P]) -> None:
        """A batch was handed to the engine: commit its offsets once it is durable."""
        self._in_flight.append(batch)
        self._records += batch.records
        if self._records >= self.max_in_flight:
            self._room.clear()
        if self._records * 2 >= self.max_in_flight:
            self._hurry.set()
        self._settled.clear()
        self._handed.set()

    # -- the committing task ---------------------------------------------------------------

    async def run(self) -> None:
        """Commit batches as they become durable, until cancelled or the engine fails."""
        in_flight = self._in_flight
        while True:
            if not in_flight:
                self._settled.set()
                await self._handed.wait()
                self._handed.clear()
                continue
            covered = len(in_flight)  # one barrier covers every batch handed over before it
            began = time.monotonic()
            await self.durable()
            failure = self._failure()
            if failure is not None:
                logger.critical(
                    "engine failed (%s); %d batches stay uncommitted", failure, len(in_flight)
                )
                self._failed.set()
                return
            done = [in_flight.popleft() for _ in range(covered)]
            offsets: dict[P, int] = {}
            for batch in done:
                await self._refusals(batch)
                offsets.update(batch.offsets)  # later batches hold later offsets
            await self._commit(offsets)
            for batch in done:
                self._stats.batches += 1
                self._stats.commands += batch.records
                self._records -= batch.records
            if self._records < self.max_in_flight:
                self._room.set()
            await self._pause(began)

    async def _pause(self, began: float) -> None:
        """Wait until ``min_interval_s`` after ``began`` (the last barrier's start), unless a
        ``settle`` waits or half of ``max_in_flight`` is in flight, now or meanwhile."""
        left = began + self.min_interval_s - time.monotonic()
        if left <= 0:
            return
        self._hurry.clear()
        if self._settling or self._records * 2 >= self.max_in_flight:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left):
                await self._hurry.wait()

    async def durable(self) -> None:
        """Everything handed over so far is durable once this returns (each step retried, its
        time counted by name: ``StreamStats.barrier_step_s``)."""
        spent = self._stats.barrier_step_s
        for name, step in self._steps:
            began = time.perf_counter()
            await self.retry(name, step)
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - began

    async def settle(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until nothing is in flight (or the engine failed); True
        when nothing is."""
        if self._failed.is_set():
            return self._settled.is_set()
        self._settling += 1
        self._hurry.set()
        settled = asyncio.ensure_future(self._settled.wait())
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait(
                (settled, failed), timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._settling -= 1
            settled.cancel()
            failed.cancel()
        return self._settled.is_set()

    async def _refusals(self, batch: Handed[P]) -> None:
        """Dead-letter the commands the engine refused; wait for every dead letter."""
        for record, answer in batch.answers:
            try:
                await answer
            except DomainError as error:
                batch.dead.append(await self._dead_letter(record, error.code, str(error)))
        dead = batch.dead
        if dead:
            await self.retry("dead letters", lambda: asyncio.gather(*dead))

    async def retry(self, what: str, step: Step) -> None:
        """``await step()`` until it succeeds, with back-off; each failure is logged and counted
        (``barrier_retries``)."""

        def failed(error: BaseException, _attempt: int, delay: float) -> None:
            self._stats.barrier_retries += 1
            logger.warning("durability step %r failed (%r); retrying in %.2fs",
                           what, error, delay)  # fmt: skip

        # Retried: never commit past a failure (any error, so that none is committed past).
        await retry_until_done(
            step, retry_on=Exception, initial_s=self._initial_s, max_s=self._max_s,
            on_failure=failed,
        )  # fmt: skip
