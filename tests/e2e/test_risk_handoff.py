"""Risk limits spent on one replica stay spent on the replica that takes its accounts over.

Two replicas own one partition of ``orders`` each. Two accounts of one partition spend a
velocity limit and a daily-loss limit on its owner; the owner is SIGKILLed; the survivor takes
the partition over (a rebuild from the store) and refuses each account's next order with the
same reason code the owner gave.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from oms.config import Settings
from oms.marketdata import BookLevel, Tick
from oms.stream.codecs import encode_tick
from oms.stream.names import topic_names
from oms.stream.partitioner import partition_of
from tests.e2e.conftest import (
    Replica,
    last_price,
    open_account,
    require_servers,
    run_overrides,
    two_replicas,
)

pytestmark = pytest.mark.e2e

FUNDS = {"USD": "1000000", "BTC": "10"}
VELOCITY = {"velocity_window_s": 3600, "max_orders_per_window": 2, "price_collar": "0.10"}
LOSS = {"daily_loss_limit": "1", "price_collar": "0.10"}
DEADLINE_S = 30.0
TAKEOVER_S = 60.0  # the group's session timeout (10 s), the rebalance and the rebuild


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas of one run, without the simulated feed: the test sets the market."""
    require_servers()
    overrides = {**run_overrides(uuid.uuid4().hex[:8]), "OMS_SIMULATED_FEED": "false"}
    with two_replicas(overrides, tmp_path_factory.mktemp("risk-handoff")) as pair:
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


async def _owner(http: aiohttp.ClientSession, pair: tuple[Replica, Replica], p: int) -> Replica:
    """The replica that consumes partition ``p`` once the group has split them one each."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        owned = [await _owned(http, replica) for replica in pair]
        if sorted(map(sorted, owned)) == [[0], [1]]:
            return pair[0] if p in owned[0] else pair[1]
        assert time.monotonic() < deadline, f"partitions never split between replicas: {owned}"
        await asyncio.sleep(0.3)


async def _publish_tick(settings: Settings) -> None:
    """BTC-USD at 29,999.50 / 30,000.50, 10 BTC on each side."""
    bid, ask = Decimal("29999.50"), Decimal("30000.50")
    tick = Tick("BTC-USD", bid, bid, ask, (BookLevel(bid, Decimal(10)),),
                (BookLevel(ask, Decimal(10)),), time.time())  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic_names(settings).prices, encode_tick(tick), b"BTC-USD")
    finally:
        await producer.stop()


async def _place(
    http: aiohttp.ClientSession, replica: Replica, account: str, side: str, **terms: str
) -> str:
    body = {"account_id": account, "symbol": "BTC-USD", "side": side, **terms}
    async with http.post(f"{replica.base}/api/orders", json=body) as response:
        assert response.status == 202, await response.text()
        order_id: str = (await response.json())["order_id"]
        return order_id


async def _settled(
    http: aiohttp.ClientSession, replica: Replica, order_id: str, wait_s: float = DEADLINE_S
) -> Any:
    """The order once risk has decided it (and, if it traded, it settled), read on ``replica``."""
    deadline = time.monotonic() + wait_s
    while True:
        async with http.get(f"{replica.base}/api/orders/{order_id}") as response:
            if response.status == 200:
                order = await response.json()
                if order["status"] in ("ACCEPTED", "SETTLED", "CANCELLED", "REJECTED"):
                    return order
        assert time.monotonic() < deadline, f"order {order_id} never decided"
        await asyncio.sleep(0.2)


async def _accounts_of_one_partition(
    http: aiohttp.ClientSession, replica: Replica
) -> tuple[str, str]:
    """A velocity-limited and a loss-limited account whose orders go to one partition."""
    fast = await open_account(http, replica.base, FUNDS, prefix="velo")
    while True:
        loser = await open_account(http, replica.base, FUNDS, prefix="loss")
        if partition_of(loser, 2) == partition_of(fast, 2):
            break
    for account, limits in ((fast, VELOCITY), (loser, LOSS)):
        async with http.put(f"{replica.base}/api/risk/limits/{account}", json=limits) as answer:
            assert answer.status == 200, await answer.text()
    return fast, loser


async def test_limits_when_spent_and_the_owner_is_killed_then_still_spent_on_the_survivor(
    pair: tuple[Replica, Replica], http: aiohttp.ClientSession
) -> None:
    # Arrange: a market, two accounts of one partition, and the replica that owns it
    first, second = pair
    await _publish_tick(first.settings)
    for replica in pair:
        await last_price(http, replica.base, "BTC-USD")
    fast, loser = await _accounts_of_one_partition(http, first)
    owner = await _owner(http, pair, partition_of(fast, 2))
    survivor = second if owner is first else first
    resting = {"type": "LIMIT", "quantity": "0.01", "price": "29000.00", "time_in_force": "GTC"}
    market = {"type": "MARKET", "quantity": "0.1"}

    # Arrange: spend both limits on the owner (two orders in the window; a round trip's loss)
    for _ in range(2):
        order = await _settled(http, owner, await _place(http, owner, fast, "BUY", **resting))
        assert order["status"] == "ACCEPTED", order
    live_velocity = await _settled(http, owner, await _place(http, owner, fast, "BUY", **resting))
    for side in ("BUY", "SELL"):  # fees and the spread: about 6.1 USD lost, the limit is 1
        order = await _settled(http, owner, await _place(http, owner, loser, side, **market))
        assert order["status"] == "SETTLED", order
    live_loss = await _settled(http, owner, await _place(http, owner, loser, "BUY", **market))
    assert (live_velocity["status"], live_velocity["reject_reason"]) == (
        "REJECTED",
        "VELOCITY_ORDERS_EXCEEDED",
    )
    assert (live_loss["status"], live_loss["reject_reason"]) == (
        "REJECTED",
        "DAILY_LOSS_LIMIT_REACHED",
    )

    # Act: kill the owner; the survivor takes its partition over and gets the next orders
    owner.process.send_signal(signal.SIGKILL)
    owner.process.wait(10)
    velocity_id = await _place(http, survivor, fast, "BUY", **resting)
    loss_id = await _place(http, survivor, loser, "BUY", **market)
    after_velocity = await _settled(http, survivor, velocity_id, TAKEOVER_S)
    after_loss = await _settled(http, survivor, loss_id, TAKEOVER_S)

    # Assert: refused for the same reasons (a rebuild used to start the velocity window afresh)
    assert partition_of(fast, 2) in await _owned(http, survivor)
    assert (after_velocity["status"], after_velocity["reject_reason"]) == (
        "REJECTED",
        "VELOCITY_ORDERS_EXCEEDED",
    )
    assert (after_loss["status"], after_loss["reject_reason"]) == (
        "REJECTED",
        "DAILY_LOSS_LIMIT_REACHED",
    )
