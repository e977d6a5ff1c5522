"""The MongoDB order repository, write-behind: one object composed of three, each its own module.

- ``MongoWriter`` (``oms.store.mongo_writer``): ``save`` into memory, the writer coroutines that
  drain it to MongoDB, and the durability barrier (``flush``, ``durable``, ``after_durable``).
- ``MongoReads`` (``oms.store.mongo_reads``): memory first, MongoDB (on the store's loop,
  bounded) for the finished orders memory dropped.
- ``RecoveryLog`` (``oms.store.mongo_recovery``): the per-partition log each write goes to first,
  its checkpoints, and ``recover`` (the format: ``oms.store.recovery_log``).

They share the write-behind memory (``oms.store.batcher``) and the connection
(``oms.store.mongo_connection``) and are composed, not mixed in: no part can stand in for
another's method, whatever the order of bases. ``MongoOrderRepository`` owns the lifecycle and
hands each call to its part. Accounts: ``oms.store.mongo_accounts``; the schema:
``oms.store.mongo_schema``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from oms.config import Settings
from oms.domain.errors import StoreClosed, StoreError, StoreUnavailable
from oms.domain.events import OrderEvent
from oms.domain.orders import Order
from oms.durations import Durations
from oms.engine.ports import Execution, OrderQuery, OrderRepository, StoredOrder
from oms.legs import Legs
from oms.risk.checkpoint import LedgerCheckpoint
from oms.store.batcher import WriteBehind
from oms.store.mongo_connection import MongoConnection
from oms.store.mongo_reads import MongoReads
from oms.store.mongo_recovery import Recovery, RecoveryLog
from oms.store.mongo_schema import init_database, is_ferretdb
from oms.store.mongo_writer import MongoWriter, StoreWriteFailed
from oms.store.recovery_log import Capture

__all__ = [
    "MongoOrderRepository",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "StoreWriteFailed",
]


class MongoOrderRepository(OrderRepository):
    """Write-behind orders over MongoDB: a writer, reads and a recovery log on one connection
    and one memory; see the module docstring."""

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
        legs: Legs | None = None,
        projection: Literal["behind", "inline"] = "behind",
        max_unprojected: int = 8_000,
        project_linger_s: float = 0.0,
    ) -> None:
        """Configure; nothing connects until ``open`` (in a loop) or ``start`` (own thread).

        ``partitions`` and ``partition_of`` (account id, count -> partition) say which partition
        of ``orders`` owns each account: the recovery log is kept per partition.
        """
        self.secondary_indexes = secondary_indexes
        self.memory = WriteBehind(keep_terminal)
        self.connection = MongoConnection(mongo_url, database)
        self.recovery_log = RecoveryLog(
            self.connection,
            self.memory,
            partitions=partitions,
            partition_of=partition_of,
            wake_writer=self._wake_writer,
        )
        self.writer = MongoWriter(
            self.connection,
            self.memory,
            self.recovery_log,
            max_batch=max_batch,
            linger_s=linger_s,
            concurrency=concurrency,
            hold_open_s=hold_open_s,
            flush_timeout_s=flush_timeout_s,
            retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s,
            legs=legs,
            projection=projection,
            max_unprojected=max_unprojected,
            project_linger_s=project_linger_s,
        )
        self.recovery_log.projected = self.writer.projected
        # Two read slots: FerretDB runs concurrent scans no faster (a page past memory took
        # 37 ms alone, 59 ms each four at a time, measured), and every slot taken is one the
        # writer shares.
        self.reader = MongoReads(
            self.connection,
            self.memory,
            read_timeout_s=read_timeout_s,
            read_concurrency=read_concurrency,
            read_back=read_back,
        )
        self._own_thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> MongoOrderRepository:
        """A repository on the configured server and database."""
        configured: dict[str, Any] = {
            "keep_terminal": settings.keep_terminal_orders,
            "read_timeout_s": settings.store_read_timeout_s,
            "max_batch": settings.store_max_batch,
            "linger_s": settings.store_linger_s,
            "concurrency": settings.store_concurrency,
            "projection": settings.store_projection,
            "max_unprojected": settings.store_max_unprojected,
            "project_linger_s": settings.store_project_linger_s,
        }
        return cls(settings.mongo_url, settings.mongo_database, **{**configured, **options})

    def _wake_writer(self) -> None:
        self.writer.poke()

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create indexes and start the writer on the running loop."""
        database = await self.connection.connect()
        indexed = self.secondary_indexes
        if indexed is None:
            indexed = not await is_ferretdb(database)
        await init_database(database, secondary_indexes=indexed)
        await self.recovery_log.note_fresh_log(database)
        self.writer.start()
        self.reader.open(indexed=indexed)

    async def close(self, wait_s: float | None = None) -> None:
        """Write everything saved so far, stop the writer, disconnect (on the writer's loop).

        Raises ``StoreUnavailable`` if the last writes could not be made within ``wait_s``
        (``flush_timeout_s`` by default); what was not written is then lost with the process.
        """
        if not self.writer.running:
            return
        try:
            await self.writer.close(wait_s)
        finally:
            self.reader.close()
            await self.connection.disconnect()

    def start(self) -> None:
        """Run the writer on a loop of its own, in a daemon thread (benchmarks, tools, tests)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="oms-store", daemon=True)
        thread.start()
        self._own_thread = thread
        asyncio.run_coroutine_threadsafe(self.open(), loop).result()

    def stop(self) -> None:
        """Close (see ``close``) and end the thread ``start`` began."""
        loop, thread = self.connection.loop, self._own_thread
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
        self.writer.save(orders, events)

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the writer once everything saved so far is written."""
        self.writer.after_durable(callback)

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
        self, order_id: str, *, delay_s: float = 0.0, attempt: int = 0
    ) -> concurrent.futures.Future[StoredOrder | None]:
        """From memory at once; a dropped (terminal) order from MongoDB (``MongoReads``)."""
        return self.reader.read(order_id, delay_s=delay_s, attempt=attempt)

    def read_page(self, query: OrderQuery) -> concurrent.futures.Future[Sequence[Order]]:
        """Newest first, from memory, merged with MongoDB's finished orders when it must be."""
        return self.reader.read_page(query)

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything saved so far is written (the durability barrier)."""
        self.writer.flush(timeout)

    # -- for the stream layer and the service (any loop) -----------------------------------

    def mark(self) -> int:
        """A mark covering everything saved so far (pass it to ``durable`` later)."""
        return self.memory.saved

    async def durable(self, mark: int | None = None, wait_s: float | None = None) -> None:
        """Wait until everything saved up to ``mark`` (default: so far) is written."""
        await self.writer.durable(mark, wait_s)

    async def projected(self, wait_s: float | None = None) -> None:
        """Wait until every batch durable so far is in ``orders`` too (``durable`` is the
        recovery log's; history reads of what memory dropped need ``orders``)."""
        await self.writer.projected(wait_s)

    @property
    def backlog(self) -> int:
        """Orders waiting to be written (for metrics and readiness)."""
        return self.memory.pending()

    # The writer's and the reads' figures, for metrics, benchmarks and tests.

    @property
    def writes(self) -> int:
        """``insert_many`` calls that succeeded."""
        return self.writer.writes

    @property
    def documents_written(self) -> int:
        """Order documents written."""
        return self.writer.documents_written

    @property
    def duplicates(self) -> int:
        """Order documents already there (a replay): counted as written."""
        return self.writer.duplicates

    @property
    def retries(self) -> int:
        """Failed writes (each retried)."""
        return self.writer.retries

    @property
    def last_error(self) -> StoreWriteFailed | None:
        """The failure of the last write, until a write succeeds again."""
        return self.writer.last_error

    @property
    def write_times(self) -> Durations:
        """Per drained batch, from its first insert to durable."""
        return self.writer.write_times

    @property
    def reads(self) -> int:
        """MongoDB reads (queries) made."""
        return self.reader.reads

    @property
    def read_threads(self) -> Counter[str]:
        """MongoDB reads per thread name: where they ran."""
        return self.reader.read_threads

    @property
    def checkpoints(self) -> int:
        """Checkpoints written."""
        return self.recovery_log.checkpoints

    # -- recovery and checkpoints -------------------------------------------------------------

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
        return await asyncio.to_thread(self.recovery_log.recover, chosen)

    def recover_now(self, owned: Iterable[int] | None = None) -> Recovery:
        """``recover`` for a caller outside any event loop (tools, tests); blocks its thread."""
        return self.recovery_log.recover(None if owned is None else frozenset(owned))

    async def executions(self, account_id: str | None = None) -> list[Execution]:
        """The fills a recovery books on top of the checkpoints (of one account, or all): those
        stored after each partition's newest checkpoint; every stored fill before there is one."""
        return await asyncio.to_thread(self.recovery_log.executions, account_id)

    def begin_checkpoint(self, partitions: Iterable[int]) -> Capture:
        """The store's side of a checkpoint of ``partitions``: call it on the engine thread at an
        idle point (``Engine.checkpoint``'s capture), with the ledger taken there too.

        It notes the mark of everything saved so far, the open orders of those partitions and
        the versions of their orders not yet written, and starts each partition's next epoch:
        writes taken from now on go there. Then ``await durable(capture.mark)``, wait until
        Kafka acknowledged the events published up to then, and ``write_checkpoint``.
        """
        return self.recovery_log.begin_checkpoint(partitions)

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
        return await self.recovery_log.write_checkpoint(capture, ledger, events_from)
