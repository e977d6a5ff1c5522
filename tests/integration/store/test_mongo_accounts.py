"""Accounts as insert-only versions in the real FerretDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from oms.config import Settings
from oms.domain.errors import AccountExists, UnknownAccount
from oms.domain.limits import RiskLimits, TradingState
from oms.engine.ports import AccountRecord
from oms.store.mongo_accounts import MongoAccountRepository
from oms.store.mongo_schema import init_database, is_ferretdb


@pytest.fixture
async def database(settings: Settings, unique: str) -> AsyncIterator[AsyncDatabase[dict]]:
    """A fresh initialised database, dropped afterwards."""
    client: AsyncMongoClient[dict] = AsyncMongoClient(settings.mongo_url)
    database = client[f"accounts_{unique}"]
    await init_database(database)
    yield database
    await client.drop_database(database.name)
    await client.close()


async def test_accounts_when_opened_twice_and_limits_changed_then_refused_once_and_versioned(
    database: AsyncDatabase[dict],
) -> None:
    # Arrange
    accounts = MongoAccountRepository(database)
    record = AccountRecord("acct-1", {"USD": Decimal("1000.50"), "BTC": Decimal("0")}, None, 5.0)
    limits = RiskLimits(max_order_notional=Decimal("5000"), price_collar=Decimal("0.05"))

    # Act
    await accounts.open(record)
    with pytest.raises(AccountExists) as exists:
        await accounts.open(record)
    changed = await accounts.set_limits("acct-1", limits)
    await accounts.open(AccountRecord("acct-2", {"USD": Decimal("1")}, limits, 6.0))

    # Assert
    assert changed.version == 2
    assert await accounts.get("acct-1") == AccountRecord(
        "acct-1", {"USD": Decimal("1000.50"), "BTC": Decimal("0")}, limits, 5.0, 2
    )
    assert [(r.account_id, r.version) for r in await accounts.load_all()] == [
        ("acct-1", 2),
        ("acct-2", 1),
    ]
    assert await accounts.get("nobody") is None
    with pytest.raises(UnknownAccount) as unknown:
        await accounts.set_limits("nobody", limits)
    assert exists.value.code == "ACCOUNT_EXISTS"
    assert unknown.value.code == "UNKNOWN_ACCOUNT"


async def test_kill_switch_when_set_per_account_and_globally_then_recorded_and_read_back(
    database: AsyncDatabase[dict],
) -> None:
    # Arrange
    accounts = MongoAccountRepository(database)
    limits = RiskLimits(max_order_notional=Decimal("5000"))
    await accounts.open(AccountRecord("acct-1", {"USD": Decimal("10")}, None, 5.0))
    assert await accounts.global_trading_state() is TradingState.ACTIVE  # never recorded

    # Act: halt the account, change its limits, halt then reduce everything
    halted = await accounts.set_trading_state("acct-1", TradingState.HALTED)
    await accounts.set_limits("acct-1", limits)
    await accounts.set_global_trading_state(TradingState.HALTED)
    await accounts.set_global_trading_state(TradingState.REDUCING)

    # Assert: each change is a version; a limits change keeps the switch, and back again
    assert halted.version == 2
    assert await accounts.get("acct-1") == AccountRecord(
        "acct-1", {"USD": Decimal("10")}, limits, 5.0, 3, TradingState.HALTED
    )
    assert [r.trading_state for r in await accounts.load_all()] == [TradingState.HALTED]
    assert await MongoAccountRepository(database).global_trading_state() is TradingState.REDUCING
    with pytest.raises(UnknownAccount) as unknown:
        await accounts.set_trading_state("nobody", TradingState.HALTED)
    assert unknown.value.code == "UNKNOWN_ACCOUNT"


async def test_indexes_when_asked_for_then_created_as_designed_and_a_restart_keeps_them(
    database: AsyncDatabase[dict],
) -> None:
    # Arrange: FerretDB gets none by default (it never reads through them), MongoDB all of them
    assert await is_ferretdb(database)
    assert set(await database["orders"].index_information()) <= {"_id_"}

    # Act: asked for explicitly, twice (a restart must not resend existing indexes)
    await init_database(database, secondary_indexes=True)
    await init_database(database, secondary_indexes=True)

    # Assert
    assert set(await database["orders"].index_information()) == {
        "_id_",
        "order_id_1_version_-1",
        "account_id_1_created_at_-1",
        "symbol_1_status_1",
        "terminal_1_created_at_-1",
    }
    unique = (await database["accounts"].index_information())["account_id_1_version_-1"]
    assert unique["unique"] is True


async def test_load_readable_when_a_document_does_not_read_then_leaves_it_out_and_names_it(
    database: AsyncDatabase[dict],
) -> None:
    # Arrange: a good account, and documents written by hand that are not accounts
    accounts = MongoAccountRepository(database)
    await accounts.open(AccountRecord("acct-good", {"USD": Decimal("1")}, None, 1.0))
    collection = database["accounts"]
    await collection.insert_many([
        {"_id": "no-fields"},
        {"_id": "bad-balance:000001", "account_id": "bad-balance", "version": 1,
         "balances": {"USD": "lots"}, "limits": None, "opened_at": 2.0},
        {"_id": "bad-state:000001", "account_id": "bad-state", "version": 1, "balances": {},
         "limits": None, "opened_at": 3.0, "trading_state": "MAYBE"},
    ])  # fmt: skip

    # Act
    records, unreadable = await accounts.load_readable()

    # Assert
    assert [r.account_id for r in records] == ["acct-good"]
    assert sorted(unreadable) == ["bad-balance:000001", "bad-state:000001", "no-fields"]
    assert [r.account_id for r in await accounts.load_all()] == ["acct-good"]


async def test_global_trading_state_when_the_latest_does_not_read_then_the_one_before_holds(
    database: AsyncDatabase[dict],
) -> None:
    # Arrange
    accounts = MongoAccountRepository(database)
    await accounts.set_global_trading_state(TradingState.HALTED)
    await database["kill_switch"].insert_one(
        {"_id": "global:000002", "version": 2, "trading_state": "SIDEWAYS", "at": 1.0}
    )

    # Act / Assert
    assert await accounts.global_trading_state() is TradingState.HALTED
