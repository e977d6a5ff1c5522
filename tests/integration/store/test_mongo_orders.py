"""The write-behind order repository against the real FerretDB: no fakes, a database per test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from decimal import Decimal

import pytest
from pymongo import AsyncMongoClient

from oms.config import Settings
from oms.domain.enums import OrderStatus, OrderType, TimeInForce
from oms.domain.errors import StoreClosed, StoreUnavailable
from oms.domain.events import CancelReason, OrderCancelled, OrderExpired, OrderTriggered
from oms.engine.ports import OrderQuery, StoredOrder
from oms.store.documents import OrderDocument
from oms.store.mongo import MongoOrderRepository
from oms.store.mongo_connection import log_database_name, store_databases
from oms.store.recovery_log import delta_document, epoch_collection
from tests.unit.store.histories import amended_history, open_history, settled_history, states


def _save_whole(repository: MongoOrderRepository, history: list) -> None:
    for event, order in zip(history, states(history), strict=True):
        repository.save([order], [event])


@pytest.fixture
async def database(settings: Settings, unique: str) -> AsyncIterator[str]:
    """A fresh database name, dropped afterwards."""
    name = f"store_{unique}"
    yield name
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    for dropped in store_databases(name):
        await client.drop_database(dropped)
    await client.close()


@pytest.fixture
async def repository(settings: Settings, database: str) -> AsyncIterator[MongoOrderRepository]:
    """An open repository whose writer runs on the test's loop."""
    repo = MongoOrderRepository(settings.mongo_url, database, keep_terminal=2)
    await repo.open()
    yield repo
    await repo.close()


@contextlib.asynccontextmanager
async def _server_away(
    repository: MongoOrderRepository, database: str
) -> AsyncIterator[Callable[[], None]]:
    """Point the writer at a server that does not answer (a real driver failure, retried every
    0.2 s at most); the function it yields brings the real server back."""
    connection = repository.connection
    good, good_log = connection.orders, connection.log_database
    dead: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9/", serverSelectionTimeoutMS=100, connectTimeoutMS=100
    )
    # Both what the writer logs to (the recovery log) and ``orders`` are away.
    connection.log_database = dead[log_database_name(database)]
    connection.orders = dead[database]["orders"]
    repository.writer.retry_max_s = 0.2

    def back() -> None:
        connection.orders, connection.log_database = good, good_log

    try:
        yield back
    finally:
        await dead.close()


async def _written(repository: MongoOrderRepository, wait_s: float | None = None) -> None:
    """Durable (the recovery log) and in ``orders`` too, which these tests read."""
    await repository.durable(wait_s=wait_s)
    await repository.projected(wait_s)


async def _raw_ids(settings: Settings, database: str) -> list[str]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    try:
        ids = [str(d["_id"]) async for d in client[database]["orders"].find({}, {"_id": 1})]
    finally:
        await client.close()
    return sorted(ids)


async def test_save_when_orders_are_saved_then_served_at_once_and_written_one_document_per_batch(
    settings: Settings, database: str, repository: MongoOrderRepository
) -> None:
    # Arrange
    done, resting = settled_history("o-1"), open_history("o-2")

    # Act
    _save_whole(repository, done)
    _save_whole(repository, resting)
    served = repository.held("o-1")
    await _written(repository)

    # Assert
    assert served == StoredOrder(states(done)[-1], tuple(done))
    assert repository.get("o-2") == states(resting)[-1]
    assert list((await _read(repository, "o-2")).events) == resting
    assert await _raw_ids(settings, database) == ["o-1", "o-2:00000002"]


async def test_save_when_a_batch_is_replayed_then_changes_nothing(
    settings: Settings, database: str, repository: MongoOrderRepository
) -> None:
    # Arrange
    history = settled_history("o-1")
    _save_whole(repository, history)
    await _written(repository)
    before = await _raw_ids(settings, database)

    # Act: the same batch again through this repository, and through a fresh one (a restart)
    _save_whole(repository, history)
    await _written(repository)
    fresh = MongoOrderRepository(settings.mongo_url, database)
    await fresh.open()
    try:
        _save_whole(fresh, history)
        await _written(fresh)
    finally:
        await fresh.close()

    # Assert
    assert await _raw_ids(settings, database) == before
    assert repository.duplicates + fresh.duplicates >= 2
    assert repository.last_error is None
    assert repository.held("o-1") == StoredOrder(states(history)[-1], tuple(history))


async def test_flush_when_orders_were_saved_then_returns_only_once_all_are_in_mongodb(
    settings: Settings, database: str, repository: MongoOrderRepository
) -> None:
    # Arrange
    for i in range(50):
        _save_whole(repository, settled_history(f"o-{i:02d}", at=100.0 + i))

    # Act: flush blocks its thread (the engine's), never the writer's loop
    await asyncio.to_thread(repository.flush)

    # Assert
    assert len(await _raw_ids(settings, database)) == 50
    assert repository.backlog == 0


async def _read(repository: MongoOrderRepository, order_id: str) -> StoredOrder:
    stored = await asyncio.wrap_future(repository.read(order_id))
    assert stored is not None
    return stored


async def _page(repository: MongoOrderRepository, query: OrderQuery) -> list[str]:
    return [o.order_id for o in await asyncio.wrap_future(repository.read_page(query))]


@pytest.mark.parametrize("indexed", [False, True], ids=["one-sorted-scan", "by-index"])
async def test_read_when_orders_left_memory_then_reads_them_back_from_mongodb(
    repository: MongoOrderRepository, indexed: bool
) -> None:
    # Arrange: keep_terminal=2, so the three oldest of five settled orders leave memory; both
    # ways of reading a page (FerretDB's one sorted scan, MongoDB's index walk) give the same
    repository.reader._indexed = indexed
    for i in range(5):
        _save_whole(repository, settled_history(f"o-{i}", at=100.0 + i))
    _save_whole(repository, open_history("o-open", at=50.0))
    await _written(repository)
    assert not repository.memory.holds("o-0")

    # Act
    old = await _read(repository, "o-0")
    page = await asyncio.wrap_future(repository.read_page(OrderQuery(account_id="acct-1", limit=4)))
    rest = await _page(
        repository,
        OrderQuery(account_id="acct-1", limit=4, before=(page[-1].created_at, page[-1].order_id)),
    )
    settled = await _page(repository, OrderQuery(status=OrderStatus.SETTLED, limit=10))

    # Assert
    assert old == StoredOrder(states(settled_history("o-0", at=100.0))[-1], tuple(old.events))
    assert len(old.events) == 5
    assert [o.order_id for o in page] == ["o-4", "o-3", "o-2", "o-1"]
    assert rest == ["o-0", "o-open"]
    assert settled == ["o-4", "o-3", "o-2", "o-1", "o-0"]
    assert repository.held("never-placed") is None  # answered without a round trip
    assert (await asyncio.wrap_future(repository.read("never-placed"))) is None


@pytest.mark.parametrize("indexed", [False, True], ids=["one-sorted-scan", "by-index"])
async def test_pages_when_orders_share_a_creation_time_then_cursor_neither_skips_nor_repeats(
    repository: MongoOrderRepository, indexed: bool
) -> None:
    # Arrange: seven finished orders created in the same instant, all but two only in MongoDB
    repository.reader._indexed = indexed
    ids = [f"tie-{i}" for i in range(7)]
    for order_id in ids:
        _save_whole(repository, settled_history(order_id, at=200.0))
    await _written(repository)

    # Act: pages of three, each from the last one's cursor
    seen: list[str] = []
    before: tuple[float, str] | None = None
    for _ in range(4):
        page = await asyncio.wrap_future(
            repository.read_page(OrderQuery(account_id="acct-1", limit=3, before=before))
        )
        seen += [o.order_id for o in page]
        if len(page) < 3:
            break
        before = (page[-1].created_at, page[-1].order_id)

    # Assert
    assert seen == sorted(ids, reverse=True)


async def test_reads_when_mongodb_does_not_answer_then_store_unavailable_within_the_timeout(
    database: str, repository: MongoOrderRepository
) -> None:
    # Arrange: the first of three settled orders only in MongoDB, which then goes away
    for i in range(3):
        _save_whole(repository, settled_history(f"o-{i}", at=100.0 + i))
    await _written(repository)
    repository.reader.read_timeout_s = 0.5
    async with _server_away(repository, database):
        started = asyncio.get_running_loop().time()

        # Act
        with pytest.raises(StoreUnavailable) as order_away:
            await asyncio.wrap_future(repository.read("o-0"))
        with pytest.raises(StoreUnavailable) as page_away:
            await asyncio.wrap_future(repository.read_page(OrderQuery(account_id="acct-1")))
        held = await _read(repository, "o-2")  # memory still answers

    # Assert
    assert order_away.value.code == "STORE_UNAVAILABLE"
    assert page_away.value.code == "STORE_UNAVAILABLE"
    assert asyncio.get_running_loop().time() - started < 3.0
    assert held.order.order_id == "o-2"


async def test_read_when_slower_than_its_bound_then_a_retry_gets_longer_and_answers(
    settings: Settings, database: str, repository: MongoOrderRepository
) -> None:
    # Arrange: an order only in MongoDB, written after 60,000 other documents. FerretDB scans
    # the collection for an _id (about 2 µs a document), so 50 ms is too short for the first
    # read; the fifth attempt waits 16 times as long.
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    padding = [{"_id": f"pad-{i:06d}", "body": "x" * 200} for i in range(60_000)]
    await client[database]["orders"].insert_many(padding, ordered=False)
    await client.close()
    for i in range(3):
        _save_whole(repository, settled_history(f"o-{i}", at=100.0 + i))
    await _written(repository)
    repository.reader.read_timeout_s = 0.05

    # Act
    with pytest.raises(StoreUnavailable) as first:
        await asyncio.wrap_future(repository.read("o-0"))
    retried = await asyncio.wrap_future(repository.read("o-0", attempt=4))

    # Assert: a store slower than the bound, not down, answers a retry in the end
    assert first.value.code == "STORE_UNAVAILABLE"
    assert "within 0.05s" in str(first.value)
    assert retried is not None
    assert retried.order.order_id == "o-0"


async def test_reads_when_store_closed_then_store_closed_at_once(
    settings: Settings, database: str
) -> None:
    # Arrange
    repository = MongoOrderRepository(settings.mongo_url, database, keep_terminal=0)
    await repository.open()
    _save_whole(repository, settled_history("o-0"))
    await _written(repository)
    await repository.close()

    # Act / Assert
    with pytest.raises(StoreClosed) as closed:
        await asyncio.wrap_future(repository.read("o-0"))
    assert closed.value.code == "STORE_CLOSED"


async def test_reads_when_mongodb_is_asked_then_they_run_on_the_stores_loop_thread(
    settings: Settings, database: str
) -> None:
    # Arrange: a store on a loop and thread of its own, as ``oms serve`` runs it
    repository = MongoOrderRepository(settings.mongo_url, database, keep_terminal=0)
    await asyncio.to_thread(repository.start)
    try:
        _save_whole(repository, settled_history("o-0"))
        await asyncio.to_thread(repository.flush)

        # Act: asked from this loop's thread
        stored = await _read(repository, "o-0")
        await _page(repository, OrderQuery(account_id="acct-1"))
    finally:
        await asyncio.to_thread(repository.stop)

    # Assert
    assert stored.order.order_id == "o-0"
    assert repository.reads >= 2
    assert set(repository.read_threads) == {"oms-store"}


async def test_recover_when_restarted_then_brings_back_open_orders_finished_ids_and_executions(
    settings: Settings, database: str, repository: MongoOrderRepository
) -> None:
    # Arrange: one repository writes, then "crashes" (closes); a new one recovers
    _save_whole(repository, settled_history("o-done", at=100.0))
    resting = open_history("o-rest", at=101.0)
    _save_whole(repository, resting)
    await _written(repository)
    recovered = MongoOrderRepository(settings.mongo_url, database)
    await recovered.open()
    try:
        # Act
        recovery = await recovered.recover()
        done = (await _read(recovered, "o-done")).order
        fills = await recovered.executions("acct-1")
    finally:
        await recovered.close()

    # Assert
    assert recovery.open_orders == (StoredOrder(states(resting)[-1], tuple(resting)),)
    assert recovery.finished == 1
    assert recovered.memory.holds("o-rest")
    assert done is not None
    assert done.status is OrderStatus.SETTLED
    assert [(f.execution_id, f.quantity, f.price, f.fee) for f in fills] == [
        ("x-o-done-1", Decimal("0.20"), Decimal("30000.10"), Decimal("6.00002")),
        ("x-o-done-2", Decimal("0.30"), Decimal("29999.9"), Decimal("0")),
    ]


async def test_write_when_it_fails_then_retried_surfaced_and_finally_written(
    settings: Settings, database: str, repository: MongoOrderRepository
) -> None:
    # Arrange: point the writer at a server that does not answer (a real driver failure)
    async with _server_away(repository, database) as server_back:
        _save_whole(repository, settled_history("o-1"))

        # Act / Assert: the barrier times out with the typed error, the batch is kept
        with pytest.raises(StoreUnavailable, match="write failed") as away:
            await repository.durable(wait_s=1.0)
        assert away.value.code == "STORE_UNAVAILABLE"
        assert repository.retries >= 1
        assert repository.last_error is not None
        assert repository.last_error.code == "STORE_WRITE_FAILED"
        server_back()
        await _written(repository, 10.0)

    assert await _raw_ids(settings, database) == ["o-1"]
    assert repository.last_error is None


async def test_documents_when_written_raw_then_read_as_valid_beanie_documents(
    repository: MongoOrderRepository,
) -> None:
    # Arrange
    _save_whole(repository, settled_history("o-1"))
    await _written(repository)

    # Act
    document = await OrderDocument.get("o-1")

    # Assert
    assert document is not None
    assert document.terminal
    assert document.status == "SETTLED"
    assert document.version == 5


async def test_write_when_an_open_orders_hold_ends_with_no_waiter_then_writes_it(
    settings: Settings, database: str
) -> None:
    # Arrange
    repository = MongoOrderRepository(settings.mongo_url, database, hold_open_s=0.2)
    await repository.open()
    try:
        _save_whole(repository, open_history("o-1"))

        # Act: no barrier; wait for the writer on its own
        for _ in range(50):
            await asyncio.sleep(0.1)
            if repository.memory.durable == 2:
                break

        # Assert
        assert repository.memory.durable == 2
        await repository.projected(5.0)
        assert await _raw_ids(settings, database) == ["o-1:00000002"]
    finally:
        await repository.close()


async def test_after_durable_when_the_server_is_away_then_announces_only_once_written_in_order(
    settings: Settings, database: str, repository: MongoOrderRepository
) -> None:
    # Arrange: the writer's server does not answer, so nothing can become durable
    announced: list[str] = []
    async with _server_away(repository, database) as server_back:
        _save_whole(repository, settled_history("o-1"))
        repository.after_durable(lambda: announced.append("o-1"))
        _save_whole(repository, open_history("o-2"))
        repository.after_durable(lambda: announced.append("o-2"))

        # Act / Assert: not written, not announced
        await asyncio.sleep(0.5)
        assert announced == []
        server_back()
        await _written(repository, 10.0)

    # Assert: announced in order, and the open order was not held back for a hold period
    assert announced == ["o-1", "o-2"]
    assert await _raw_ids(settings, database) == ["o-1", "o-2:00000002"]


async def test_after_durable_when_an_announcement_waits_then_the_open_order_is_not_held(
    settings: Settings, database: str
) -> None:
    # Arrange: a hold far longer than the test waits
    repository = MongoOrderRepository(settings.mongo_url, database, hold_open_s=60.0)
    await repository.open()
    announced = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        _save_whole(repository, open_history("o-1"))

        # Act
        repository.after_durable(lambda: loop.call_soon_threadsafe(announced.set))

        # Assert
        await asyncio.wait_for(announced.wait(), 10.0)
        await repository.projected(5.0)
        assert await _raw_ids(settings, database) == ["o-1:00000002"]
    finally:
        await repository.close()


async def test_recovery_when_a_document_does_not_read_then_leaves_it_out_and_names_it(
    settings: Settings, database: str, repository: MongoOrderRepository
) -> None:
    # Arrange: a resting order, and documents written by hand that are not an order's state,
    # where recovery reads them: the recovery log (it never reads ``orders`` itself)
    resting = open_history("o-rest", at=101.0)
    _save_whole(repository, resting)
    await _written(repository)
    client: AsyncMongoClient[dict] = AsyncMongoClient(settings.mongo_url)
    broken = [
        {"_id": "no-fields"},
        {"_id": "o-broken:00000001", "order_id": "o-broken", "account_id": "acct-1",
         "symbol": "BTC-USD", "status": "NEW", "terminal": False, "created_at": 102.0,
         "version": 1, "body": "not json"},
    ]  # fmt: skip
    try:
        await client[log_database_name(database)][epoch_collection(1, 0, 0)].insert_one(
            delta_document("by-hand", 1, 1, broken)
        )
    finally:
        await client.close()
    recovered = MongoOrderRepository(settings.mongo_url, database)
    await recovered.open()
    try:
        # Act
        recovery = await recovered.recover()
        fills = await recovered.executions()
    finally:
        await recovered.close()

    # Assert
    assert [s.order.order_id for s in recovery.open_orders] == ["o-rest"]
    assert sorted(recovery.unreadable) == ["no-fields", "o-broken:00000001"]
    assert fills == []


async def test_a_finished_order_read_back_when_read_again_then_no_second_mongodb_read(
    repository: MongoOrderRepository,
) -> None:
    # Arrange: three settled orders, the oldest only in MongoDB (keep_terminal=2)
    for i in range(3):
        _save_whole(repository, settled_history(f"o-{i}", at=100.0 + i))
    await _written(repository)
    first = await _read(repository, "o-0")
    reads = repository.reads

    # Act
    again = await _read(repository, "o-0")

    # Assert: a finished order never changes, so the copy read back answers
    assert again == first
    assert repository.reads == reads


async def test_read_when_orders_of_issue_15_left_memory_then_their_new_fields_and_events_round_trip(
    repository: MongoOrderRepository,
) -> None:
    # Arrange: an amended order, cancelled since, and a triggered GTD stop that expired
    amended = [
        *amended_history("o-amended"),
        OrderCancelled("o-amended", 5, "cancel:o-amended", 1.0e9 + 2, CancelReason.REQUESTED),
    ]
    placed = replace(
        open_history("o-stop")[0], type=OrderType.STOP_LIMIT, stop_price=Decimal("30200.00"),
        time_in_force=TimeInForce.GTD, expire_at=1_767_229_200.0,
    )  # fmt: skip
    accepted = open_history("o-stop")[1]
    stop = [
        placed,
        accepted,
        OrderTriggered("o-stop", 3, "trigger:o-stop", accepted.at + 1, Decimal("30200.10")),
        OrderExpired("o-stop", 4, "expire:o-stop", accepted.at + 2),
    ]
    _save_whole(repository, amended)
    _save_whole(repository, stop)
    await _written(repository)

    for i in range(2):  # keep_terminal=2: these two push the others out of memory
        _save_whole(repository, settled_history(f"o-later-{i}"))
    await _written(repository)
    assert not repository.memory.holds("o-amended")
    assert not repository.memory.holds("o-stop")

    # Act: both come back from MongoDB
    back_amended = await _read(repository, "o-amended")
    back_stop = await _read(repository, "o-stop")

    # Assert
    assert back_amended == StoredOrder(states(amended)[-1], tuple(amended))
    assert back_amended.order.quantity == Decimal("0.80")
    assert back_stop == StoredOrder(states(stop)[-1], tuple(stop))
    assert back_stop.order.status is OrderStatus.EXPIRED
    assert back_stop.order.triggered_at == accepted.at + 1
