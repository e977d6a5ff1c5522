"""Start-up never dies on a stored record it does not like, and a reserved id is refused at
the door: a real ``oms serve`` on a database seeded, by hand, with what it must leave out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import MongoClient

from tests.e2e.conftest import (
    Replica,
    drop_database,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
)

pytestmark = pytest.mark.e2e

GOOD = "acct-good"
# What an older build, or a hand, could have stored: each must be left out, none may stop a start.
BAD_ACCOUNTS: list[dict[str, Any]] = [
    {"_id": "VENUE:000001", "account_id": "VENUE", "version": 1, "balances": {"USD": "100"},
     "limits": None, "opened_at": 1.0, "trading_state": "ACTIVE"},
    {"_id": "FEES:000001", "account_id": "FEES", "version": 1, "balances": {},
     "limits": None, "opened_at": 1.5, "trading_state": "ACTIVE"},
    {"_id": "bad-balance:000001", "account_id": "bad-balance", "version": 1,
     "balances": {"USD": "lots"}, "limits": None, "opened_at": 2.0},
    {"_id": "negative:000001", "account_id": "negative", "version": 1,
     "balances": {"USD": "-5"}, "limits": None, "opened_at": 2.5},
    {"_id": "no-fields"},
]  # fmt: skip
BAD_ORDERS: list[dict[str, Any]] = [
    {"_id": "o-broken:00000001", "order_id": "o-broken", "account_id": GOOD,
     "symbol": "BTC-USD", "status": "NEW", "terminal": False, "created_at": 3.0, "version": 1,
     "body": "not json"},
    {"_id": "o-bare"},
]  # fmt: skip


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Path]]:
    """A replica started on a database that already holds a good account and the bad records."""
    require_servers()
    overrides = run_overrides(uuid.uuid4().hex[:8])
    database = overrides["OMS_MONGO_DATABASE"]
    client: MongoClient[dict[str, Any]] = MongoClient("mongodb://127.0.0.1:27027/")
    try:
        client[database]["accounts"].insert_many([
            {"_id": f"{GOOD}:000001", "account_id": GOOD, "version": 1,
             "balances": {"USD": "1000"}, "limits": None, "opened_at": 0.5,
             "trading_state": "ACTIVE"},
            *BAD_ACCOUNTS,
        ])  # fmt: skip
        client[database]["orders"].insert_many(BAD_ORDERS)
    finally:
        client.close()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    replica = start_replica(overrides, log)  # raises unless /ready answers 200
    try:
        yield replica, log
    finally:
        stop_replica(replica)
        drop_database(replica.settings)


async def test_start_when_the_store_holds_reserved_and_broken_records_then_ready_and_reports(
    seeded: tuple[Replica, Path], http: aiohttp.ClientSession
) -> None:
    replica, log = seeded

    # Act
    good = await http.get(f"{replica.base}/api/accounts/{GOOD}")
    venue = await http.get(f"{replica.base}/api/accounts/VENUE")
    metrics = await (await http.get(f"{replica.base}/metrics")).text()

    # Assert: ready (the fixture waited for it), the good account served, the rest left out
    assert good.status == 200
    assert (await good.json())["balances"]["USD"]["available"] == "1000"
    assert venue.status == 404
    skipped = next(
        line for line in metrics.splitlines() if line.startswith("oms_recovery_skipped_records ")
    )
    # VENUE, FEES, the unreadable balance, the bare account, the negative opening, two orders
    assert float(skipped.split()[1]) == len(BAD_ACCOUNTS) + len(BAD_ORDERS)
    text = log.read_text()
    assert "start-up left out" in text
    assert "RESERVED_ACCOUNT_ID" in text
    assert "AccountExists" not in text


async def test_open_account_when_the_id_is_reserved_then_422_and_nothing_more_is_stored(
    seeded: tuple[Replica, Path], http: aiohttp.ClientSession
) -> None:
    replica, _ = seeded

    # Act
    response = await http.post(
        f"{replica.base}/api/accounts", json={"account_id": "FEES", "balances": {"USD": "1"}}
    )

    # Assert
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    errors = (await response.json())["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("account_id", "RESERVED_ACCOUNT_ID")]
    client: MongoClient[dict[str, Any]] = MongoClient(replica.settings.mongo_url)
    try:
        held = client[replica.settings.mongo_database]["accounts"].count_documents(
            {"account_id": "FEES"}
        )
    finally:
        client.close()
    assert held == 1  # the one seeded by hand, nothing new
