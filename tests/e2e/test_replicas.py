"""Two replicas of ``oms serve`` sharing the topics, the consumer group and the database.

Each owns one partition of ``orders`` (so half the accounts). What one replica is told about an
account over REST must reach the replica that owns the account: an account opened on the first
trades wherever its orders land, and a kill switch pulled on the second halts it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from oms.config import Settings
from oms.marketdata import BookLevel, Tick
from oms.stream.codecs import encode_tick
from oms.stream.names import topic_names
from oms.stream.partitioner import partition_of
from tests.credentials import authenticated_session
from tests.e2e.conftest import (
    Replica,
    drop_database,
    last_price,
    open_account,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
    two_replicas,
)
from tests.integration.stream.records import read_all

pytestmark = pytest.mark.e2e

FUNDS = {"USD": "1000000", "BTC": "10"}
ACCOUNTS = 6  # with two partitions, both replicas own some of them (checked below)
DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas of one run; only the first runs the simulated price feed."""
    require_servers()
    overrides = run_overrides(uuid.uuid4().hex[:8])
    logs = tmp_path_factory.mktemp("replicas")
    with two_replicas(overrides, logs) as pair:
        yield pair


async def _owned(http: aiohttp.ClientSession, replica: Replica) -> set[int]:
    """The partitions of ``orders`` the replica consumes (its consumer lag's labels)."""
    text = await (await http.get(f"{replica.base}/metrics")).text()
    topic = f'topic="orders-{replica.settings.topic_suffix}"'
    return {
        int(line.split('partition="')[1].split('"')[0])
        for line in text.splitlines()
        if line.startswith("oms_consumer_lag{") and topic in line
    }


async def _split(http: aiohttp.ClientSession, first: Replica, second: Replica) -> None:
    """Wait until the group has settled on one partition each."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        owned = (await _owned(http, first), await _owned(http, second))
        if owned in (({0}, {1}), ({1}, {0})):
            return
        assert time.monotonic() < deadline, f"partitions never split between replicas: {owned}"
        await asyncio.sleep(0.3)


async def _place(http: aiohttp.ClientSession, replica: Replica, account: str) -> str:
    body = {"account_id": account, "symbol": "BTC-USD", "side": "BUY", "type": "MARKET",
            "quantity": "0.01"}  # fmt: skip
    async with http.post(f"{replica.base}/api/orders", json=body) as response:
        assert response.status == 202, await response.text()
        order_id: str = (await response.json())["order_id"]
        return order_id


async def _final(http: aiohttp.ClientSession, pair: tuple[Replica, Replica], order_id: str) -> Any:
    """The order once it is terminal, read from whichever replica has it."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        for replica in pair:
            async with http.get(f"{replica.base}/api/orders/{order_id}") as response:
                if response.status == 200:
                    order = await response.json()
                    if order["status"] in ("SETTLED", "CANCELLED", "REJECTED"):
                        return order
        assert time.monotonic() < deadline, f"order {order_id} never ended"
        await asyncio.sleep(0.2)


async def _accounts_on_both_partitions(http: aiohttp.ClientSession, replica: Replica) -> list[str]:
    """Accounts opened on ``replica``, half on each partition of ``orders`` (ids are random)."""
    by_partition: dict[int, list[str]] = {0: [], 1: []}
    while min(len(found) for found in by_partition.values()) < ACCOUNTS // 2:
        account = await open_account(http, replica.base, FUNDS, prefix="rep")
        by_partition[partition_of(account, 2)].append(account)
    return [account for found in by_partition.values() for account in found[: ACCOUNTS // 2]]


async def _committed_on_both(http: aiohttp.ClientSession, first: Replica, second: Replica) -> None:
    """Both replicas committed commands (a commit follows the events by a few milliseconds)."""
    deadline = time.monotonic() + DEADLINE_S
    while not (await _ingested(http, first) > 0 and await _ingested(http, second) > 0):
        assert time.monotonic() < deadline, "a replica never committed a command"
        await asyncio.sleep(0.2)


async def _ingested(http: aiohttp.ClientSession, replica: Replica) -> float:
    text = await (await http.get(f"{replica.base}/metrics")).text()
    for line in text.splitlines():
        if line.startswith("oms_ingest_commands_total "):
            return float(line.split()[1])
    return 0.0


async def test_account_when_opened_on_one_replica_then_trades_and_halts_on_the_one_that_owns_it(
    pair: tuple[Replica, Replica], http: aiohttp.ClientSession
) -> None:
    first, second = pair
    await _split(http, first, second)
    await last_price(http, first.base, "BTC-USD")

    # Act: every account opened on the first replica, each places one order through it
    accounts = await _accounts_on_both_partitions(http, first)
    orders = [await _place(http, first, account) for account in accounts]
    ended = [await _final(http, pair, order_id) for order_id in orders]

    # Assert: settled on whichever replica owns the account, and both replicas had some
    assert [order["status"] for order in ended] == ["SETTLED"] * ACCOUNTS, [
        (order["status"], order["reject_reason"]) for order in ended
    ]
    await _committed_on_both(http, first, second)

    # Act: the kill switch pulled on the second replica, for every account ...
    for account in accounts:
        async with http.post(
            f"{second.base}/api/risk/kill-switch", json={"state": "HALTED", "account_id": account}
        ) as response:
            assert response.status == 200, await response.text()
    halted = [await _place(http, first, account) for account in accounts]

    # Assert: ... halts each one on the replica that owns it
    refused = [await _final(http, pair, order_id) for order_id in halted]
    assert [(o["status"], o["reject_reason"]) for o in refused] == [
        ("REJECTED", "KILL_SWITCH_ACCOUNT")
    ] * ACCOUNTS


async def _publish_tick(settings: Settings, bid: str, ask: str) -> None:
    """One BTC-USD tick on the run's ``prices``: ``bid``/``ask`` with 10 BTC at each, now."""
    low, high = Decimal(bid), Decimal(ask)
    tick = Tick("BTC-USD", low, low, high, (BookLevel(low, Decimal(10)),),
                (BookLevel(high, Decimal(10)),), time.time())  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic_names(settings).prices, encode_tick(tick), b"BTC-USD")
    finally:
        await producer.stop()


async def _status(http: aiohttp.ClientSession, replica: Replica, order_id: str, want: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        async with http.get(f"{replica.base}/api/orders/{order_id}") as response:
            if response.status == 200 and (await response.json())["status"] == want:
                return
        assert time.monotonic() < deadline, f"order {order_id} never {want}"
        await asyncio.sleep(0.2)


def test_resting_order_when_a_replica_joins_then_fills_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Orders rest on the only replica; a second joins and takes half the accounts; then the
    market crosses them. Each must fill exactly once: the replica that gave an account away
    no longer holds its orders in its venue, the one that took it rests them again."""
    require_servers()
    overrides = {**run_overrides(uuid.uuid4().hex[:8]), "OMS_SIMULATED_FEED": "false"}
    logs = tmp_path_factory.mktemp("handover")
    first = start_replica(overrides, logs / "first.log")
    second: Replica | None = None
    try:

        async def scenario() -> list[str]:
            nonlocal second
            async with authenticated_session(timeout=aiohttp.ClientTimeout(total=30)) as http:
                await _publish_tick(first.settings, "29999.50", "30000.50")
                await last_price(http, first.base, "BTC-USD")
                accounts = [
                    await open_account(http, first.base, FUNDS, prefix="rest")
                    for _ in range(ACCOUNTS)
                ]
                orders = []
                for account in accounts:
                    body = {"account_id": account, "symbol": "BTC-USD", "side": "BUY",
                            "type": "LIMIT", "quantity": "0.01", "price": "29000.00",
                            "time_in_force": "GTC"}  # fmt: skip
                    async with http.post(f"{first.base}/api/orders", json=body) as response:
                        assert response.status == 202, await response.text()
                        orders.append((await response.json())["order_id"])
                for order_id in orders:
                    await _status(http, first, order_id, "ACCEPTED")

                second = await asyncio.to_thread(start_replica, overrides, logs / "second.log")
                await _split(http, first, second)
                await _publish_tick(first.settings, "28899.00", "28900.00")  # crosses them all
                for order_id in orders:
                    await _final(http, (first, second), order_id)
                return orders

        orders = asyncio.run(scenario())
        events = asyncio.run(
            read_all(
                first.settings,
                topic_names(first.settings).order_events,
                lambda seen: sum(b'"OrderSettled"' in r.value[:40] for r in seen) >= ACCOUNTS,
            )
        )
    finally:
        if second is not None:
            stop_replica(second)
        stop_replica(first)
        drop_database(first.settings)

    kinds: dict[str, list[str]] = {order_id: [] for order_id in orders}
    for record in events:
        event = orjson.loads(record.value)
        kinds[event["order_id"]].append(event["type"])
    assert all(
        history == ["OrderPlaced", "OrderAccepted", "OrderFilled", "OrderSettled"]
        for history in kinds.values()
    ), kinds
