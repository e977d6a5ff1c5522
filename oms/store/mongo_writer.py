"""The order repository's write-behind writer: memory to MongoDB, and the durability barrier.

``save`` (engine thread) puts the batch in memory (``oms.store.batcher``) and returns; writer
coroutines on the store's loop drain memory and write each changed order as one insert-only
document (``oms.store.documents``), many per ``insert_many(ordered=False)``. While one write is in
flight the next batch gathers, so under load the batches grow by themselves (group commit);
``linger_s`` adds a short wait when idle.

Durability: every ``save`` gets a mark; ``flush()`` (a thread) and ``await durable()`` (a loop)
wait until the writer has written past it, and ``after_durable`` callbacks (the journal's
publication of a batch's events) run on the writer, in order, as soon as it has. A failed write
is logged, kept and retried with backoff until it succeeds (duplicate keys are a replay and count
as written); a waiter that runs out of time gets ``StoreUnavailable`` carrying the last failure.
Nothing is dropped.

An open order's change that nobody waits for yet is held back up to ``hold_open_s`` (most
orders end within milliseconds, so their whole life becomes one document); a waiter's mark, a
terminal state or the hold's end sends it. Holding is safe: what no barrier covered was never
acknowledged (no Kafka offset committed), so a crash replays it.

The recovery log is the write that makes a batch durable; ``orders`` is written behind it.
Each write logs its order documents per partition into the recovery log
(``oms.store.mongo_recovery``, one compressed blob per partition: FerretDB takes a blob of a
thousand orders for far less than their thousand documents), and the batch is durable there:
waiters and ``after_durable`` publications go on. Projectors then insert the same documents
into ``orders`` (the history reads and listings use), in the order the batches were logged;
with ``project_linger_s`` a projector first gathers batches that long (unless someone waits on
``orders``), so that a moderate rate makes a few larger inserts, not one per logged batch.
Nothing is lost between the two: a delta says up to which write its writer's ``orders``
documents were all inserted, and recovery writes the later ones again; a checkpoint waits for
the projection of every batch logged before it, since it drops the older epochs' deltas; a
terminal order leaves memory only once it is in ``orders``; ``flush`` (the engine's stop and
hand-off) waits for both. The log may run ahead of ``orders`` by ``max_unprojected`` documents
at most, then drains wait: FerretDB must take every document in the end, and this bounds what
a restart writes again. ``projection="inline"`` is the old way (``orders`` written before the
batch counts as durable), kept to measure one against the other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from oms.domain.errors import StoreError, StoreUnavailable
from oms.domain.events import OrderEvent
from oms.domain.orders import Order
from oms.durations import Durations
from oms.legs import Legs
from oms.retrying import retry_until_done
from oms.store.batcher import Drained, WriteBehind
from oms.store.documents import order_document
from oms.store.mongo_connection import MongoConnection, Raw
from oms.store.mongo_recovery import RecoveryLog, all_duplicates
from oms.store.recovery_log import delta_document, epoch_collection

__all__ = ["MongoWriter", "StoreWriteFailed"]

logger = logging.getLogger(__name__)


class StoreWriteFailed(StoreError):
    """A write to MongoDB failed; the writer keeps the batch and retries it."""

    code = "STORE_WRITE_FAILED"


class _Waiters:
    """Futures waiting for a count (a durable mark, a projected drain) to reach theirs; any
    thread adds, the writer's loop resolves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, concurrent.futures.Future[None]]] = []

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def highest(self) -> int:
        """The highest count waited for (0: none)."""
        with self._lock:
            return max((count for count, _ in self._waiting), default=0)

    def add(
        self, count: int, reached: Callable[[], int], open_: bool
    ) -> concurrent.futures.Future[None]:
        """A future resolved once ``reached()`` is at ``count`` (failed at once if not ``open_``)."""
        waiter: concurrent.futures.Future[None] = concurrent.futures.Future()
        if reached() >= count:
            waiter.set_result(None)
            return waiter
        if not open_:
            waiter.set_exception(StoreUnavailable("the order store is not open"))
            return waiter
        with self._lock:
            self._waiting.append((count, waiter))
        self.resolve(reached())  # reached while we queued
        return waiter

    def resolve(self, reached: int) -> None:
        with self._lock:
            ready = [w for count, w in self._waiting if count <= reached]
            self._waiting = [(count, w) for count, w in self._waiting if count > reached]
        for waiter in ready:
            if not waiter.done():
                waiter.set_result(None)

    def fail(self, error: StoreError) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for _, waiter in waiting:
            if not waiter.done():
                waiter.set_exception(error)


class MongoWriter:
    """The write-behind writer of one repository; see the module docstring."""

    def __init__(
        self,
        connection: MongoConnection,
        memory: WriteBehind,
        recovery_log: RecoveryLog,
        *,
        max_batch: int,
        linger_s: float,
        concurrency: int,
        hold_open_s: float,
        flush_timeout_s: float,
        retry_initial_s: float,
        retry_max_s: float,
        legs: Legs | None = None,
        projection: Literal["behind", "inline"] = "behind",
        max_unprojected: int = 8000,
        project_linger_s: float = 0.0,
    ) -> None:
        """Configure; nothing runs until ``start`` (on the store's loop)."""
        self._connection = connection
        self.memory = memory
        self._recovery_log = recovery_log
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.concurrency = concurrency
        self.hold_open_s = hold_open_s
        self.flush_timeout_s = flush_timeout_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.projection = projection
        self.max_unprojected = max_unprojected
        self.project_linger_s = project_linger_s
        self.last_error: StoreWriteFailed | None = None
        self.documents_written = 0
        self.duplicates = 0
        self.retries = 0
        self.writes = 0
        self.write_times = Durations()  # per insert into ``orders`` (each projector's call)
        # Its ``to_write`` and ``write`` legs, per order document (oms.legs).
        self.legs = legs or Legs()
        self._waiters = _Waiters()  # on the durable mark
        # Publications waiting for their mark, oldest first (appended by the engine thread only,
        # taken by the writer only).
        self._announce: deque[tuple[int, Callable[[], None]]] = deque()
        self._wake: asyncio.Event | None = None
        self._signalled = False
        self._closing = False
        self._workers: list[asyncio.Task[None]] = []
        # Drains in the order they were taken, each with "written yet?": the durable mark only
        # advances over a written prefix, whatever order concurrent writes finish in.
        self._in_order: deque[list[Any]] = deque()
        # The recovery log's view of this writer: its id, the writes it took, and how far
        # their order documents are all written (each delta carries them).
        self._writer = uuid.uuid4().hex[:12]
        self._drains = 0
        self._stored_through = 0
        # Logged drains whose documents wait for ``orders``, oldest first, each
        # [drained, documents, number]; and those a projector took, each with "inserted yet?":
        # ``_stored_through`` advances over an inserted prefix only.
        self._to_project: deque[tuple[Drained, list[Raw], int]] = deque()
        self._projecting: deque[list[Any]] = deque()
        self._unprojected = 0  # documents logged and not yet in ``orders``
        self._queued = 0  # of those, the documents no projector has taken yet
        self._projected_waiters = _Waiters()  # on ``_stored_through``
        self._project_wake: asyncio.Event | None = None
        self._project_hurry: asyncio.Event | None = None  # ends a projector's gathering wait
        self._room: asyncio.Event | None = None
        self._writers_left = 0

    # -- lifecycle (the store's loop) ---------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between ``start`` and ``close``."""
        return bool(self._workers)

    def start(self) -> None:
        """Start ``concurrency`` writers and as many projectors on the running loop."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._project_wake = asyncio.Event()
        self._project_hurry = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closing = False
        self._writers_left = self.concurrency
        self._workers = [
            loop.create_task(self._run(), name=f"oms-store-writer-{i}")
            for i in range(self.concurrency)
        ]
        if self.projection == "behind":
            self._workers += [
                loop.create_task(self._project_run(), name=f"oms-store-projector-{i}")
                for i in range(self.concurrency)
            ]

    async def close(self, wait_s: float | None = None) -> None:
        """Write everything saved so far and stop the writers; waiters left fail.

        Raises ``StoreUnavailable`` if the last writes could not be made within ``wait_s``
        (``flush_timeout_s`` by default).
        """
        workers = self._workers
        if not workers:
            return
        self._closing = True
        self.poke()
        self._hurry_projectors()
        try:
            await asyncio.wait_for(
                asyncio.shield(asyncio.gather(*workers)), wait_s or self.flush_timeout_s
            )
            last: list[Any] = [self.memory.drain(), False, self._drains, []]  # empty saves' marks
            self._in_order.append(last)
            self._complete(last)
        except TimeoutError as exc:
            for worker in workers:
                worker.cancel()
            raise StoreUnavailable(
                f"{self.memory.pending()} orders not written at close: {self.last_error}"
            ) from exc
        finally:
            self._workers = []
            closed = StoreUnavailable("the order store is closed")
            self._waiters.fail(closed)
            self._projected_waiters.fail(closed)

    # -- the engine's side (dispatcher thread) ------------------------------------------------

    def save(self, orders: Sequence[Order], events: Sequence[OrderEvent]) -> None:
        """Take the batch into memory and wake the writer; never waits for I/O."""
        self.memory.save(orders, events)
        if not self._signalled:
            self._signalled = True
            self.poke()

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the writer once everything saved so far is written.

        It counts as a waiter: the writer holds nothing back that a publication waits for.
        """
        self._announce.append((self.memory.saved, callback))
        if not self._signalled:
            self._signalled = True
            self.poke()

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything saved so far is durable and in ``orders`` too (the engine's
        stop and hand-off: afterwards memory may be dropped and MongoDB read instead)."""
        if self._connection.on_loop_thread():
            raise StoreError("flush() would block the writer's own loop: await durable()")
        limit = self.flush_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + limit
        try:
            self._waiter(self.memory.saved).result(limit)
            drains = self._drains  # every save up to here is in a drain numbered so far
            self._projected_waiter(drains).result(max(deadline - time.monotonic(), 0.0))
        except concurrent.futures.TimeoutError as exc:
            raise self._unavailable(limit) from exc

    # -- for the stream layer and the service (any loop) --------------------------------------

    async def durable(self, mark: int | None = None, wait_s: float | None = None) -> None:
        """Wait until everything saved up to ``mark`` (default: so far) is written."""
        waiter = self._waiter(self.memory.saved if mark is None else mark)
        limit = self.flush_timeout_s if wait_s is None else wait_s
        try:
            await asyncio.wait_for(asyncio.wrap_future(waiter), limit)
        except TimeoutError as exc:
            raise self._unavailable(limit) from exc

    async def projected(self, wait_s: float | None = None) -> None:
        """Wait until every batch logged so far is in ``orders`` too (a checkpoint, which drops
        the older epochs' deltas, must not drop one whose documents ``orders`` lacks)."""
        waiter = self._projected_waiter(self._drains)
        limit = self.flush_timeout_s if wait_s is None else wait_s
        try:
            await asyncio.wait_for(asyncio.wrap_future(waiter), limit)
        except TimeoutError as exc:
            raise self._unavailable(limit) from exc

    def poke(self) -> None:
        """Wake the writers (any thread)."""
        loop, wake = self._connection.loop, self._wake
        if loop is None or wake is None:
            raise StoreError("the order store is not open")
        if self._connection.on_loop_thread():
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    # -- the writer (its loop) ----------------------------------------------------------------

    async def _run(self) -> None:
        """One writer: drain, log (then the batch is durable), hand the documents to the
        projectors; ``concurrency`` of them overlap their logs."""
        wake, room = self._wake, self._room
        assert wake is not None
        assert room is not None
        memory = self.memory
        recovery_log = self._recovery_log
        try:
            while True:
                if self._closing and not memory.pending() and not self._in_order:
                    wake.set()  # let the other writers see it too
                    return
                if memory.pending():  # held open orders: look again when they are due
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.hold_open_s)
                else:
                    await wake.wait()
                wake.clear()
                self._signalled = False
                while self._unprojected >= self.max_unprojected:  # ``orders`` is behind
                    room.clear()
                    await room.wait()
                if self.linger_s and memory.pending() < self.max_batch and not self._waiters:
                    await asyncio.sleep(self.linger_s)
                with recovery_log.epoch_lock:
                    drained = memory.drain(self._required(), self.hold_open_s)
                    self._drains += 1
                    number = self._drains
                    epochs = recovery_log.current_epochs()
                entry: list[Any] = [drained, False, number, []]
                self._in_order.append(entry)
                if drained.states:
                    # Any error here is a bug, not the server (``_write`` retries those itself):
                    # keep the batch and try it again every ``retry_max_s``, reported as a
                    # failed write.
                    await retry_until_done(
                        functools.partial(self._write, entry, epochs),
                        retry_on=Exception,
                        initial_s=self.retry_max_s,
                        max_s=self.retry_max_s,
                        on_failure=self._failure_reported,
                    )
                self._complete(entry)
                if self._closing:
                    wake.set()
        finally:
            self._writers_left -= 1
            if self._project_wake is not None:
                self._project_wake.set()

    def _required(self) -> int:
        """The highest mark someone waits on (everything, when closing)."""
        if self._closing:
            return self.memory.saved
        announce = self._announce
        waited = self._waiters.highest()
        return max(waited, announce[-1][0]) if announce else waited

    def _complete(self, entry: list[Any]) -> None:
        """``entry`` is logged: over the logged prefix, advance the durable mark, publish, wake
        the waiters, and queue the documents for ``orders``."""
        entry[1] = True
        in_order = self._in_order
        while in_order and in_order[0][1]:
            drained, _, number, documents = in_order.popleft()
            self.memory.logged(drained)
            if documents and self.projection == "behind":
                self._to_project.append((drained, documents, number))
                self._unprojected += len(documents)
                self._queued += len(documents)
                wake = self._project_wake
                assert wake is not None
                wake.set()
            elif self._to_project or self._projecting:  # nothing to insert, but keep the order
                self._to_project.append((drained, [], number))
            else:
                self._projected(drained, number)
        durable = self.memory.durable
        self._announce_durable(durable)  # before the waiters: a barrier sees them published
        self._waiters.resolve(durable)

    def _announce_durable(self, durable: int) -> None:
        announce = self._announce
        while announce and announce[0][0] <= durable:
            _, callback = announce.popleft()
            try:
                callback()
            except Exception:  # a listener's bug must not stop the writer
                logger.exception("publishing a durable batch failed")

    async def _write(self, entry: list[Any], epochs: Mapping[int, int]) -> None:
        drained: Drained = entry[0]
        number: int = entry[2]
        documents = [order_document(s.order, s.events) for s in drained.states]
        started, began = time.perf_counter(), time.time()
        # The log first: a recovery that finds an order document must find its delta too, or
        # it would not know that state and a replay could decide it differently.
        await self._log(documents, number, epochs)
        took = time.perf_counter() - started
        durations = self.legs.durations
        durations["write"].observe_many(took, len(documents))
        to_write = durations["to_write"]
        for state in drained.states:
            if state.events:  # its newest change: what this write made durable last
                to_write.observe(max(began - state.events[-1].at, 0.0))
        if self.projection == "inline":
            await self._insert_all(documents)
        else:
            entry[3] = documents

    # -- the projectors (its loop): logged documents into ``orders`` -------------------------

    async def _project_run(self) -> None:
        """One projector: take the oldest logged batches (up to ``max_batch`` documents) and
        insert them; batches count as in ``orders`` in the order they were logged."""
        wake, room, hurry = self._project_wake, self._room, self._project_hurry
        assert wake is not None
        assert room is not None
        assert hurry is not None
        queue, projecting = self._to_project, self._projecting
        while True:
            if not queue:
                if self._closing and self._writers_left == 0:
                    wake.set()  # let the other projectors see it too
                    return
                await wake.wait()
                wake.clear()
                continue
            if self._gather_first():
                hurry.clear()  # a waiter on ``orders`` arriving from here on sets it
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hurry.wait(), self.project_linger_s)
                if not queue:  # another projector took them meanwhile
                    continue
            taken: list[tuple[Drained, int]] = []
            documents: list[Raw] = []
            while queue and (not taken or len(documents) + len(queue[0][1]) <= self.max_batch):
                drained, held, number = queue.popleft()
                taken.append((drained, number))
                documents.extend(held)
            self._queued -= len(documents)
            entry: list[Any] = [taken, False, len(documents)]
            projecting.append(entry)
            if documents:
                await retry_until_done(  # as in ``_run``: only a bug gets here
                    functools.partial(self._insert_all, documents),
                    retry_on=Exception,
                    initial_s=self.retry_max_s,
                    max_s=self.retry_max_s,
                    on_failure=self._failure_reported,
                )
            entry[1] = True
            while projecting and projecting[0][1]:
                done, _, count = projecting.popleft()
                for drained, number in done:
                    self._projected(drained, number)
                self._unprojected -= count
            if self._unprojected < self.max_unprojected:
                room.set()

    def _gather_first(self) -> bool:
        """Whether a projector waits ``project_linger_s`` for more before it inserts: only while
        the queue is short of a full insert and nobody waits on ``orders`` (a checkpoint, a
        flush, a close). ``orders`` is behind the durable point anyway, so the wait delays no
        event and no commit; at a moderate rate it turns tens of small inserts a second into a
        few larger ones, each a transaction FerretDB pays for whatever its size."""
        return (
            self.project_linger_s > 0
            and self._queued < self.max_batch
            and not self._closing
            and not self._projected_waiters
            and self._unprojected < self.max_unprojected // 2
        )

    async def _insert_all(self, documents: list[Raw]) -> None:
        started = time.perf_counter()
        for start in range(0, len(documents), self.max_batch):
            await self._insert(documents[start : start + self.max_batch])
        self.write_times.observe(time.perf_counter() - started)

    def _projected(self, drained: Drained, number: int) -> None:
        """Every batch up to ``drained`` (drain ``number``) is in ``orders``."""
        self.memory.written(drained)
        self._recovery_log.note_written(drained)
        self._stored_through = max(self._stored_through, number)
        self._projected_waiters.resolve(self._stored_through)

    def _projected_waiter(self, number: int) -> concurrent.futures.Future[None]:
        waiter = self._projected_waiters.add(
            number, lambda: self._stored_through, bool(self._workers)
        )
        if not waiter.done():
            self._hurry_projectors()  # a projector gathering for more inserts at once
        return waiter

    def _hurry_projectors(self) -> None:
        """End the projectors' gathering wait (any thread)."""
        loop, hurry = self._connection.loop, self._project_hurry
        if loop is None or hurry is None:
            return
        if self._connection.on_loop_thread():
            hurry.set()
        else:
            loop.call_soon_threadsafe(hurry.set)

    async def _log(self, documents: list[Raw], number: int, epochs: Mapping[int, int]) -> None:
        """One delta per partition the write touches, into the partition's current epoch."""
        recovery_log = self._recovery_log
        partitions = recovery_log.partitions
        by_partition: dict[int, list[Raw]] = {}
        for document in documents:
            p = recovery_log.partition(document["account_id"])
            by_partition.setdefault(p, []).append(document)
        await asyncio.gather(
            *(
                self._insert_log(
                    epoch_collection(partitions, p, epochs.get(p, 0)),
                    delta_document(self._writer, number, self._stored_through, held),
                )
                for p, held in by_partition.items()
            )
        )

    async def _insert_log(self, name: str, document: Raw) -> None:
        """Insert one log document, retried as the order documents are (a duplicate: done)."""

        async def insert() -> None:
            database = self._connection.log_database
            assert database is not None
            with contextlib.suppress(DuplicateKeyError):
                await database[name].insert_one(document)

        await self._retried(insert)

    async def _retried(self, write: Callable[[], Awaitable[None]]) -> None:
        """``write`` until MongoDB takes it: the store's one back-off, every failure reported."""
        await retry_until_done(
            write,
            retry_on=PyMongoError,
            initial_s=self.retry_initial_s,
            max_s=self.retry_max_s,
            on_failure=self._failure_reported,
        )

    async def _insert(self, documents: list[Raw]) -> None:
        async def insert() -> None:
            collection = self._connection.orders  # read each time: a reconnect may replace it
            assert collection is not None
            try:
                await collection.insert_many(documents, ordered=False)
            except BulkWriteError as exc:
                if not all_duplicates(exc):
                    raise  # some document was not written: retried
                self.duplicates += len(exc.details.get("writeErrors", []))

        await self._retried(insert)
        if self.last_error is not None:
            logger.warning("order store writes succeed again after %s", self.last_error)
            self.last_error = None
        self.writes += 1
        self.documents_written += len(documents)

    def _failure_reported(self, error: BaseException, attempt: int, _pause_s: float) -> None:
        """Count a failed write and keep it for waiters; log the first and every tenth."""
        self.retries += 1
        self.last_error = StoreWriteFailed(f"write failed (attempt {attempt + 1}): {error!r}")
        if attempt == 0 or attempt % 10 == 0:
            logger.error("order store write failed, retrying: %s", error, exc_info=error)

    def _waiter(self, mark: int) -> concurrent.futures.Future[None]:
        waiter = self._waiters.add(mark, lambda: self.memory.durable, bool(self._workers))
        if not waiter.done():
            self.poke()  # the writer drains what a waiter needs at once
        return waiter

    def _unavailable(self, timeout: float) -> StoreUnavailable:
        return StoreUnavailable(
            f"not durable after {timeout}s ({self.memory.pending()} orders pending): "
            f"{self.last_error or 'no write failed; the writer is behind'}"
        )
