"""The audit trail in the real FerretDB: insert-only, read newest first in pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import WriteError

from oms.config import Settings
from oms.domain.audit import ENTRY_ID, AuditAction, AuditEntry
from oms.store.memory_audit import MemoryAuditLog
from oms.store.mongo_audit import MongoAuditLog


@pytest.fixture
async def database(settings: Settings, unique: str) -> AsyncIterator[AsyncDatabase[dict]]:
    """A fresh database, dropped afterwards."""
    client: AsyncMongoClient[dict] = AsyncMongoClient(settings.mongo_url)
    database = client[f"audit_{unique}"]
    yield database
    await client.drop_database(database.name)
    await client.close()


async def test_page_when_entries_recorded_then_newest_first_and_cursor_continues(
    database: AsyncDatabase[dict],
) -> None:
    # Arrange
    log = MongoAuditLog(database)
    recorded = [
        await log.record(
            AuditEntry(
                AuditAction.LIMITS_CHANGED,
                who="key:k1",
                at=1_000.0 + n,
                role="risk",
                source="10.0.0.7",
                account_id=f"acct-{n}",
                detail={"limits": {"max_order_notional": "5000"}},
                request_id=f"req-{n}",
            )
        )
        for n in range(5)
    ]

    # Act
    first = await log.page(None, 3)
    second = await log.page(first[-1].entry_id, 3)

    # Assert
    assert all(ENTRY_ID.fullmatch(e.entry_id) for e in recorded)
    assert [e.account_id for e in first] == ["acct-4", "acct-3", "acct-2"]
    assert [e.account_id for e in second] == ["acct-1", "acct-0"]
    assert second[-1] == recorded[0]
    assert second[-1].action is AuditAction.LIMITS_CHANGED


@pytest.mark.parametrize(
    "detail",
    [{"a.b": 1}, {"$set": 1}, {"limits": {"groups": {"-script.pyw": {}}}}, {"rows": [{"x.y": 1}]}],
)
async def test_record_when_a_detail_key_is_not_storable_then_write_error_as_in_memory(
    database: AsyncDatabase[dict], detail: dict[str, object]
) -> None:
    # Arrange: the same entry for the server and for the unit tests' trail
    entry = AuditEntry(
        AuditAction.GLOBAL_LIMITS_CHANGED, who="key:k1", at=1_000.0, role="risk", source=None,
        detail=detail,
    )  # fmt: skip

    # Act / Assert: both refuse it with the server's code, and the server keeps nothing
    with pytest.raises(WriteError) as server:
        await MongoAuditLog(database).record(entry)
    with pytest.raises(WriteError) as memory:
        await MemoryAuditLog().record(entry)
    assert server.value.code == memory.value.code == 2
    assert await MongoAuditLog(database).page(None, 10) == []
