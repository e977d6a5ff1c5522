"""The repository's bookkeeping that needs no server: durability advances in drain order, and
failed writes are retried (``oms.retrying``) with duplicates counting as written."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from typing import Any

from pymongo.errors import AutoReconnect, BulkWriteError, DuplicateKeyError

from oms.store.mongo import MongoOrderRepository
from oms.store.mongo_writer import MongoWriter
from tests.unit.store.histories import open_history, settled_history, states


def test_complete_when_drains_finish_out_of_order_then_the_durable_mark_advances_in_order() -> None:
    repository = MongoOrderRepository("mongodb://unused/", "unused")
    memory = repository.memory
    first_history, second_history = open_history("o-1"), open_history("o-2")
    for event, order in zip(first_history, states(first_history), strict=True):
        memory.save([order], [event])
    first = [memory.drain(), False, 1, []]
    for event, order in zip(second_history, states(second_history), strict=True):
        memory.save([order], [event])
    second = [memory.drain(), False, 2, []]
    repository.writer._in_order.extend([first, second])

    repository.writer._complete(second)  # the later write finished first
    assert memory.durable == 0
    repository.writer._complete(first)
    assert memory.durable == 4
    assert not repository.writer._in_order
    assert repository.writer._stored_through == 2  # both writes' order documents are written


class _FlakyCollection:
    """Fails each call with the next of ``errors`` (None: succeeds), counting calls."""

    def __init__(self, *errors: Exception | None) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def _call(self) -> None:
        self.calls += 1
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error

    async def insert_many(self, documents: list[dict[str, Any]], *, ordered: bool) -> None:
        await self._call()

    async def insert_one(self, document: dict[str, Any]) -> None:
        await self._call()


def _fast_retrying() -> MongoOrderRepository:
    return MongoOrderRepository(
        "mongodb://unused/", "unused", retry_initial_s=0.001, retry_max_s=0.002
    )


async def test_insert_when_the_server_fails_twice_then_retried_and_written_once() -> None:
    # Arrange
    repository = _fast_retrying()
    collection = _FlakyCollection(AutoReconnect("down"), AutoReconnect("down"), None)
    repository.connection.orders = collection  # type: ignore[assignment]

    # Act
    await repository.writer._insert([{"_id": "a"}, {"_id": "b"}])

    # Assert
    assert collection.calls == 3
    assert (repository.retries, repository.writes, repository.documents_written) == (2, 1, 2)
    assert repository.last_error is None  # cleared once a write succeeds again


async def test_insert_when_every_document_is_already_there_then_written_without_a_retry() -> None:
    # Arrange
    repository = _fast_retrying()
    duplicates = BulkWriteError({"writeErrors": [{"code": 11000}, {"code": 11000}]})
    collection = _FlakyCollection(duplicates)
    repository.connection.orders = collection  # type: ignore[assignment]

    # Act
    await repository.writer._insert([{"_id": "a"}, {"_id": "b"}])

    # Assert
    assert collection.calls == 1
    assert (repository.retries, repository.duplicates, repository.writes) == (0, 2, 1)


async def test_insert_log_when_the_server_fails_then_retried_until_written_a_duplicate_counting() -> (
    None
):
    # Arrange
    repository = _fast_retrying()
    collection = _FlakyCollection(AutoReconnect("down"), DuplicateKeyError("there"))
    repository.connection.log_database = {"log": collection}  # type: ignore[assignment]

    # Act
    await repository.writer._insert_log("log", {"_id": "d"})

    # Assert
    assert collection.calls == 2
    assert repository.retries == 1
    assert repository.last_error is not None
    assert repository.last_error.code == "STORE_WRITE_FAILED"


class _GatedOrders:
    """``orders`` that takes nothing until its gate opens, noting what it took."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.inserted: list[str] = []
        self.inserts: list[list[str]] = []  # each call's documents

    async def insert_many(self, documents: list[dict[str, Any]], *, ordered: bool) -> None:
        await self.gate.wait()
        ids = [str(d["_id"]) for d in documents]
        self.inserted.extend(ids)
        self.inserts.append(ids)


class _Log:
    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    async def insert_one(self, document: dict[str, Any]) -> None:
        self.documents.append(document)


def _running(repository: MongoOrderRepository, orders: _GatedOrders) -> dict[str, _Log]:
    logs: dict[str, _Log] = defaultdict(_Log)
    connection = repository.connection
    connection.orders = orders  # type: ignore[assignment]
    connection.log_database = logs  # type: ignore[assignment]
    connection.loop = asyncio.get_running_loop()
    connection.loop_thread_id = threading.get_ident()
    repository.writer.start()
    return logs


async def test_write_when_orders_is_slow_then_durable_once_logged_and_orders_follows() -> None:
    # Arrange
    repository = MongoOrderRepository("mongodb://unused/", "unused")
    orders = _GatedOrders()
    logs = _running(repository, orders)
    history = settled_history("o-1")
    writer = repository.writer

    # Act
    for event, order in zip(history, states(history), strict=True):
        writer.save([order], [event])
    await writer.durable(wait_s=1.0)

    # Assert: durable (a publication may go) with ``orders`` still empty; what depends on
    # ``orders`` (a checkpoint's drop of older deltas, the delta's "stored" mark) waits for it.
    assert repository.memory.durable == len(history)
    assert [len(log.documents) for log in logs.values()] == [1]
    assert orders.inserted == []
    assert writer._stored_through == 0
    projected = asyncio.ensure_future(writer.projected(wait_s=1.0))
    await asyncio.sleep(0.01)
    assert not projected.done()
    orders.gate.set()
    await projected
    assert orders.inserted == ["o-1"]
    assert writer._stored_through == writer._drains  # every drain taken, empty ones too
    await writer.close()


async def test_write_when_orders_lags_past_its_bound_then_the_writers_wait_for_it() -> None:
    # Arrange
    repository = MongoOrderRepository("mongodb://unused/", "unused", max_unprojected=1)
    orders = _GatedOrders()
    _running(repository, orders)
    writer = repository.writer
    first, second = settled_history("o-1"), settled_history("o-2")
    writer.save(states(first)[-1:], first)
    await writer.durable(wait_s=1.0)

    # Act: one document behind already; the next save cannot be logged until ``orders`` moves
    writer.save(states(second)[-1:], second)
    waiting = asyncio.ensure_future(writer.durable(wait_s=1.0))
    await asyncio.sleep(0.05)

    # Assert
    assert not waiting.done()
    orders.gate.set()
    await waiting
    await writer.projected(wait_s=1.0)
    assert orders.inserted == ["o-1", "o-2"]
    await writer.close()


async def test_write_when_projection_is_inline_then_durable_only_once_orders_has_it() -> None:
    # Arrange
    repository = MongoOrderRepository("mongodb://unused/", "unused", projection="inline")
    orders = _GatedOrders()
    _running(repository, orders)
    writer = repository.writer
    history = settled_history("o-1")
    writer.save(states(history)[-1:], history)

    # Act
    waiting = asyncio.ensure_future(writer.durable(wait_s=1.0))
    await asyncio.sleep(0.05)

    # Assert
    assert not waiting.done()
    orders.gate.set()
    await waiting
    assert orders.inserted == ["o-1"]
    assert writer._stored_through == writer._drains  # every drain taken, empty ones too
    await writer.close()


async def test_project_when_a_linger_is_set_then_batches_logged_meanwhile_share_one_insert() -> (
    None
):
    # Arrange: one projector, gathering for 0.2 s; ``orders`` takes at once
    repository = MongoOrderRepository(
        "mongodb://unused/", "unused", concurrency=1, project_linger_s=0.2
    )
    orders = _GatedOrders()
    orders.gate.set()
    logs = _running(repository, orders)
    writer = repository.writer

    # Act: three writes, each durable before the next is saved
    for order_id in ("o-1", "o-2", "o-3"):
        history = settled_history(order_id)
        writer.save(states(history)[-1:], history)
        await writer.durable(wait_s=1.0)
    await asyncio.sleep(0.3)

    # Assert: three deltas logged, one insert into ``orders``
    assert sum(len(log.documents) for log in logs.values()) == 3
    assert orders.inserts == [["o-1", "o-2", "o-3"]]
    assert writer._stored_through == writer._drains
    await writer.close()


async def _gathering_one_order() -> tuple[MongoWriter, _GatedOrders]:
    """A writer whose one projector is gathering for 30 s, one order logged and not in
    ``orders``, which takes whatever it is given at once."""
    repository = MongoOrderRepository(
        "mongodb://unused/", "unused", concurrency=1, project_linger_s=30.0
    )
    orders = _GatedOrders()
    orders.gate.set()
    _running(repository, orders)
    writer = repository.writer
    history = settled_history("o-1")
    writer.save(states(history)[-1:], history)
    await writer.durable(wait_s=1.0)
    await asyncio.sleep(0.01)  # the projector is gathering now
    return writer, orders


async def test_project_when_a_checkpoint_waits_on_orders_then_the_linger_is_cut_short() -> None:
    # Arrange: a linger far longer than the wait allowed
    writer, orders = await _gathering_one_order()

    # Act
    await writer.projected(wait_s=1.0)

    # Assert
    assert orders.inserted == ["o-1"]
    await writer.close()


async def test_close_when_a_projector_is_gathering_then_orders_is_written_at_once() -> None:
    # Arrange
    writer, orders = await _gathering_one_order()

    # Act
    await writer.close(wait_s=1.0)

    # Assert
    assert orders.inserted == ["o-1"]
