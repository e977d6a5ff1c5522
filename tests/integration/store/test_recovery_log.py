"""The recovery log against the real FerretDB: checkpoints, what recovery reads, and its bound."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from pymongo import AsyncMongoClient

from oms.config import Settings
from oms.risk.checkpoint import AccountLedger, LedgerCheckpoint
from oms.store.documents import OrderDocument, order_document
from oms.store.mongo import MongoOrderRepository
from oms.store.mongo_connection import log_database_name, store_databases
from oms.store.recovery_log import META, epochs_in
from tests.unit.store.histories import open_history, settled_history, states

PARTITIONS = 2
HOME = {"acct-1": 0, "acct-2": 1}


def _partition_of(account_id: str, partitions: int) -> int:
    return HOME[account_id] % partitions


def _repository(settings: Settings, database: str) -> MongoOrderRepository:
    return MongoOrderRepository(
        settings.mongo_url,
        database,
        keep_terminal=2,
        partitions=PARTITIONS,
        partition_of=_partition_of,
    )


def _save_whole(repository: MongoOrderRepository, history: list) -> None:
    for event, order in zip(history, states(history), strict=True):
        repository.save([order], [event])


def _ledger(*accounts: str) -> LedgerCheckpoint:
    return LedgerCheckpoint(
        tuple(
            AccountLedger(a, {"USD": (Decimal(7), Decimal(0))}, (), Decimal(0), ())
            for a in accounts
        )
    )


async def _checkpoint(repository: MongoOrderRepository, *accounts: str) -> None:
    """What the service does, without an engine: capture, durable, write."""
    capture = repository.begin_checkpoint(range(PARTITIONS))
    await repository.durable(capture.mark)
    await repository.write_checkpoint(capture, _ledger(*accounts), {0: 3, 1: 4})


@pytest.fixture
async def database(settings: Settings, unique: str) -> AsyncIterator[str]:
    """A fresh database name, dropped afterwards."""
    name = f"recovery_{unique}"
    yield name
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    for dropped in store_databases(name):
        await client.drop_database(dropped)
    await client.close()


@pytest.fixture
async def first(settings: Settings, database: str) -> AsyncIterator[MongoOrderRepository]:
    """The repository that writes before the "crash" (closed at the end of the test)."""
    repository = _repository(settings, database)
    await repository.open()
    yield repository
    await repository.close()


async def _recovered(settings: Settings, database: str, owned: set[int]) -> tuple:
    repository = _repository(settings, database)
    await repository.open()
    try:
        recovery = await repository.recover(owned)
        return recovery, repository
    finally:
        await repository.close()


async def test_recover_when_a_checkpoint_then_reads_it_and_only_what_came_after(
    settings: Settings, database: str, first: MongoOrderRepository
) -> None:
    # Arrange: before the checkpoint one order ends and one rests per account; after it one
    # more ends on acct-1
    for account in ("acct-1", "acct-2"):
        _save_whole(first, settled_history(f"old-{account}", account, at=100.0))
        _save_whole(first, open_history(f"rest-{account}", account, at=101.0))
    await first.durable()
    await _checkpoint(first, "acct-1", "acct-2")
    _save_whole(first, settled_history("new-acct-1", "acct-1", at=102.0))
    await first.durable()

    # Act: a replica that owns partition 0 (acct-1) only
    recovery, repository = await _recovered(settings, database, {0})

    # Assert
    assert sorted(s.order.order_id for s in recovery.open_orders) == ["rest-acct-1", "rest-acct-2"]
    assert [a.account_id for a in recovery.ledger.accounts] == ["acct-1"]
    assert [f.execution_id for f in recovery.fills] == ["x-new-acct-1-1", "x-new-acct-1-2"]
    assert {e.order_id for e, _ in recovery.unpublished} == {"new-acct-1"}
    assert recovery.events_from == {0: 3, 1: 4}
    assert recovery.finished == 1  # the one finished after the checkpoint; the rest are filtered
    assert not recovery.scanned
    for order_id in ("old-acct-1", "old-acct-2", "new-acct-1"):
        assert repository.memory.may_be_stored(order_id), order_id
    assert not repository.memory.may_be_stored("never-placed")


async def test_checkpoint_when_written_then_the_epochs_before_it_are_dropped(
    settings: Settings, database: str, first: MongoOrderRepository
) -> None:
    # Arrange
    _save_whole(first, settled_history("o-1", "acct-1"))
    await first.durable()

    # Act
    await _checkpoint(first, "acct-1")
    await _checkpoint(first, "acct-1")

    # Assert
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    try:
        names = await client[log_database_name(database)].list_collection_names()
    finally:
        await client.close()
    assert epochs_in(names, PARTITIONS) == {0: [2], 1: [2]}
    assert first.checkpoints == 4


async def test_recover_when_the_database_is_older_than_the_log_then_scans_once_then_not(
    settings: Settings, database: str
) -> None:
    # Arrange: order documents written before there was a log
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    history = settled_history("legacy", "acct-2")
    await client[database][OrderDocument.Settings.name].insert_one(
        order_document(states(history)[-1], history)
    )
    await client.close()

    # Act
    scanned, _ = await _recovered(settings, database, {0, 1})
    repository = _repository(settings, database)
    await repository.open()
    try:
        await repository.recover({0, 1})
        await _checkpoint(repository, "acct-2")
    finally:
        await repository.close()
    logged, recovered = await _recovered(settings, database, {0, 1})

    # Assert
    assert scanned.scanned
    assert [f.execution_id for f in scanned.fills] == ["x-legacy-1", "x-legacy-2"]
    assert not logged.scanned
    assert logged.fills == ()  # the checkpoint holds them now
    assert recovered.memory.may_be_stored("legacy")  # the scan's finished ids were checkpointed


async def test_recover_when_a_write_was_cut_after_its_delta_then_writes_the_order_again(
    settings: Settings, database: str, first: MongoOrderRepository
) -> None:
    # Arrange: the order document is gone, as if the process died between delta and write
    _save_whole(first, settled_history("cut", "acct-1"))
    await first.durable()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    orders = client[database][OrderDocument.Settings.name]
    await orders.delete_one({"_id": "cut"})

    # Act
    repository = _repository(settings, database)
    await repository.open()
    try:
        await repository.recover({0, 1})
        await repository.durable()
    finally:
        await repository.close()

    # Assert
    found = await orders.find_one({"_id": "cut"})
    await client.close()
    assert found is not None
    assert found["status"] == "SETTLED"


async def test_recover_when_history_grows_a_hundredfold_then_reads_as_many_documents(
    settings: Settings, database: str, first: MongoOrderRepository
) -> None:
    """Recovery reads the checkpoint and what came after it, however many orders finished
    before it (printed: the recovery's seconds at both sizes)."""
    read: list[int] = []
    for size in (50, 5_000):
        # Arrange
        for n in range(size):
            account = "acct-1" if n % 2 else "acct-2"
            _save_whole(first, settled_history(f"{size}-{n}", account, at=1_000.0 + n))
        _save_whole(first, open_history(f"{size}-rest", "acct-1", at=9_000.0))
        await first.durable()
        await _checkpoint(first, "acct-1", "acct-2")

        # Act
        started = time.perf_counter()
        recovery, _ = await _recovered(settings, database, {0, 1})
        elapsed = time.perf_counter() - started

        # Assert (below)
        read.append(recovery.documents)
        print(f"recovery with {size} finished orders: {recovery.documents} documents read,"
              f" {recovery.seconds:.3f}s recovering, {elapsed:.3f}s with connecting")  # fmt: skip
        assert {s.order.order_id for s in recovery.open_orders} >= {f"{size}-rest"}
    assert read[1] == read[0]


async def test_durable_when_a_batch_is_written_then_its_log_is_in_a_database_of_its_own(
    settings: Settings, database: str, first: MongoOrderRepository
) -> None:
    # Arrange: FerretDB on SQLite has one writer per database, so a log write in the orders'
    # database waited behind the projection's inserts (p99 83.6 ms against 10.1, measured)
    _save_whole(first, settled_history("o-1", "acct-1"))

    # Act
    await first.durable()
    await first.projected()

    # Assert
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    try:
        logged = await client[log_database_name(database)].list_collection_names()
        beside_orders = await client[database].list_collection_names()
    finally:
        await client.close()
    assert epochs_in(logged, PARTITIONS) != {}
    assert META in logged
    assert epochs_in(beside_orders, PARTITIONS) == {}
    assert META not in beside_orders
    assert OrderDocument.Settings.name in beside_orders


async def test_open_when_the_database_is_empty_then_the_log_is_whole_from_its_start(
    settings: Settings, database: str, first: MongoOrderRepository
) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    try:
        meta = await client[log_database_name(database)][META].find_one({})
    finally:
        await client.close()
    assert meta is not None
    assert meta["_id"] == f"log:n{PARTITIONS}"


async def test_recover_when_a_checkpoint_is_unreadable_then_reads_every_order_instead(
    settings: Settings, database: str, first: MongoOrderRepository
) -> None:
    # Arrange: a checkpoint whose filter slice is cut short
    _save_whole(first, settled_history("done", "acct-1"))
    _save_whole(first, open_history("rest", "acct-1", at=101.0))
    await first.durable()
    await _checkpoint(first, "acct-1")
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    log = client[log_database_name(database)]
    names = await log.list_collection_names()
    epoch = epochs_in(names, PARTITIONS)[0][-1]
    head = log[f"recovery_n{PARTITIONS}_p0_e{epoch:010d}"]
    await head.update_one({"_id": "checkpoint"}, {"$set": {"partial": b"\x00" * 3}})
    await client.close()

    # Act
    recovery, repository = await _recovered(settings, database, {0, 1})

    # Assert: nothing lost, and said so
    assert recovery.scanned
    assert [s.order.order_id for s in recovery.open_orders] == ["rest"]
    assert repository.memory.may_be_stored("done")
