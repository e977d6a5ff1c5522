"""Restart-to-ready does not grow with history: ``oms serve`` restarted after 50 finished
orders and again after 5,050 reads as many documents to recover (its newest checkpoints and
what came after them, never the orders); the seconds to ready are printed, not asserted."""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import MongoClient

from oms.config import Settings
from oms.probes import probe_all
from oms.store.documents import OrderDocument
from oms.store.mongo_connection import store_databases
from oms.stream.names import topic_names
from tests.credentials import authenticated_session
from tests.e2e.conftest import last_price, open_account
from tests.e2e.crash_flow import Serve
from tests.ports import free_port

FUNDS = {"USD": "10000000", "BTC": "100", "ETH": "100", "SOL": "1000"}
FIRST, MORE = 50, 5_000
READ = re.compile(r"recovered .* \((\d+) documents read")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """A replica of its own (topics, group, database, port), checkpointing every second."""
    down = [name for name, ok in asyncio.run(probe_all(Settings.from_env())).items() if not ok]
    if down:
        pytest.fail(f"local servers not answering: {', '.join(down)} (run `make up`)")
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "OMS_HTTP_HOST": "127.0.0.1",
        "OMS_HTTP_PORT": str(free_port()),
        "OMS_TOPIC_SUFFIX": f"bounded-{run}",
        "OMS_KAFKA_GROUP_ID": f"oms-bounded-{run}",
        "OMS_MONGO_DATABASE": f"oms_bounded_{run}",
        "OMS_ORDERS_PARTITIONS": "2",
        "OMS_EXECUTIONS_PARTITIONS": "2",
        "OMS_PRICES_PARTITIONS": "1",
        "OMS_EVENTS_PARTITIONS": "2",
        "OMS_CHECKPOINT_INTERVAL_S": "1",
    }
    replica = Serve(env, tmp_path / "serve.log")
    try:
        yield replica
    finally:
        replica.stop()
        settings = Settings.from_env(env)
        client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
        for name in store_databases(settings.mongo_database):
            client.drop_database(name)
        client.close()


def _finished(env: dict[str, str]) -> int:
    settings = Settings.from_env(env)
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    try:
        orders = client[settings.mongo_database][OrderDocument.Settings.name]
        return len(list(orders.find({"terminal": True}, {"_id": 1})))
    finally:
        client.close()


async def _until_finished(env: dict[str, str], count: int) -> None:
    deadline = time.monotonic() + 45
    while await asyncio.to_thread(_finished, env) < count:
        assert time.monotonic() < deadline, f"fewer than {count} orders ever finished"
        await asyncio.sleep(0.5)


async def _produce(env: dict[str, str], accounts: list[str], count: int, prefix: str) -> None:
    """``count`` MARKET IOC orders straight onto ``orders``, buys and sells in turn."""
    settings = Settings.from_env(env)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = []
        for n in range(count):
            account = accounts[n % len(accounts)]
            order_id = f"{prefix}-{n}-{uuid.uuid4().hex[:6]}"
            value = orjson.dumps(
                {
                    "type": "PlaceOrder",
                    "command_id": f"place:{order_id}",
                    "order_id": order_id,
                    "client_order_id": order_id,
                    "account_id": account,
                    "symbol": "BTC-USD",
                    "side": "BUY" if n % 4 < 2 else "SELL",
                    "order_type": "MARKET",
                    "quantity": "0.001",
                    "price": None,
                    "time_in_force": "IOC",
                    "created_at": time.time(),
                }
            )
            topic = topic_names(settings).orders
            sent.append(await producer.send(topic, key=account.encode(), value=value))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _restart(serve: Serve) -> tuple[float, int]:
    """Stop (clean), start again; seconds from start to ready, documents its recovery read."""
    serve.stop()
    started = time.perf_counter()
    serve.start()
    ready = time.perf_counter() - started
    lines = [m for line in serve.log.read_text().splitlines() if (m := READ.search(line))]
    return ready, int(lines[-1].group(1))


async def _scenario(serve: Serve) -> list[tuple[int, float, int]]:
    await asyncio.to_thread(serve.start)
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=10)) as http:
        accounts = [await open_account(http, serve.base, FUNDS, prefix="bounded") for _ in "ab"]
        await last_price(http, serve.base, "BTC-USD")
    runs: list[tuple[int, float, int]] = []
    for history, count in ((FIRST, FIRST), (FIRST + MORE, MORE)):
        await _produce(serve.env, accounts, count, f"h{history}")
        await _until_finished(serve.env, history)
        ready, read = await asyncio.to_thread(_restart, serve)
        runs.append((history, ready, read))
    return runs


def test_restart_when_history_grows_a_hundredfold_then_recovery_reads_as_many_documents(
    serve: Serve,
) -> None:
    # Act
    runs = asyncio.run(_scenario(serve))

    # Assert
    for history, ready, read in runs:
        print(f"restart-to-ready with {history} finished orders: {ready:.2f}s, {read} documents")
    (_, _, small), (_, _, large) = runs
    assert large == small
