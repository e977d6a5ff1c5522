"""The MongoDB order repository, write-behind (accounts: ``oms.store.mongo_accounts``; the
schema: ``oms.store.mongo_schema``).

``MongoOrderRepository`` is what the engine is handed. ``save`` (engine thread) puts the batch in
memory (``oms.store.batcher``) and returns; a writer coroutine on an asyncio loop drains memory
and writes each changed order as one insert-only document (``oms.store.documents``), many per
``insert_many(ordered=False)``. While one write is in flight the next batch gathers, so under load
the batches grow by themselves (group commit); ``linger_s`` adds a short wait when idle.

Durability: every ``save`` gets a mark; ``flush()`` (a thread) and ``await durable()`` (a loop)
wait until the writer has written past it, and ``after_durable`` callbacks (the journal's
publication of a batch's events) run on the writer, in order, as soon as it has. A failed write is logged, kept and retried with
backoff until it succeeds (duplicate keys are a replay and count as written); a waiter that runs
out of time gets ``StoreUnavailable`` carrying the last failure. Nothing is dropped.

An open order's change that nobody waits for yet is held back up to ``hold_open_s`` (most
orders end within milliseconds, so their whole life becomes one document); a waiter's mark, a
terminal state or the hold's end sends it. Holding is safe: what no barrier covered was never
acknowledged (no Kafka offset committed), so a crash replays it.

Reads come from memory; only an order memory dropped (terminal and durable) is read from
MongoDB, by ``_id``, and listing past what memory holds merges the terminal orders MongoDB has.
Those reads never run on the caller's thread: ``read``/``read_page`` hand them to the store's
loop (at most ``read_concurrency`` at once, so a burst of reads cannot crowd out the writer) and
return a future that fails with ``StoreUnavailable`` after ``read_timeout_s``. On MongoDB and
DocumentDB a page is served by the ``(account_id, created_at)`` or ``(terminal, created_at)``
index (sorted by ``created_at`` alone, ties at the page's edge fetched by equality); FerretDB on
SQLite uses no index at all, so there one query sorts in full (a scan, bounded by the timeout).
Finished orders read back are kept (the ``read_back`` most recently read): they never change.

Recovery never reads ``orders``: each write first logs its order documents per partition, and
checkpoints (``begin_checkpoint``, ``write_checkpoint``) bound how much of that log a restart
reads (``recover``: ``oms.store.mongo_recovery``; the format: ``oms.store.recovery_log``).
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
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from oms.config import Settings
from oms.domain.errors import StoreClosed, StoreError, StoreUnavailable
from oms.domain.events import OrderEvent
from oms.domain.orders import Order
from oms.durations import Durations
from oms.engine.ports import Execution, OrderQuery, OrderRepository, StoredOrder
from oms.retrying import retry_until_done
from oms.risk.checkpoint import LedgerCheckpoint
from oms.store.batcher import Drained, IdFilter, Key, WriteBehind
from oms.store.documents import OrderDocument, order_document, stored_order
from oms.store.memory import answered
from oms.store.mongo_recovery import Recovery, RecoveryLog, all_duplicates
from oms.store.mongo_schema import init_database, is_ferretdb
from oms.store.recovery_log import (
    Capture,
    delta_document,
    epoch_collection,
)

__all__ = [
    "MongoOrderRepository",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "StoreWriteFailed",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Raw = dict[str, Any]


class StoreWriteFailed(StoreError):
    """A write to MongoDB failed; the writer keeps the batch and retries it."""

    code = "STORE_WRITE_FAILED"


def _listing_key(order: Order) -> tuple[float, str]:
    return (order.created_at, order.order_id)


class _Finished:
    """Finished orders read back from MongoDB, the most recently read kept (any thread).

    A finished order never changes again, so a copy is always right: a client polling an old
    order, or a replay asking for it, costs one MongoDB read (a scan on FerretDB), not one each.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._orders: OrderedDict[str, StoredOrder] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, order_id: str) -> StoredOrder | None:
        with self._lock:
            stored = self._orders.get(order_id)
            if stored is not None:
                self._orders.move_to_end(order_id)
            return stored

    def put(self, stored: StoredOrder) -> None:
        if not stored.order.is_terminal:
            return
        with self._lock:
            self._orders[stored.order.order_id] = stored
            self._orders.move_to_end(stored.order.order_id)
            while len(self._orders) > self._capacity:
                self._orders.popitem(last=False)


class MongoOrderRepository(RecoveryLog, OrderRepository):
    """Write-behind orders over MongoDB; see the module docstring."""

    waits_async = True  # ``durable`` waits for the writer on the caller's loop

    def __init__(
        self,
        mongo_url: str,
        database: str,
        *,
        keep_terminal: int = 100_000,
        max_batch: int = 1_000,
        linger_s: float = 0.002,
        concurrency: int = 2,
        hold_open_s: float = 1.0,
        secondary_indexes: bool | None = None,
        flush_timeout_s: float = 30.0,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 2.0,
        read_timeout_s: float = 1.5,
        read_concurrency: int = 2,
        read_back: int = 10_000,
        partitions: int = 1,
        partition_of: Callable[[str, int], int] | None = None,
    ) -> None:
        """Configure; nothing connects until ``open`` (in a loop) or ``start`` (own thread).

        ``partitions`` and ``partition_of`` (account id, count -> partition) say which partition
        of ``orders`` owns each account: the recovery log is kept per partition.
        """
        if partitions > 1 and partition_of is None:
            raise StoreError("several partitions need a partition_of")
        self.partitions = partitions
        self._partition_of = partition_of
        self._partition_cache: dict[str, int] = {}
        self.mongo_url = mongo_url
        self.database_name = database
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.concurrency = concurrency
        self.hold_open_s = hold_open_s
        self.secondary_indexes = secondary_indexes
        self.flush_timeout_s = flush_timeout_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.read_timeout_s = read_timeout_s
        # Two: FerretDB runs concurrent scans no faster (a page past memory took 37 ms alone,
        # 59 ms each four at a time, measured), and every slot taken is one the writer shares.
        self.read_concurrency = read_concurrency
        self.memory = WriteBehind(keep_terminal)
        self._read_back = _Finished(read_back)
        self.last_error: StoreWriteFailed | None = None
        self.documents_written = 0
        self.duplicates = 0
        self.retries = 0
        self.writes = 0
        self.write_times = Durations()  # per drained batch, from its first insert to durable
        self.reads = 0  # MongoDB reads (queries) made
        self.read_threads: Counter[str] = Counter()  # per thread name: where they ran
        self._waiters: list[tuple[int, concurrent.futures.Future[None]]] = []
        # Publications waiting for their mark, oldest first (appended by the engine thread only,
        # taken by the writer only).
        self._announce: deque[tuple[int, Callable[[], None]]] = deque()
        self._waiters_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id: int | None = None
        self._own_thread: threading.Thread | None = None
        self._wake: asyncio.Event | None = None
        self._signalled = False
        self._closing = False
        self._workers: list[asyncio.Task[None]] = []
        # Drains in the order they were taken, each with "written yet?": the durable mark only
        # advances over a written prefix, whatever order concurrent writes finish in.
        self._in_order: deque[list[Any]] = deque()
        self._client: AsyncMongoClient[Raw] | None = None
        self._collection: AsyncCollection[Raw] | None = None
        self._sync_client: MongoClient[Raw] | None = None
        self._sync_collection: Collection[Raw] | None = None
        self._init_log()
        self._open = False  # reads are taken (open, not closing)
        self._indexed = False  # pages read through the secondary indexes (not FerretDB)
        self._read_slots: asyncio.Semaphore | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> MongoOrderRepository:
        """A repository on the configured server and database."""
        configured: dict[str, Any] = {
            "keep_terminal": settings.keep_terminal_orders,
            "read_timeout_s": settings.store_read_timeout_s,
        }
        return cls(settings.mongo_url, settings.mongo_database, **{**configured, **options})

    def _init_log(self) -> None:
        """The recovery log's state (``oms.store.recovery_log``): this process's writer id, the
        writes it took, how far their order documents are all written, the epoch each
        partition's deltas go to, and per partition the finished orders' filter and newest
        keys."""
        self._database: AsyncDatabase[Raw] | None = None
        self._writer = uuid.uuid4().hex[:12]
        self._drains = 0
        self._stored_through = 0
        self._epoch_lock = threading.Lock()  # a drain and a checkpoint's capture never cross
        self._epochs: dict[int, int] = {}
        self._finished: dict[int, IdFilter] = {}
        self._finished_top: dict[int, dict[str, Key]] = {}
        self._finished_written: dict[int, int] = {}  # full filter slices in the log
        self._log_whole = False
        self._log_began = 0.0
        self.checkpoints = 0  # checkpoints written

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create indexes and start the writer on the running loop."""
        loop = asyncio.get_running_loop()
        self._client = AsyncMongoClient(self.mongo_url)
        database = self._client[self.database_name]
        indexed = self.secondary_indexes
        if indexed is None:
            indexed = not await is_ferretdb(database)
        await init_database(database, secondary_indexes=indexed)
        self._indexed = indexed
        self._read_slots = asyncio.Semaphore(self.read_concurrency)
        self._database = database
        self._collection = database[OrderDocument.Settings.name]
        await self._note_fresh_log(database)
        self._sync_client = MongoClient(self.mongo_url)
        self._sync_collection = self._sync_client[self.database_name][OrderDocument.Settings.name]
        self._wake = asyncio.Event()
        self._closing = False
        self._loop = loop
        self._loop_thread_id = threading.get_ident()
        self._workers = [
            loop.create_task(self._run(), name=f"oms-store-writer-{i}")
            for i in range(self.concurrency)
        ]
        self._open = True

    async def close(self, wait_s: float | None = None) -> None:
        """Write everything saved so far, stop the writer, disconnect (on the writer's loop).

        Raises ``StoreUnavailable`` if the last writes could not be made within ``wait_s``
        (``flush_timeout_s`` by default); what was not written is then lost with the process.
        """
        workers = self._workers
        if not workers:
            return
        self._closing = True
        self._poke()
        try:
            await asyncio.wait_for(
                asyncio.shield(asyncio.gather(*workers)), wait_s or self.flush_timeout_s
            )
            last: list[Any] = [self.memory.drain(), False, self._drains]  # empty saves' marks
            self._in_order.append(last)
            self._complete(last)
        except TimeoutError as exc:
            for worker in workers:
                worker.cancel()
            raise StoreUnavailable(
                f"{self.memory.pending()} orders not written at close: {self.last_error}"
            ) from exc
        finally:
            self._open = False
            self._workers = []
            self._fail_waiters(StoreUnavailable("the order store is closed"))
            if self._client is not None:
                await self._client.close()
            if self._sync_client is not None:
                self._sync_client.close()

    def start(self) -> None:
        """Run the writer on a loop of its own, in a daemon thread (benchmarks, tools, tests)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="oms-store", daemon=True)
        thread.start()
        self._own_thread = thread
        asyncio.run_coroutine_threadsafe(self.open(), loop).result()

    def stop(self) -> None:
        """Close (see ``close``) and end the thread ``start`` began."""
        loop, thread = self._loop, self._own_thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.close(), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            self._own_thread = None

    # -- the engine's port (dispatcher thread) ----------------------------------------------

    def save(self, orders: Sequence[Order], events: Sequence[OrderEvent]) -> None:
        """Take the batch into memory and wake the writer; never waits for I/O."""
        self.memory.save(orders, events)
        if not self._signalled:
            self._signalled = True
            self._poke()

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the writer once everything saved so far is written.

        It counts as a waiter: the writer holds nothing back that a publication waits for.
        """
        self._announce.append((self.memory.saved, callback))
        if not self._signalled:
            self._signalled = True
            self._poke()

    def get(self, order_id: str) -> Order | None:
        """The order if memory holds it (no I/O, any thread); ``read`` for the rest."""
        return self.memory.get(order_id)

    def held(self, order_id: str) -> StoredOrder | None:
        """State and history if memory holds them (no I/O, any thread)."""
        return self.memory.load(order_id)

    def may_be_stored(self, order_id: str) -> bool:
        """True when memory dropped (or never held, after a restart) a finished order."""
        return self.memory.may_be_stored(order_id)

    def read(
        self, order_id: str, *, delay_s: float = 0.0
    ) -> concurrent.futures.Future[StoredOrder | None]:
        """From memory at once; a dropped (terminal) order from MongoDB by ``_id``, on the
        store's loop (see the module docstring)."""
        stored = self.memory.load(order_id) or self._read_back.get(order_id)
        if stored is not None or not self.memory.may_be_stored(order_id):
            return answered(stored)
        return self._on_loop(f"order {order_id}", delay_s, self._read_finished, order_id)

    def read_page(self, query: OrderQuery) -> concurrent.futures.Future[Sequence[Order]]:
        """Newest first: from memory at once when it holds the whole page, else merged with
        MongoDB's finished orders on the store's loop."""
        found, dropped = self.memory.query(query)
        limit = query.limit
        if dropped is None or (len(found) >= limit and _listing_key(found[limit - 1]) > dropped):
            return answered(found)
        if query.status is not None and not query.status.is_terminal:
            return answered(found)  # memory holds every open order: MongoDB adds none
        return self._on_loop("a page of orders", 0.0, self._merged_page, query, found)

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything saved so far is written (the durability barrier)."""
        if threading.get_ident() == self._loop_thread_id:
            raise StoreError("flush() would block the writer's own loop: await durable()")
        waiter = self._waiter(self.memory.saved)
        limit = self.flush_timeout_s if timeout is None else timeout
        try:
            waiter.result(limit)
        except concurrent.futures.TimeoutError as exc:
            raise self._unavailable(limit) from exc

    # -- for the stream layer and the service (any loop) -----------------------------------

    def mark(self) -> int:
        """A mark covering everything saved so far (pass it to ``durable`` later)."""
        return self.memory.saved

    async def durable(self, mark: int | None = None, wait_s: float | None = None) -> None:
        """Wait until everything saved up to ``mark`` (default: so far) is written."""
        waiter = self._waiter(self.memory.saved if mark is None else mark)
        limit = self.flush_timeout_s if wait_s is None else wait_s
        try:
            await asyncio.wait_for(asyncio.wrap_future(waiter), limit)
        except TimeoutError as exc:
            raise self._unavailable(limit) from exc

    @property
    def backlog(self) -> int:
        """Orders waiting to be written (for metrics and readiness)."""
        return self.memory.pending()

    async def recover(self, owned: Iterable[int] | None = None) -> Recovery:
        """Read the store back: every partition's open orders into memory and its finished
        orders noted (for lookups and listings); for the ``owned`` partitions (None: all) also
        their checkpoints, the fills and events stored after them, and the orders to write again.

        Call it after ``open``/``start`` and before the engine runs, or whenever the replica's
        share of the accounts changed (what memory held that nothing waits to write is dropped
        first). It reads the recovery log (``oms.store.recovery_log``): per partition the newest
        checkpoint and what was written after it, never ``orders``, unless the log does not go
        back to the database's first order (a database older than the log): then it reads every
        order document once, as it did before the log, and the checkpoints that follow make the
        log whole.
        """
        chosen = None if owned is None else frozenset(owned)
        return await asyncio.to_thread(self._recover, chosen)

    def recover_now(self, owned: Iterable[int] | None = None) -> Recovery:
        """``recover`` for a caller outside any event loop (tools, tests); blocks its thread."""
        return self._recover(None if owned is None else frozenset(owned))

    async def executions(self, account_id: str | None = None) -> list[Execution]:
        """The fills a recovery books on top of the checkpoints (of one account, or all): those
        stored after each partition's newest checkpoint; every stored fill before there is one."""
        return await asyncio.to_thread(self._executions, account_id)

    # -- checkpoints (engine thread, then any loop) ------------------------------------------

    def begin_checkpoint(self, partitions: Iterable[int]) -> Capture:
        """The store's side of a checkpoint of ``partitions``: call it on the engine thread at an
        idle point (``Engine.checkpoint``'s capture), with the ledger taken there too.

        It notes the mark of everything saved so far, the open orders of those partitions and
        the versions of their orders not yet written, and starts each partition's next epoch:
        writes taken from now on go there. Then ``await durable(capture.mark)``, wait until
        Kafka acknowledged the events published up to then, and ``write_checkpoint``.
        """
        chosen = frozenset(partitions)
        partition = self._partition
        with self._epoch_lock:
            mark, open_orders, versions = self.memory.capture(lambda a: partition(a) in chosen)
            epochs: dict[int, int] = {}
            for p in sorted(chosen):
                epochs[p] = self._epochs[p] = self._epochs.get(p, 0) + 1
        by_partition: dict[int, list[StoredOrder]] = {p: [] for p in chosen}
        for stored in open_orders:
            by_partition[partition(stored.order.account_id)].append(stored)
        known: dict[int, dict[str, int]] = {p: {} for p in chosen}
        for order_id, version in versions.items():
            order = self.memory.get(order_id)
            if order is not None:
                known[partition(order.account_id)][order_id] = version
        return Capture(mark, epochs, {p: tuple(held) for p, held in by_partition.items()}, known)

    async def write_checkpoint(
        self,
        capture: Capture,
        ledger: LedgerCheckpoint,
        events_from: Mapping[int, int] | None,
    ) -> int:
        """Write the checkpoint ``capture`` began with the ``ledger`` taken with it, then drop
        each partition's older epochs; how many partitions got one.

        Only once everything up to ``capture.mark`` is durable and its events are on
        ``order-events``: recovery trusts both. ``events_from`` are the ends of ``order-events``'
        partitions read before the capture (where anything published after it can only be).
        """
        loop = self._loop
        if loop is None:
            raise StoreError("the order store is not open")
        written = asyncio.run_coroutine_threadsafe(
            self._write_checkpoint(capture, ledger, events_from), loop
        )
        return await asyncio.wrap_future(written)

    # -- the writer (its loop) --------------------------------------------------------------

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            raise StoreError("the order store is not open")
        if threading.get_ident() == self._loop_thread_id:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def _run(self) -> None:
        """One writer: drain, write, report; ``concurrency`` of them overlap their writes."""
        wake = self._wake
        assert wake is not None
        memory = self.memory
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
            if self.linger_s and memory.pending() < self.max_batch and not self._waiters:
                await asyncio.sleep(self.linger_s)
            with self._epoch_lock:
                drained = memory.drain(self._required(), self.hold_open_s)
                self._drains += 1
                number = self._drains
                epochs = dict(self._epochs)
            entry: list[Any] = [drained, False, number]
            self._in_order.append(entry)
            if drained.states:
                # Any error here is a bug, not the server (``_write`` retries those itself): keep
                # the batch and try it again every ``retry_max_s``, reported as a failed write.
                await retry_until_done(
                    functools.partial(self._write, drained, number, epochs),
                    retry_on=Exception,
                    initial_s=self.retry_max_s,
                    max_s=self.retry_max_s,
                    on_failure=self._failure_reported,
                )
            self._complete(entry)
            if self._closing:
                wake.set()

    def _required(self) -> int:
        """The highest mark someone waits on (everything, when closing)."""
        if self._closing:
            return self.memory.saved
        announce = self._announce
        with self._waiters_lock:
            waited = max((mark for mark, _ in self._waiters), default=0)
        return max(waited, announce[-1][0]) if announce else waited

    def _complete(self, entry: list[Any]) -> None:
        entry[1] = True
        in_order = self._in_order
        while in_order and in_order[0][1]:
            drained, _, number = in_order.popleft()
            self.memory.written(drained)
            self._stored_through = max(self._stored_through, number)
        durable = self.memory.durable
        self._announce_durable(durable)  # before the waiters: a barrier sees them published
        self._resolve_waiters(durable)

    def _announce_durable(self, durable: int) -> None:
        announce = self._announce
        while announce and announce[0][0] <= durable:
            _, callback = announce.popleft()
            try:
                callback()
            except Exception:  # a listener's bug must not stop the writer
                logger.exception("publishing a durable batch failed")

    async def _write(self, drained: Drained, number: int, epochs: Mapping[int, int]) -> None:
        documents = [order_document(s.order, s.events) for s in drained.states]
        started = time.perf_counter()
        # The log first: a recovery that finds an order document must find its delta too, or
        # it would not know that state and a replay could decide it differently.
        await self._log(documents, number, epochs)
        for start in range(0, len(documents), self.max_batch):
            await self._insert(documents[start : start + self.max_batch])
        self._note_finished(drained)
        self.write_times.observe(time.perf_counter() - started)

    async def _log(self, documents: list[Raw], number: int, epochs: Mapping[int, int]) -> None:
        """One delta per partition the write touches, into the partition's current epoch."""
        by_partition: dict[int, list[Raw]] = {}
        for document in documents:
            by_partition.setdefault(self._partition(document["account_id"]), []).append(document)
        await asyncio.gather(
            *(
                self._insert_log(
                    epoch_collection(self.partitions, p, epochs.get(p, 0)),
                    delta_document(self._writer, number, self._stored_through, held),
                )
                for p, held in by_partition.items()
            )
        )

    async def _insert_log(self, name: str, document: Raw) -> None:
        """Insert one log document, retried as the order documents are (a duplicate: done)."""

        async def insert() -> None:
            database = self._database
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

    def _note_finished(self, drained: Drained) -> None:
        """Written terminal orders join their partition's filter and newest keys."""
        for state in drained.states:
            order = state.order
            if order.is_terminal:
                p = self._partition(order.account_id)
                self._finished.setdefault(p, IdFilter()).add(order.order_id)
                tops = self._finished_top.setdefault(p, {})
                key = (order.created_at, order.order_id)
                top = tops.get(order.account_id)
                if top is None or key > top:
                    tops[order.account_id] = key

    def _partition(self, account_id: str) -> int:
        cache = self._partition_cache
        found = cache.get(account_id)
        if found is None:
            partition_of = self._partition_of
            found = 0 if partition_of is None else partition_of(account_id, self.partitions)
            if len(cache) >= 100_000:
                cache.clear()
            cache[account_id] = found
        return found

    async def _insert(self, documents: list[Raw]) -> None:
        async def insert() -> None:
            collection = self._collection  # read each time: a reconnect may replace it
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
        waiter: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self.memory.durable >= mark:
            waiter.set_result(None)
            return waiter
        if not self._workers:
            waiter.set_exception(StoreUnavailable("the order store is not open"))
            return waiter
        with self._waiters_lock:
            self._waiters.append((mark, waiter))
        if self.memory.durable >= mark:  # written while we queued
            self._resolve_waiters(self.memory.durable)
        self._poke()
        return waiter

    def _resolve_waiters(self, durable: int) -> None:
        with self._waiters_lock:
            ready = [w for m, w in self._waiters if m <= durable]
            self._waiters = [(m, w) for m, w in self._waiters if m > durable]
        for waiter in ready:
            if not waiter.done():
                waiter.set_result(None)

    def _fail_waiters(self, error: StoreError) -> None:
        with self._waiters_lock:
            waiting, self._waiters = self._waiters, []
        for _, waiter in waiting:
            if not waiter.done():
                waiter.set_exception(error)

    def _unavailable(self, timeout: float) -> StoreUnavailable:
        return StoreUnavailable(
            f"not durable after {timeout}s ({self.memory.pending()} orders pending): "
            f"{self.last_error or 'no write failed; the writer is behind'}"
        )

    # -- reads from MongoDB (the store's loop) ----------------------------------------------

    def _orders_collection(self) -> Collection[Raw]:
        if self._sync_collection is None:
            raise StoreError("the order store is not open")
        return self._sync_collection

    def _on_loop(
        self,
        what: str,
        delay_s: float,
        read: Callable[..., Awaitable[T]],
        *args: Any,
    ) -> concurrent.futures.Future[T]:
        """Run ``read(*args)`` on the store's loop after ``delay_s``, bounded; never raises."""
        loop = self._loop
        if loop is None or not self._open:
            closed: concurrent.futures.Future[T] = concurrent.futures.Future()
            closed.set_exception(StoreClosed(f"could not read {what}: the order store is closed"))
            return closed
        return asyncio.run_coroutine_threadsafe(self._bounded(what, delay_s, read, *args), loop)

    async def _bounded(
        self, what: str, delay_s: float, read: Callable[..., Awaitable[T]], *args: Any
    ) -> T:
        """``read`` within ``read_timeout_s`` (waiting for a read slot included): a server that
        does not answer is ``StoreUnavailable``, never a hang."""
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        slots = self._read_slots
        collection = self._collection
        if slots is None or collection is None or not self._open:
            raise StoreClosed(f"could not read {what}: the order store is closed")
        try:
            async with asyncio.timeout(self.read_timeout_s), slots:
                return await read(collection, *args)
        except TimeoutError:
            raise StoreUnavailable(
                f"could not read {what}: MongoDB did not answer within {self.read_timeout_s}s"
            ) from None
        except PyMongoError as exc:
            raise StoreUnavailable(f"could not read {what}: {exc}") from exc

    def _counted(self) -> None:
        """One more MongoDB read, and the thread it ran on (the engine's must never appear)."""
        self.reads += 1
        self.read_threads[threading.current_thread().name] += 1

    async def _read_finished(
        self, collection: AsyncCollection[Raw], order_id: str
    ) -> StoredOrder | None:
        self._counted()
        document = await collection.find_one({"_id": order_id})
        if document is None:
            return None
        stored = stored_order(document)
        self._read_back.put(stored)
        return stored

    async def _merged_page(
        self, collection: AsyncCollection[Raw], query: OrderQuery, found: list[Order]
    ) -> Sequence[Order]:
        """Memory's matches and MongoDB's finished ones, newest first, one page of them."""
        merged = {o.order_id: o for o in await self._finished_page(collection, query)}
        merged.update((o.order_id, o) for o in found)  # memory's state is never older
        page = sorted(merged.values(), key=_listing_key, reverse=True)
        return page[: query.limit]

    async def _finished_page(
        self, collection: AsyncCollection[Raw], query: OrderQuery
    ) -> list[Order]:
        """The newest finished orders MongoDB holds that match ``query`` (at most ``limit``,
        plus ties on ``created_at`` at the page's edge, in no particular order)."""
        criteria: Raw = {"terminal": True}
        if query.account_id is not None:
            criteria["account_id"] = query.account_id
        if query.symbol is not None:
            criteria["symbol"] = query.symbol
        if query.status is not None:
            criteria["status"] = query.status.value
        limit = query.limit
        documents: list[Raw] = []
        if not self._indexed:
            # FerretDB on SQLite: no filter reaches an index, every query scans; one scan that
            # sorts in full is the cheapest there.
            if query.before is not None:
                at, order_id = query.before
                criteria["$or"] = [
                    {"created_at": {"$lt": at}},
                    {"created_at": at, "order_id": {"$lt": order_id}},
                ]
            documents = await self._find(
                collection, criteria, [("created_at", -1), ("order_id", -1)], limit
            )
            return [stored_order(document).order for document in documents]
        # MongoDB and DocumentDB: sorting by (created_at, order_id) is not what the
        # (account_id, created_at) index gives, so the server would sort every matching
        # document; sort by created_at alone (the index's order) and fetch the ties apart, by
        # equality: at the cursor (those after it) and at the page's edge (all of them).
        older = criteria
        if query.before is not None:
            at, order_id = query.before
            documents += await self._find(
                collection,
                {**criteria, "created_at": at, "order_id": {"$lt": order_id}},
                [("order_id", -1)],
                limit,
            )
            older = {**criteria, "created_at": {"$lt": at}}
        page = await self._find(collection, older, [("created_at", -1)], limit)
        documents += page
        if len(page) >= limit:
            edge = {**criteria, "created_at": page[-1]["created_at"]}
            documents += await self._find(collection, edge, [("order_id", -1)], limit)
        return [stored_order(document).order for document in documents]
