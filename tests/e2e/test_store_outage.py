"""MongoDB goes away under a real ``oms serve`` whose finished orders live only in MongoDB.

The issue's smallest repro: restart the replica (so finished orders are in MongoDB only), stop
MongoDB, GET an order finished before the restart. It used to stop the order directory (a store
error inside its turn): every GET 500 from then on and accepted orders lost. Now the GET answers
503 quickly, what memory holds is served, a command for that old order waits for its load, and
once MongoDB is back the old order answers and nothing accepted meanwhile is lost.

The replica runs on a FerretDB of the test's own (run as the fault suite runs its servers, with
``devenv``'s command): the shared one is never stopped. Kafka and Redis are the shared ones, on
the run's own topics and keys.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import MongoClient

from devenv import devenv
from oms.config import Settings
from oms.domain.commands import CancelOrder
from oms.stream.codecs import command_key, encode_command
from oms.stream.names import topic_names
from oms.stream.topics import dead_letter, delete_topics
from tests.e2e.conftest import (
    Replica,
    last_price,
    open_account,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
)
from tests.faults.servers import HOST, Process, free_port
from tests.integration.stream.records import read_all

FUNDS = {"USD": "1000000", "BTC": "10"}
MARKET = {"symbol": "BTC-USD", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
OLD_ORDERS = 6
DURING_OUTAGE = 3
READ_TIMEOUT_S = 1.0


async def _place(http: aiohttp.ClientSession, base: str, body: dict[str, str]) -> str:
    response = await http.post(f"{base}/api/orders", json=body)
    assert response.status == 202, await response.text()
    order_id: str = (await response.json())["order_id"]
    return order_id


async def _until(
    http: aiohttp.ClientSession, base: str, order_id: str, statuses: set[str]
) -> dict[str, Any]:
    """The order once its status is one of ``statuses`` (20 s at most)."""
    deadline = time.monotonic() + 20
    while True:
        response = await http.get(f"{base}/api/orders/{order_id}")
        if response.status == 200:
            order: dict[str, Any] = await response.json()
            if order["status"] in statuses:
                return order
        assert time.monotonic() < deadline, f"{order_id} never reached {statuses}"
        await asyncio.sleep(0.2)


async def _timed_get(http: aiohttp.ClientSession, url: str) -> tuple[aiohttp.ClientResponse, float]:
    started = time.monotonic()
    response = await http.get(url)
    await response.read()
    return response, time.monotonic() - started


async def _send_cancel(settings: Settings, command: CancelOrder) -> None:
    """Put a cancel on ``orders`` as another system would (it reaches the engine directly)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_names(settings).orders, encode_command(command), key=command_key(command)
        )
    finally:
        await producer.stop()


def _terminal_in_mongodb(url: str, database: str, order_ids: list[str]) -> set[str]:
    """Which of ``order_ids`` have their terminal document in MongoDB (waiting 20 s at most)."""
    client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=2000)
    try:
        deadline = time.monotonic() + 20
        while True:
            found = {d["_id"] for d in client[database]["orders"].find({"_id": {"$in": order_ids}})}
            if found == set(order_ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.3)
    finally:
        client.close()


@dataclass
class Run:
    """One run's private FerretDB, settings and replica (stopped and cleaned up after)."""

    ferret: Process
    overrides: dict[str, str]
    settings: Settings
    logs: Path
    replica: Replica | None = None

    async def start_replica(self, name: str) -> str:
        """(Re)start ``oms serve`` on this run's settings; its base URL."""
        if self.replica is not None:
            await asyncio.to_thread(stop_replica, self.replica)
        self.replica = await asyncio.to_thread(
            start_replica, self.overrides, self.logs / f"{name}.log"
        )
        return self.replica.base


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Run]:
    """A replica on a private FerretDB that keeps only two finished orders in memory."""
    await asyncio.to_thread(require_servers)
    port = free_port()
    url = f"mongodb://{HOST}:{port}/"
    ferret = Process(
        "ferretdb",
        command=lambda: devenv._ferret_command(HOST, port, tmp_path / "ferretdb"),
        ready=lambda: devenv._ferret_ready(url),
        log=tmp_path / "ferretdb.log",
    )
    await asyncio.to_thread(ferret.start)
    overrides = {
        **run_overrides(uuid.uuid4().hex[:8]),
        "OMS_MONGO_URL": url,
        "OMS_KEEP_TERMINAL_ORDERS": "2",
        "OMS_STORE_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
    }
    settings = Settings.from_env(overrides)
    this = Run(ferret, overrides, settings, tmp_path)
    try:
        yield this
    finally:
        if this.replica is not None:
            await asyncio.to_thread(stop_replica, this.replica)
        await asyncio.to_thread(ferret.stop)
        await delete_topics(settings, [spec.name for spec in topic_names(settings).specs(settings)])


async def _finished_before_restart(
    run: Run, http: aiohttp.ClientSession
) -> tuple[str, list[str], str]:
    """An account, its settled orders (all in MongoDB only after the restart), and a resting
    order (in memory after it)."""
    base = await run.start_replica("serve-1")
    account = await open_account(http, base, FUNDS)
    price = await last_price(http, base, "BTC-USD")
    old = [await _place(http, base, {**MARKET, "account_id": account}) for _ in range(OLD_ORDERS)]
    for order_id in old:
        await _until(http, base, order_id, {"SETTLED"})
    far_below = str((price * Decimal("0.95")).quantize(Decimal("0.01")))
    resting = await _place(
        http, base, {**MARKET, "account_id": account, "type": "LIMIT", "price": far_below}
    )
    await _until(http, base, resting, {"ACCEPTED"})
    # the oldest already left memory (keep two): read back from MongoDB
    assert (await http.get(f"{base}/api/orders/{old[0]}")).status == 200
    return account, old, resting


async def test_old_order_when_mongodb_away_then_503_live_served_and_nothing_lost(
    run: Run, http: aiohttp.ClientSession
) -> None:
    # Arrange: finished orders in MongoDB only (a restart), a resting one in memory
    account, old, resting = await _finished_before_restart(run, http)
    base = await run.start_replica("serve-2")
    after_restart = (await http.get(f"{base}/api/orders/{old[1]}")).status

    # Act 1: MongoDB goes away
    await asyncio.to_thread(run.ferret.stop)
    away, away_s = await _timed_get(http, f"{base}/api/orders/{old[2]}")
    away_body = orjson.loads(await away.read())
    live = await http.get(f"{base}/api/orders/{resting}")
    refused_cancel = CancelOrder(f"cancel:{uuid.uuid4().hex}", old[3], account, time.time())
    await _send_cancel(run.settings, refused_cancel)  # waits in the directory for its order
    during = [
        await _place(http, base, {**MARKET, "account_id": account}) for _ in range(DURING_OUTAGE)
    ]
    placed_during = await http.get(f"{base}/api/orders/{during[0]}")
    health = await http.get(f"{base}/health")

    # Act 2: MongoDB is back
    await asyncio.to_thread(run.ferret.start)
    back = await _until(http, base, old[2], {"SETTLED"})
    settled = [await _until(http, base, order_id, {"SETTLED"}) for order_id in during]
    durable = await asyncio.to_thread(
        _terminal_in_mongodb, run.settings.mongo_url, run.settings.mongo_database, during
    )
    dead = await read_all(
        run.settings,
        dead_letter(topic_names(run.settings).orders),
        lambda records: any(refused_cancel.command_id.encode() in r.value for r in records),
    )
    after = await _until(
        http, base, await _place(http, base, {**MARKET, "account_id": account}), {"SETTLED"}
    )

    # Assert: after the restart, old orders read back from MongoDB
    assert after_restart == 200
    # ... while it is away: the old order 503 with Retry-After, quickly; the rest still served
    assert away.status == 503
    assert away.headers["Retry-After"] == str(run.settings.retry_after_s)
    assert away.content_type == "application/problem+json"
    assert (away_body["code"], away_body["dependency"]) == ("DEPENDENCY_UNAVAILABLE", "mongodb")
    assert away_s < READ_TIMEOUT_S + 2.0
    assert live.status == 200
    assert (await live.json())["status"] == "ACCEPTED"
    assert placed_during.status == 200
    assert health.status == 200
    # ... once it is back: the old order answers, nothing accepted meanwhile is lost, the cancel
    # that waited for its order was refused (not lost, not applied), and trading goes on
    assert back["order_id"] == old[2]
    assert [o["status"] for o in settled] == ["SETTLED"] * DURING_OUTAGE
    assert durable == set(during)
    [letter] = [r for r in dead if refused_cancel.command_id.encode() in r.value]
    assert orjson.loads(letter.value)["reason"] == "INVALID_TRANSITION"
    assert after["status"] == "SETTLED"
