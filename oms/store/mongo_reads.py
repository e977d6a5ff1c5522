"""The order repository's reads: memory first, MongoDB for the finished orders memory dropped.

Reads come from memory; only an order memory dropped (terminal and durable) is read from
MongoDB, by ``_id``, and listing past what memory holds merges the terminal orders MongoDB has.
Those reads never run on the caller's thread: ``read``/``read_page`` hand them to the store's
loop (at most ``read_concurrency`` at once, so a burst of reads cannot crowd out the writer) and
return a future that fails with ``StoreUnavailable`` after ``read_timeout_s``. On MongoDB and
DocumentDB a page is served by the ``(account_id, created_at)`` or ``(terminal, created_at)``
index (sorted by ``created_at`` alone, ties at the page's edge fetched by equality); FerretDB on
SQLite uses no index at all, so there one query sorts in full (a scan, bounded by the timeout).
Finished orders read back are kept (the ``read_back`` most recently read): they never change.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from oms.domain.errors import StoreClosed, StoreUnavailable
from oms.domain.orders import Order
from oms.engine.ports import OrderQuery, StoredOrder
from oms.store.batcher import WriteBehind
from oms.store.documents import stored_order
from oms.store.memory import answered
from oms.store.mongo_connection import MongoConnection, Raw

__all__ = ["MongoReads"]

T = TypeVar("T")

# A retried order read waits up to 2**this times read_timeout_s (24 s at the default 1.5 s).
_RETRY_DOUBLINGS = 4


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


class MongoReads:
    """The reads of one repository; see the module docstring."""

    def __init__(
        self,
        connection: MongoConnection,
        memory: WriteBehind,
        *,
        read_timeout_s: float,
        read_concurrency: int,
        read_back: int,
    ) -> None:
        """Configure; MongoDB is read only between ``open`` and ``close``."""
        self._connection = connection
        self.memory = memory
        self.read_timeout_s = read_timeout_s
        self.read_concurrency = read_concurrency
        self._read_back = _Finished(read_back)
        self.reads = 0  # MongoDB reads (queries) made
        self.read_threads: Counter[str] = Counter()  # per thread name: where they ran
        self._open = False  # reads are taken (open, not closing)
        self._indexed = False  # pages read through the secondary indexes (not FerretDB)
        self._read_slots: asyncio.Semaphore | None = None

    def open(self, *, indexed: bool) -> None:
        """Take reads, on the running loop (the connection's); ``indexed``: pages are read
        through the secondary indexes (not on FerretDB)."""
        self._indexed = indexed
        self._read_slots = asyncio.Semaphore(self.read_concurrency)
        self._open = True

    def close(self) -> None:
        """Refuse reads from now on (``StoreClosed``)."""
        self._open = False

    # -- any thread -------------------------------------------------------------------------

    def read(
        self, order_id: str, *, delay_s: float = 0.0, attempt: int = 0
    ) -> concurrent.futures.Future[StoredOrder | None]:
        """From memory at once; a dropped (terminal) order from MongoDB by ``_id``, on the
        store's loop (see the module docstring), within ``read_timeout_s`` doubled for each
        earlier attempt (``_RETRY_DOUBLINGS`` at most).

        The engine holds its commit barrier until the order is loaded (what waits for it must
        not be committed past), so a read that can never finish within the bound would hold
        the replica for good: on FerretDB an ``_id`` lookup scans the collection (about 2 µs a
        document, 0.4 s at 200,000), and a benchmark's collection outgrew 1.5 s.
        """
        stored = self.memory.load(order_id) or self._read_back.get(order_id)
        if stored is not None or not self.memory.may_be_stored(order_id):
            return answered(stored)
        timeout_s = self.read_timeout_s * 2 ** min(attempt, _RETRY_DOUBLINGS)
        return self._on_loop(f"order {order_id}", delay_s, timeout_s, self._read_finished, order_id)

    def read_page(self, query: OrderQuery) -> concurrent.futures.Future[Sequence[Order]]:
        """Newest first: from memory at once when it holds the whole page, else merged with
        MongoDB's finished orders on the store's loop."""
        found, dropped = self.memory.query(query)
        limit = query.limit
        if dropped is None or (len(found) >= limit and _listing_key(found[limit - 1]) > dropped):
            return answered(found)
        if query.status is not None and not query.status.is_terminal:
            return answered(found)  # memory holds every open order: MongoDB adds none
        return self._on_loop(
            "a page of orders", 0.0, self.read_timeout_s, self._merged_page, query, found
        )

    # -- reads from MongoDB (the store's loop) ----------------------------------------------

    def _on_loop(
        self,
        what: str,
        delay_s: float,
        timeout_s: float,
        read: Callable[..., Awaitable[T]],
        *args: Any,
    ) -> concurrent.futures.Future[T]:
        """Run ``read(*args)`` on the store's loop after ``delay_s``, within ``timeout_s``;
        never raises."""
        loop = self._connection.loop
        if loop is None or not self._open:
            closed: concurrent.futures.Future[T] = concurrent.futures.Future()
            closed.set_exception(StoreClosed(f"could not read {what}: the order store is closed"))
            return closed
        bounded = self._bounded(what, delay_s, timeout_s, read, *args)
        return asyncio.run_coroutine_threadsafe(bounded, loop)

    async def _bounded(
        self,
        what: str,
        delay_s: float,
        timeout_s: float,
        read: Callable[..., Awaitable[T]],
        *args: Any,
    ) -> T:
        """``read`` within ``timeout_s`` (waiting for a read slot included): a server that does
        not answer is ``StoreUnavailable``, never a hang."""
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        slots = self._read_slots
        collection = self._connection.orders  # read each time: a reconnect may replace it
        if slots is None or collection is None or not self._open:
            raise StoreClosed(f"could not read {what}: the order store is closed")
        try:
            async with asyncio.timeout(timeout_s), slots:
                return await read(collection, *args)
        except TimeoutError:
            raise StoreUnavailable(
                f"could not read {what}: MongoDB did not answer within {timeout_s:g}s"
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

    async def _find(
        self,
        collection: AsyncCollection[Raw],
        criteria: Raw,
        sort: list[tuple[str, int]],
        limit: int,
    ) -> list[Raw]:
        self._counted()
        return await collection.find(criteria).sort(sort).limit(limit).to_list()
