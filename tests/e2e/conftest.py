"""End-to-end tests: a real ``oms serve`` process on the real local Kafka, Redis and FerretDB.

Each test module gets its own replica with its own topics (``OMS_TOPIC_SUFFIX``), consumer
group, MongoDB database and port, so runs never see each other's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import MongoClient

from oms.config import Settings
from oms.domain.access import Role
from oms.domain.order_ids import client_order_id_order
from oms.probes import probe_all
from oms.store.api_keys import create_key
from oms.store.mongo_connection import store_databases
from oms.stream.names import topic_names
from tests.credentials import authenticated_session, register_server
from tests.ports import free_port

READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Replica:
    """A running ``oms serve``: where it answers and the settings it was started with."""

    base: str
    settings: Settings
    process: subprocess.Popen[bytes]
    key: str  # an admin API key in the run's database (``authenticated_session`` sends it)


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    """Until ``oms serve`` at ``base`` answers ``/ready`` (its exit or the timeout: an error)."""

    async def poll() -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with aiohttp.ClientSession() as http:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"oms serve exited with {process.returncode}")
                try:
                    async with http.get(f"{base}/ready") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("oms serve never became ready")
                await asyncio.sleep(0.3)

    asyncio.run(poll())


def wait_settled(replicas: tuple[Replica, ...]) -> None:
    """Wait until the group has settled: every replica named in the owner map with a share,
    and no partition unowned (``GET /api/cluster``). ``/ready`` says a replica rebuilt its first
    share; a second replica's join then rebalances both, and reads forwarded meanwhile answer
    503 ``OWNER_UNAVAILABLE`` by design, which a test of something else must not race."""

    async def poll() -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        first = replicas[0]
        headers = {"Authorization": f"Bearer {first.key}"}
        async with aiohttp.ClientSession() as http:
            while True:
                async with http.get(f"{first.base}/api/cluster", headers=headers) as response:
                    cluster = await response.json() if response.status == 200 else {}
                live = [r for r in cluster.get("replicas", []) if r.get("partitions")]
                if len(live) == len(replicas) and cluster.get("unowned") == []:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the group never settled: {cluster}")
                await asyncio.sleep(0.3)

    asyncio.run(poll())


def run_overrides(run: str) -> dict[str, str]:
    """Topics, consumer group and database of one run (shared by its replicas), small."""
    return {
        "OMS_TOPIC_SUFFIX": f"e2e-{run}",
        "OMS_KAFKA_GROUP_ID": f"oms-e2e-{run}",
        "OMS_MONGO_DATABASE": f"oms_e2e_{run}",
        "OMS_ORDERS_PARTITIONS": "2",
        "OMS_EXECUTIONS_PARTITIONS": "2",
        "OMS_PRICES_PARTITIONS": "1",
        "OMS_EVENTS_PARTITIONS": "2",
        # The replicas' shared secret for reads forwarded to an account's owner.
        "OMS_INTERNAL_TOKEN": f"internal-{run}-{uuid.uuid4().hex}",
    }


def require_servers() -> None:
    """Fail at once, saying so, when the local servers are not up."""
    down = [name for name, ok in asyncio.run(probe_all(Settings.from_env())).items() if not ok]
    if down:
        pytest.fail(f"local servers not answering: {', '.join(down)} (run `make up`)")


def start_replica(overrides: Mapping[str, str], log_path: Any) -> Replica:
    """Start ``oms serve`` on a free port with ``overrides``; return once it is ready."""
    port = free_port()
    environ = {**os.environ, **overrides, "OMS_HTTP_PORT": str(port)}
    if int(environ.get("OMS_HTTP_WORKERS", "0")):
        # Door processes (OMS_HTTP_WORKERS=2 pytest ... runs any suite through doors): the
        # engine's internal port and the doors' metrics ports free ones too.
        environ.setdefault("OMS_HTTP_INTERNAL_PORT", str(free_port()))
        environ.setdefault("OMS_DOOR_METRICS_PORT", str(free_port()))
    settings = Settings.from_env(environ)
    key = create_key(settings, Role.ADMIN, name="e2e tests").key
    base = f"http://127.0.0.1:{port}"
    register_server(base, key)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "oms.cli", "serve"],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    replica = Replica(base, settings, process, key)
    try:
        wait_ready(replica.base, process)
    except BaseException:
        stop_replica(replica)
        raise
    return replica


def stop_replica(replica: Replica) -> None:
    """Stop it (SIGINT, then SIGKILL after 30 s)."""
    process = replica.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def drop_database(settings: Settings) -> None:
    """Drop the run's MongoDB database."""
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    for name in store_databases(settings.mongo_database):
        client.drop_database(name)
    client.close()


@contextlib.contextmanager
def two_replicas(overrides: Mapping[str, str], logs: Any) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas of one run (one database, one Redis, one consumer group); only the first
    runs the simulated price feed. Both stopped and the database dropped after."""
    first = start_replica({"OMS_REPLICA": "first", **overrides}, logs / "first.log")
    try:
        second = start_replica(
            {"OMS_REPLICA": "second", **overrides, "OMS_SIMULATED_FEED": "false"},
            logs / "second.log",
        )
    except BaseException:
        stop_replica(first)
        drop_database(first.settings)
        raise
    try:
        wait_settled((first, second))
        yield first, second
    finally:
        stop_replica(second)
        stop_replica(first)
        drop_database(first.settings)


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """One ``oms serve`` for the module, stopped (SIGINT) and its database dropped after."""
    require_servers()
    overrides = run_overrides(uuid.uuid4().hex[:8])
    started = start_replica(overrides, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield started
    finally:
        stop_replica(started)
        drop_database(started.settings)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for one test, with the admin key of each replica it talks to."""
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def open_account(
    http: aiohttp.ClientSession, base: str, funds: Mapping[str, str], prefix: str = "acct"
) -> str:
    """Open a new account with ``funds`` on the replica at ``base``; its id."""
    account_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    response = await http.post(
        f"{base}/api/accounts", json={"account_id": account_id, "balances": dict(funds)}
    )
    assert response.status == 201, await response.text()
    return account_id


async def last_price(http: aiohttp.ClientSession, base: str, symbol: str) -> Decimal:
    """The symbol's last price, waiting (10 s at most) for the feed's first tick."""
    for _ in range(100):
        response = await http.get(f"{base}/api/market-data/prices/{symbol}")
        if response.status == 200 and (body := await response.json()).get("last_price"):
            return Decimal(body["last_price"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no price for {symbol}")


async def order_until(
    http: aiohttp.ClientSession, replica: Replica, order_id: str, statuses: set[str]
) -> dict[str, Any]:
    """The order once its status is one of ``statuses`` (20 s at most)."""
    deadline = time.monotonic() + 20
    while True:
        response = await http.get(f"{replica.base}/api/orders/{order_id}")
        if response.status == 200:
            order: dict[str, Any] = await response.json()
            if order["status"] in statuses:
                return order
        assert time.monotonic() < deadline, f"{order_id} never reached {statuses}"
        await asyncio.sleep(0.1)


async def produce_market_buy(replica: Replica, account: str, client_order_id: str) -> str:
    """A MARKET buy of 1.5 SOL-USD produced straight onto ``orders`` (no order id: the client
    order id names it, the id derived as REST does); the order's id."""
    record = {
        "type": "PlaceOrder",
        "client_order_id": client_order_id, "account_id": account, "symbol": "SOL-USD",
        "side": "BUY", "order_type": "MARKET", "quantity": "1.5", "price": None,
        "time_in_force": "IOC", "created_at": time.time(),
    }  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=replica.settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_names(replica.settings).orders, key=account.encode(), value=orjson.dumps(record)
        )
    finally:
        await producer.stop()
    return client_order_id_order(account, client_order_id)
