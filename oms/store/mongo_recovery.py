"""The order store's recovery log in MongoDB: checkpoints written, and the log read back.

Each write first logs its order documents per partition (``MongoWriter._log``);
checkpoints (``begin_checkpoint``, ``write_checkpoint``) bound how much of that log a restart
reads; ``recover`` folds each partition's checkpoint and later deltas back into the open orders,
the owned partitions' ledger, fills and unpublished events (the format:
``oms.store.recovery_log``). ``RecoveryLog`` is the part of ``MongoOrderRepository`` that does
this, beside its writer and its reads; it owns the partitions' epochs and finished orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bson import Binary
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from oms.codec import CodecError
from oms.domain.errors import StoreError
from oms.domain.events import OrderEvent
from oms.engine.ports import Execution, StoredOrder, executions_of
from oms.risk.checkpoint import LedgerCheckpoint
from oms.risk.restore import Acceptance, accepted_after
from oms.store.batcher import Drained, IdFilter, Key, WriteBehind
from oms.store.documents import OrderDocument, order_document, stored_order
from oms.store.mongo_connection import MongoConnection, Raw
from oms.store.recovery_log import (
    CHECKPOINT,
    DELTA_PREFIX,
    META,
    Capture,
    LogError,
    PartitionCheckpoint,
    PartitionRecovery,
    checkpoint_documents,
    epoch_collection,
    epochs_in,
    finished_collection,
    fold,
    meta_id,
    read_checkpoint,
)

__all__ = ["Recovery", "RecoveryLog", "all_duplicates"]

logger = logging.getLogger(__name__)

_DUPLICATE_KEY = 11000


@dataclass(frozen=True, slots=True)
class Recovery:
    """What ``recover`` read back: the open orders (now in memory), what the owned partitions
    need to rebuild their ledger and publish what may not be on ``order-events``, and counts."""

    open_orders: tuple[StoredOrder, ...]  # of every partition
    finished: int  # terminal orders the log (or the scan) named; memory does not hold them
    documents: int  # documents read
    seconds: float
    # The owned partitions' checkpoints (None: none yet, or the documents were scanned).
    ledger: LedgerCheckpoint | None = None
    # The owned partitions' fills stored after their checkpoints (every fill, after a scan).
    fills: tuple[Execution, ...] = ()
    # The owned partitions' orders accepted after their checkpoints (every one, after a scan):
    # counted again into the velocity windows and trading days the checkpoints hold.
    accepted: tuple[Acceptance, ...] = ()
    # The owned partitions' events stored after their checkpoints, each order's in sequence
    # order: they may or may not have reached ``order-events`` before the process stopped.
    unpublished: tuple[tuple[OrderEvent, str], ...] = ()
    # Per partition of ``order-events``, an offset before any of them (None: see below).
    events_from: Mapping[int, int] | None = None
    # Without a checkpoint to say where: when the log began (nothing of it was published before).
    log_began: float | None = None
    scanned: bool = False  # the log was not whole yet: every order document was read
    unreadable: tuple[str, ...] = ()  # ``_id`` of each document skipped: not an order's state


_ORDER_KEYS = (("order_id", str), ("account_id", str), ("terminal", bool), ("version", int),
               ("created_at", int | float))  # fmt: skip


def _has_order_keys(document: Raw) -> bool:
    """True when ``document`` carries the fields recovery sorts and files orders by."""
    return all(isinstance(document.get(name), kind) for name, kind in _ORDER_KEYS)


def all_duplicates(error: BulkWriteError) -> bool:
    details = error.details
    errors = details.get("writeErrors", [])
    return (
        bool(errors)
        and not details.get("writeConcernErrors")
        and all(e.get("code") == _DUPLICATE_KEY for e in errors)
    )


class RecoveryLog:
    """The recovery log of one repository: the partitions' epochs and finished orders, the
    checkpoints written, and the log read back (the writer logs each write's deltas here first:
    ``oms.store.mongo_writer``)."""

    def __init__(
        self,
        connection: MongoConnection,
        memory: WriteBehind,
        *,
        partitions: int,
        partition_of: Callable[[str, int], int] | None,
        wake_writer: Callable[[], None],
    ) -> None:
        """The log's state: the epoch each partition's deltas go to, and per partition the
        finished orders' filter and newest keys. ``partition_of`` (account id, count ->
        partition) says which partition of ``orders`` owns each account; ``wake_writer`` is
        called when recovery put orders in memory to write again."""
        if partitions > 1 and partition_of is None:
            raise StoreError("several partitions need a partition_of")
        self._connection = connection
        self.memory = memory
        self.partitions = partitions
        self._partition_of = partition_of
        self._partition_cache: dict[str, int] = {}
        self._wake_writer = wake_writer
        self.epoch_lock = threading.Lock()  # a drain and a checkpoint's capture never cross
        self._epochs: dict[int, int] = {}
        self._finished: dict[int, IdFilter] = {}
        self._finished_top: dict[int, dict[str, Key]] = {}
        self._finished_written: dict[int, int] = {}  # full filter slices in the log
        self._log_whole = False
        self._log_began = 0.0
        self.checkpoints = 0  # checkpoints written
        # Waits until every batch logged so far is in ``orders`` (the writer's ``projected``,
        # set by the repository): a checkpoint drops the epochs before it, deltas and all.
        self.projected: Callable[[], Awaitable[None]] | None = None

    def partition(self, account_id: str) -> int:
        """The partition of ``orders`` that owns ``account_id`` (cached; any thread)."""
        cache = self._partition_cache
        found = cache.get(account_id)
        if found is None:
            partition_of = self._partition_of
            found = 0 if partition_of is None else partition_of(account_id, self.partitions)
            if len(cache) >= 100_000:
                cache.clear()
            cache[account_id] = found
        return found

    # -- the writer's side (its loop) ---------------------------------------------------------

    def current_epochs(self) -> dict[int, int]:
        """The epoch each partition's deltas go to now (hold ``epoch_lock``)."""
        return dict(self._epochs)

    def note_written(self, drained: Drained) -> None:
        """Written terminal orders join their partition's filter and newest keys."""
        for state in drained.states:
            order = state.order
            if order.is_terminal:
                p = self.partition(order.account_id)
                self._finished.setdefault(p, IdFilter()).add(order.order_id)
                tops = self._finished_top.setdefault(p, {})
                key = (order.created_at, order.order_id)
                top = tops.get(order.account_id)
                if top is None or key > top:
                    tops[order.account_id] = key

    # -- checkpoints (engine thread, then any loop) ------------------------------------------

    def begin_checkpoint(self, partitions: Iterable[int]) -> Capture:
        """The store's side of a checkpoint of ``partitions`` (``MongoOrderRepository``'s)."""
        chosen = frozenset(partitions)
        partition = self.partition
        with self.epoch_lock:
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
        """Write the checkpoint ``capture`` began (on the store's loop, from any loop)."""
        loop = self._connection.loop
        if loop is None:
            raise StoreError("the order store is not open")
        written = asyncio.run_coroutine_threadsafe(
            self._write_checkpoint(capture, ledger, events_from), loop
        )
        return await asyncio.wrap_future(written)

    # -- the recovery log: checkpoints (the writer's loop) ------------------------------------
    async def note_fresh_log(self, database: AsyncDatabase[Raw]) -> None:
        """A database without orders starts its log with its first order: say so once."""
        log_database = self._connection.log_database
        if log_database is None:
            raise StoreError("the order store is not open")
        metas = log_database[META]
        if await metas.find_one({"_id": meta_id(self.partitions)}) is not None:
            self._log_whole = True
            return
        if await database[OrderDocument.Settings.name].find_one({}, {"_id": 1}) is None:
            with contextlib.suppress(DuplicateKeyError):
                await metas.insert_one({"_id": meta_id(self.partitions), "at": time.time()})
            self._log_whole = True

    async def _write_checkpoint(
        self,
        capture: Capture,
        ledger: LedgerCheckpoint,
        events_from: Mapping[int, int] | None,
    ) -> int:
        database = self._connection.log_database
        if database is None:
            raise StoreError("the order store is not open")
        if self.projected is not None:
            # The older epochs' deltas are dropped below: what they hold must be in ``orders``
            # (and every terminal order of them in the finished filter written here).
            await self.projected()
        accounts: dict[int, list[Any]] = {}
        for account in ledger.accounts:
            accounts.setdefault(self.partition(account.account_id), []).append(account)
        written = 0
        for p, epoch in capture.epochs.items():
            finished = self._finished.get(p) or IdFilter()
            packed, count = finished.slices()
            size, full = finished.slice_bytes, finished.full_slices()
            done = self._finished_written.get(p, 0)
            if full > done:
                slices = [
                    {"_id": k, "bits": Binary(packed[k * size : (k + 1) * size])}
                    for k in range(done, full)
                ]
                await self._insert_all(database[finished_collection(self.partitions, p)], slices)
                self._finished_written[p] = full
            # Off the loop: with many open orders, encoding them is the checkpoint's big cost,
            # and the writer's other drains go on meanwhile.
            documents = await asyncio.to_thread(
                _checkpoint_of,
                capture.open_orders[p],
                ledger=LedgerCheckpoint(tuple(accounts.get(p, ()))),
                versions=capture.versions.get(p, {}),
                finished_top=dict(self._finished_top.get(p, {})),
                partial=packed[full * size :],
                full_slices=full,
                finished_count=count,
                events_from=events_from,
                at=time.time(),
            )
            collection = database[epoch_collection(self.partitions, p, epoch)]
            await self._insert_all(collection, documents[:-1])
            try:
                await collection.insert_one(documents[-1])
            except DuplicateKeyError:
                # Another owner wrote this epoch's checkpoint (a rebalance crossed ours): it is
                # as true as ours, and ours is not needed.
                logger.warning("partition %d epoch %d already had a checkpoint", p, epoch)
                continue
            written += 1
            self.checkpoints += 1
            await self._drop_epochs_before(database, p, epoch)
        if not self._log_whole:
            await self._note_whole_log(database)
        return written

    async def _insert_all(self, collection: AsyncCollection[Raw], documents: list[Raw]) -> None:
        """Insert, a document already there counting as written (a retried checkpoint)."""
        if not documents:
            return
        try:
            await collection.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            if not all_duplicates(exc):
                raise

    async def _drop_epochs_before(self, database: AsyncDatabase[Raw], p: int, epoch: int) -> None:
        """The partition's epochs before its newest checkpoint: nothing reads them again."""
        names = await database.list_collection_names()
        for old in epochs_in(names, self.partitions).get(p, []):
            if old < epoch:
                await database.drop_collection(epoch_collection(self.partitions, p, old))

    async def _note_whole_log(self, database: AsyncDatabase[Raw]) -> None:
        """Once every partition has a checkpoint, the log no longer needs ``orders`` read."""
        epochs = epochs_in(await database.list_collection_names(), self.partitions)
        for p in range(self.partitions):
            for epoch in reversed(epochs.get(p, [])):
                name = epoch_collection(self.partitions, p, epoch)
                if await database[name].find_one({"_id": CHECKPOINT}, {"_id": 1}) is not None:
                    break
            else:
                return
        with contextlib.suppress(DuplicateKeyError):
            await database[META].insert_one({"_id": meta_id(self.partitions), "at": time.time()})
        self._log_whole = True

    # -- the recovery log: reading it back (a thread of its own, sync driver) ----------------

    def _read_log(self) -> tuple[dict[int, tuple[PartitionCheckpoint | None, list[Raw]]], int]:
        """Per partition its newest checkpoint and the deltas after it; documents read.

        Raises ``LogError`` when the log is not whole (a database older than it) or unreadable.
        """
        database = self._connection.sync_log_database()
        meta = database[META].find_one({"_id": meta_id(self.partitions)})
        if meta is None:
            raise LogError("the recovery log does not go back to the first order")
        self._log_began = float(meta.get("at", 0.0))
        epochs = epochs_in(database.list_collection_names(), self.partitions)
        read = 1
        found: dict[int, tuple[PartitionCheckpoint | None, list[Raw]]] = {}
        for p in range(self.partitions):
            base: PartitionCheckpoint | None = None
            deltas: list[Raw] = []
            for epoch in reversed(epochs.get(p, [])):
                documents = list(database[epoch_collection(self.partitions, p, epoch)].find({}))
                read += len(documents)
                by_id = {str(d["_id"]): d for d in documents}
                deltas.extend(d for i, d in by_id.items() if i.startswith(DELTA_PREFIX))
                head = by_id.get(CHECKPOINT)
                if head is not None:
                    full: list[Raw] = []
                    if head.get("full_slices"):
                        full = list(database[finished_collection(self.partitions, p)].find({}))
                        read += len(full)
                    base = read_checkpoint(head, by_id, full)
                    break
            found[p] = (base, deltas)
            with self.epoch_lock:
                newest = epochs.get(p, [0])[-1]
                self._epochs[p] = max(self._epochs.get(p, 0), newest)
        return found, read

    def recover(self, owned: frozenset[int] | None) -> Recovery:
        """Read the store back (``MongoOrderRepository.recover``); blocks its thread."""
        started = time.perf_counter()
        self.memory.forget_durable()  # MongoDB is the truth; memory may hold what others moved on
        try:
            return self._recover_from_log(owned, started)
        except CodecError:  # the log's documents (or what they hold) cannot be read
            if self._log_whole:  # not a database older than the log: say what is wrong
                logger.exception("recovery log unreadable: reading every order instead")
            return self._recover_by_scan(owned, started)

    def _recover_from_log(self, owned: frozenset[int] | None, started: float) -> Recovery:
        log, read = self._read_log()
        memory = self.memory
        open_orders: list[StoredOrder] = []
        finished = 0
        mine: list[tuple[PartitionCheckpoint | None, PartitionRecovery]] = []
        unreadable: list[str] = []
        for p, (base, deltas) in log.items():
            folded = fold(base, deltas, stored_order, _has_order_keys)
            unreadable.extend(folded.unreadable)
            for stored in folded.open_orders:
                memory.adopt_open(stored)
            open_orders.extend(folded.open_orders)
            for order_id, account_id, created_at in folded.finished:
                memory.adopt_finished(order_id, account_id, created_at)
            finished += len(folded.finished)
            if base is not None:
                try:
                    memory.gone.adopt(("partition", p), base.finished)
                except ValueError as exc:
                    raise LogError(f"partition {p}: {exc}") from exc
                for account_id, key in base.finished_top.items():
                    memory.adopt_finished_top(account_id, key)
            if owned is None or p in owned:
                self._take_partition(p, base, folded)
                mine.append((base, folded))
        open_orders.sort(key=lambda s: (s.order.created_at, s.order.order_id))
        recovery = Recovery(
            tuple(open_orders),
            finished,
            read,
            time.perf_counter() - started,
            unreadable=tuple(unreadable),
            log_began=self._log_began,
        )
        return _owned_recovery(recovery, mine)

    def _take_partition(
        self, p: int, base: PartitionCheckpoint | None, folded: PartitionRecovery
    ) -> None:
        """An owned partition: its filter and newest keys go on from the log, and what may be
        missing from ``orders`` (a write cut short after its delta) is written again."""
        finished = IdFilter()
        tops: dict[str, Key] = {}
        if base is not None:
            try:
                finished.restore(base.finished, base.finished_count)
            except ValueError as exc:
                raise LogError(f"partition {p}: {exc}") from exc
            tops.update(base.finished_top)
        self._finished_written[p] = finished.full_slices()
        for order_id, account_id, created_at in folded.finished:
            finished.add(order_id)
            key = (created_at, order_id)
            top = tops.get(account_id)
            if top is None or key > top:
                tops[account_id] = key
        self._finished[p] = finished
        self._finished_top[p] = tops
        for stored in folded.resave:
            self.memory.save([stored.order], list(stored.events))
        if folded.resave:
            self._wake_writer()

    def _latest_documents(self, criteria: Raw) -> tuple[dict[str, Raw], int, list[str]]:
        """Per order, its terminal document, else its highest version; how many were read; and
        the ``_id`` of every document without the fields that say which state it holds."""
        latest: dict[str, Raw] = {}
        scanned = 0
        unreadable: list[str] = []
        for document in self._connection.sync_orders_collection().find(criteria):
            scanned += 1
            if not _has_order_keys(document):
                unreadable.append(str(document.get("_id")))
                continue
            held = latest.get(document["order_id"])
            if held is None or (
                not held["terminal"]
                and (document["terminal"] or document["version"] > held["version"])
            ):
                latest[document["order_id"]] = document
        return latest, scanned, unreadable

    def _recover_by_scan(self, owned: frozenset[int] | None, started: float) -> Recovery:
        """Every order document read (a database older than the recovery log): open orders
        into memory, finished ones noted, every owned fill; no checkpoint, nothing to publish
        (what was published before the log is not known). A document that is not an order's
        state is skipped and named in ``Recovery.unreadable``, never fatal."""
        latest, scanned, unreadable = self._latest_documents({})
        open_orders: list[StoredOrder] = []
        fills: list[Execution] = []
        accepted: list[Acceptance] = []
        finished = 0
        memory = self.memory
        filters: dict[int, IdFilter] = {}
        tops: dict[int, dict[str, Key]] = {}
        for order_id, document in latest.items():
            p = self.partition(document["account_id"])
            mine = owned is None or p in owned
            if document["terminal"]:
                account_id, created_at = document["account_id"], document["created_at"]
                memory.adopt_finished(order_id, account_id, created_at)
                finished += 1
                filters.setdefault(p, IdFilter()).add(order_id)
                top = tops.setdefault(p, {})
                key = (created_at, order_id)
                if account_id not in top or key > top[account_id]:
                    top[account_id] = key
                if mine:
                    try:
                        ended = stored_order(document)
                    except CodecError:
                        unreadable.append(str(document["_id"]))
                        continue
                    fills.extend(executions_of(ended))
                    _note_accepted(accepted, ended)
                continue
            try:
                stored = stored_order(document)
            except CodecError:
                unreadable.append(str(document["_id"]))
                continue
            memory.adopt_open(stored)
            open_orders.append(stored)
            if mine:
                fills.extend(executions_of(stored))
                _note_accepted(accepted, stored)
        for p in range(self.partitions):
            if owned is None or p in owned:
                self._finished[p] = filters.get(p, IdFilter())
                self._finished_top[p] = tops.get(p, {})
                self._finished_written[p] = 0
        open_orders.sort(key=lambda s: (s.order.created_at, s.order.order_id))
        fills.sort(key=lambda e: (e.executed_at, e.order_id))
        return Recovery(
            tuple(open_orders),
            finished,
            scanned,
            time.perf_counter() - started,
            unreadable=tuple(unreadable),
            fills=tuple(fills),
            accepted=tuple(accepted),
            scanned=True,
        )

    def executions(self, account_id: str | None) -> list[Execution]:
        """The fills a recovery books (``MongoOrderRepository.executions``); blocks its thread."""
        try:
            log, _ = self._read_log()
            folded = [
                fold(base, deltas, stored_order, _has_order_keys) for base, deltas in log.values()
            ]
        except CodecError:
            return self._executions_by_scan(account_id)
        return [
            execution
            for partition in folded
            for execution in partition.fills
            if account_id is None or execution.account_id == account_id
        ]

    def _executions_by_scan(self, account_id: str | None) -> list[Execution]:
        latest, _, _ = self._latest_documents(
            {} if account_id is None else {"account_id": account_id}
        )
        readable: list[StoredOrder] = []
        for document in latest.values():
            # Skipped here as in ``_recover``, which reports them: a broken document has no fill
            # the ledger could trust.
            with contextlib.suppress(CodecError):
                readable.append(stored_order(document))
        stored = sorted(readable, key=lambda s: (s.order.created_at, s.order.order_id))
        return [execution for s in stored for execution in executions_of(s)]


def _note_accepted(accepted: list[Acceptance], stored: StoredOrder) -> None:
    """The order's acceptance joins ``accepted`` (a scan: no checkpoint holds any)."""
    one = accepted_after(stored.events, 0)
    if one is not None:
        accepted.append(one)


def _checkpoint_of(open_orders: Sequence[StoredOrder], **fields: Any) -> list[Raw]:
    """``checkpoint_documents`` with the open orders encoded here (a worker thread)."""
    return checkpoint_documents(
        open_orders=[order_document(s.order, s.events) for s in open_orders], **fields
    )


def _owned_recovery(
    recovery: Recovery, owned: list[tuple[PartitionCheckpoint | None, PartitionRecovery]]
) -> Recovery:
    """``recovery`` with the owned partitions' checkpoints, later fills and events merged."""
    ledger = LedgerCheckpoint()
    fills: list[Execution] = []
    accepted: list[Acceptance] = []
    unpublished: list[tuple[OrderEvent, str]] = []
    events_from: dict[int, int] | None = {}
    for base, folded in owned:
        fills.extend(folded.fills)
        accepted.extend(folded.accepted)
        unpublished.extend(folded.unpublished)
        if base is None or base.events_from is None:
            events_from = None  # no checkpoint says where: from when the log began
            if base is None:
                continue
        ledger = ledger.merged(base.ledger)
        if events_from is not None and base.events_from is not None:
            for q, offset in base.events_from.items():
                events_from[q] = min(offset, events_from.get(q, offset))
    return dataclasses.replace(
        recovery,
        ledger=ledger,
        fills=tuple(fills),
        accepted=tuple(accepted),
        unpublished=tuple(unpublished),
        events_from=events_from,
    )
