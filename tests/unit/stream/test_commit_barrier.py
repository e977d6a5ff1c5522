"""The commit barrier without Kafka: offsets are committed only once every step said durable."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from oms.domain.errors import UnknownOrder
from oms.stream.commit_barrier import CommitBarrier, Handed
from oms.stream.dead_letters import Record, StreamStats


@dataclass
class Steps:
    """Durability steps a test opens, fails and watches, and what the barrier committed."""

    store: asyncio.Event = field(default_factory=asyncio.Event)
    store_failures: int = 0  # the store step raises this many times before it waits
    engine_failure: str | None = None
    commits: list[dict[str, int]] = field(default_factory=list)
    dead: list[tuple[Record, str]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    async def engine_idle(self) -> None:
        self.order.append("engine idle")

    async def store_durable(self) -> None:
        if self.store_failures:
            self.store_failures -= 1
            raise ConnectionError("store away")
        await self.store.wait()
        self.order.append("store durable")

    async def commit(self, offsets: dict[str, int]) -> None:
        self.order.append("commit")
        self.commits.append(offsets)

    async def dead_letter(self, record: Record, code: str, _detail: str) -> asyncio.Future[Any]:
        self.dead.append((record, code))
        acked: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        acked.set_result(None)
        return acked

    def failure(self) -> str | None:
        return self.engine_failure


@dataclass
class Harness:
    barrier: CommitBarrier[str]
    steps: Steps
    stats: StreamStats
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def _running(min_interval_s: float = 0.0) -> AsyncIterator[Harness]:
    steps, stats = Steps(), StreamStats()
    barrier: CommitBarrier[str] = CommitBarrier(
        steps=[("engine idle", steps.engine_idle), ("store durable", steps.store_durable)],
        commit=steps.commit,
        dead_letter=steps.dead_letter,
        failure=steps.failure,
        stats=stats,
        max_in_flight=10,
        min_interval_s=min_interval_s,
        initial_s=0.001,
        max_s=0.005,
    )
    task = asyncio.create_task(barrier.run())
    try:
        yield Harness(barrier, steps, stats, task)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with _running() as running:
        yield running


@pytest.fixture
async def pausing() -> AsyncIterator[Harness]:
    """A barrier whose next start comes 1 s after the last one's, its store durable."""
    async with _running(min_interval_s=1.0) as running:
        running.steps.store.set()
        yield running


def _record(offset: int) -> Record:
    return Record("orders", 0, offset, b"a1", b"{}", 0.0)


async def _turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_commit_when_the_store_is_not_durable_yet_then_nothing_is_committed(
    harness: Harness,
) -> None:
    # Arrange / Act: a batch handed over while the store has not written it
    harness.barrier.hand(Handed({"orders-0": 5}, 5))
    await _turns()

    # Assert: no commit, the batch still in flight
    assert harness.steps.commits == []
    assert harness.barrier.in_flight == 1


async def test_commit_when_every_step_is_durable_then_the_offsets_are_committed_after_them(
    harness: Harness,
) -> None:
    # Arrange: two batches of one partition, the second holding the later offset
    harness.barrier.hand(Handed({"orders-0": 5}, 5))
    harness.barrier.hand(Handed({"orders-0": 9, "orders-1": 3}, 4))

    # Act: the store becomes durable
    harness.steps.store.set()
    settled = await harness.barrier.settle(1.0)

    # Assert: one commit of the latest offsets, after both steps, in order
    assert settled is True
    assert harness.steps.commits == [{"orders-0": 9, "orders-1": 3}]
    assert harness.steps.order == ["engine idle", "store durable", "commit"]
    assert (harness.stats.batches, harness.stats.commands) == (2, 9)


async def test_commit_when_a_step_fails_then_it_is_retried_and_never_skipped(
    harness: Harness,
) -> None:
    # Arrange: a store that fails three times, then writes
    harness.steps.store_failures = 3
    harness.steps.store.set()

    # Act
    harness.barrier.hand(Handed({"orders-0": 2}, 2))
    await harness.barrier.settle(1.0)

    # Assert: committed only after the store said durable, every failure counted
    assert harness.steps.commits == [{"orders-0": 2}]
    assert harness.stats.barrier_retries == 3
    assert harness.steps.order.index("store durable") < harness.steps.order.index("commit")


async def test_commit_when_the_engine_failed_then_nothing_more_is_committed(
    harness: Harness,
) -> None:
    # Arrange: the engine failed while the batch was decided
    harness.steps.engine_failure = "OrderDirectory (tell)"
    harness.steps.store.set()

    # Act
    harness.barrier.hand(Handed({"orders-0": 2}, 2))
    settled = await harness.barrier.settle(1.0)
    await _turns()

    # Assert: the barrier stopped for good, the batch uncommitted
    assert settled is False
    assert harness.barrier.failed is True
    assert harness.task.done()
    assert harness.steps.commits == []


async def test_commit_when_the_engine_refused_a_command_then_it_is_dead_lettered_first(
    harness: Harness,
) -> None:
    # Arrange: a cancel the engine refused and one it took
    loop = asyncio.get_running_loop()
    refused: asyncio.Future[Any] = loop.create_future()
    refused.set_exception(UnknownOrder("no order o-9"))
    taken: asyncio.Future[Any] = loop.create_future()
    taken.set_result(None)
    batch: Handed[str] = Handed({"orders-0": 8}, 2, [(_record(6), refused), (_record(7), taken)])

    # Act
    harness.barrier.hand(batch)
    harness.steps.store.set()
    await harness.barrier.settle(1.0)

    # Assert: the refused one dead-lettered with its reason code, then the offsets committed
    assert harness.steps.dead == [(_record(6), "UNKNOWN_ORDER")]
    assert harness.steps.commits == [{"orders-0": 8}]


async def test_hand_when_max_in_flight_is_reached_then_no_room_until_committed(
    harness: Harness,
) -> None:
    # Arrange / Act: ten records in flight, the bound
    harness.barrier.hand(Handed({"orders-0": 10}, 10))
    waiting = asyncio.create_task(harness.barrier.wait_for_room())
    await _turns()
    blocked = not waiting.done()
    harness.steps.store.set()
    await asyncio.wait_for(waiting, 1.0)

    # Assert: no room while they were in flight, room (all of it) once committed
    assert blocked is True
    assert harness.barrier.room() == 10


async def test_wait_for_room_when_the_bound_is_reached_then_the_wait_is_counted(
    harness: Harness,
) -> None:
    # Arrange: ten records in flight, the bound, and a store that writes 50 ms later
    harness.barrier.hand(Handed({"orders-0": 10}, 10))
    waiting = asyncio.create_task(harness.barrier.wait_for_room())
    await _turns()

    # Act
    await asyncio.sleep(0.05)
    harness.steps.store.set()
    await asyncio.wait_for(waiting, 1.0)

    # Assert: the fetch side's wait shows in the stats (about the 50 ms it waited)
    assert harness.stats.room_wait_s >= 0.04


async def test_durable_when_the_steps_run_then_each_steps_time_is_counted_by_name(
    harness: Harness,
) -> None:
    # Arrange: a batch whose store write takes 50 ms
    harness.barrier.hand(Handed({"orders-0": 2}, 2))
    await _turns()

    # Act
    await asyncio.sleep(0.05)
    harness.steps.store.set()
    await harness.barrier.settle(1.0)

    # Assert: the store step holds the wait, both steps are named
    spent = harness.stats.barrier_step_s
    assert set(spent) == {"engine idle", "store durable"}
    assert spent["store durable"] >= 0.04
    assert spent["engine idle"] < spent["store durable"]


async def test_commit_when_batches_come_within_the_interval_then_one_barrier_covers_them(
    pausing: Harness,
) -> None:
    # Arrange: a first batch, committed at once (no barrier ran before it)
    pausing.barrier.hand(Handed({"orders-0": 2}, 2))
    await _until(lambda: len(pausing.steps.commits) == 1)
    first = time.monotonic()

    # Act: two more batches during the pause
    pausing.barrier.hand(Handed({"orders-0": 3}, 1))
    pausing.barrier.hand(Handed({"orders-0": 4}, 1))
    await asyncio.sleep(0.1)
    during = list(pausing.steps.commits)
    await _until(lambda: len(pausing.steps.commits) == 2)

    # Assert: nothing committed during the pause, then one commit of both, after it
    assert during == [{"orders-0": 2}]
    assert pausing.steps.commits[1] == {"orders-0": 4}
    assert time.monotonic() - first >= 0.8


async def test_settle_when_the_barrier_pauses_then_it_commits_at_once(
    pausing: Harness,
) -> None:
    # Arrange: a first commit, then a batch during the pause
    pausing.barrier.hand(Handed({"orders-0": 2}, 2))
    await _until(lambda: len(pausing.steps.commits) == 1)
    pausing.barrier.hand(Handed({"orders-0": 3}, 1))

    # Act: a stop (or a rebalance) waits for what is in flight
    began = time.monotonic()
    settled = await pausing.barrier.settle(1.0)

    # Assert: committed without waiting out the pause
    assert settled is True
    assert pausing.steps.commits[-1] == {"orders-0": 3}
    assert time.monotonic() - began < 0.5


async def test_hand_when_half_of_max_in_flight_is_in_flight_then_the_pause_ends(
    pausing: Harness,
) -> None:
    # Arrange: a first commit, then the pause
    pausing.barrier.hand(Handed({"orders-0": 2}, 2))
    await _until(lambda: len(pausing.steps.commits) == 1)
    began = time.monotonic()

    # Act: five records of the ten allowed come during the pause
    pausing.barrier.hand(Handed({"orders-0": 7}, 5))
    await _until(lambda: len(pausing.steps.commits) == 2)

    # Assert: committed before the pause's end, so the fetch side never runs out of room
    assert pausing.steps.commits[1] == {"orders-0": 7}
    assert time.monotonic() - began < 0.5


async def _until(condition: Callable[[], bool], within_s: float = 2.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "not within the bound"
        await asyncio.sleep(0.005)
