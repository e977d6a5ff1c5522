"""A firm-wide cap shared by two accounts that live on different replicas is never passed.

Two replicas own one partition of ``orders`` each; one account on each partition. The firm may
hold 2,900 USD of open BTC-USD orders: ten orders of 0.01 at 29,000. Thirty such orders go in
at once, fifteen per account, through both replicas; exactly ten are accepted and the rest are
REJECTED ``GLOBAL_NOTIONAL_LIMIT``. A cancel gives its share back to the other replica. And
when one replica is SIGKILLed, the survivor rebuilds its partition's share once: what it held
is neither lost nor counted twice.
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

from oms.marketdata import BookLevel, Tick
from oms.stream.codecs import encode_tick
from oms.stream.names import topic_names
from oms.stream.partitioner import partition_of
from tests.credentials import authenticated_session
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
ORDER = {"symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "quantity": "0.01",
         "price": "29000.00", "time_in_force": "GTC"}  # fmt: skip
CAP = Decimal(2900)  # ten orders' notional
PER_ACCOUNT = 15
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas of one run, without the simulated feed: the test sets the market."""
    require_servers()
    overrides = {**run_overrides(uuid.uuid4().hex[:8]), "OMS_SIMULATED_FEED": "false"}
    with two_replicas(overrides, tmp_path_factory.mktemp("global-limits")) as pair:
        yield pair


async def _owned(http: aiohttp.ClientSession, replica: Replica) -> set[int]:
    text = await (await http.get(f"{replica.base}/metrics")).text()
    topic = f'topic="orders-{replica.settings.topic_suffix}"'
    return {
        int(line.split('partition="')[1].split('"')[0])
        for line in text.splitlines()
        if line.startswith("oms_consumer_lag{") and topic in line
    }


async def _split(http: aiohttp.ClientSession, pair: tuple[Replica, Replica]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while sorted([sorted(await _owned(http, r)) for r in pair]) != [[0], [1]]:
        assert time.monotonic() < deadline, "partitions never split between the replicas"
        await asyncio.sleep(0.3)


async def _publish_tick(replica: Replica) -> None:
    bid, ask = Decimal("29999.50"), Decimal("30000.50")
    tick = Tick("BTC-USD", bid, bid, ask, (BookLevel(bid, Decimal(10)),),
                (BookLevel(ask, Decimal(10)),), time.time())  # fmt: skip
    settings = replica.settings
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic_names(settings).prices, encode_tick(tick), b"BTC-USD")
    finally:
        await producer.stop()


async def _place(http: aiohttp.ClientSession, replica: Replica, account: str) -> str:
    async with http.post(
        f"{replica.base}/api/orders", json={"account_id": account, **ORDER}
    ) as response:
        assert response.status == 202, await response.text()
        order_id: str = (await response.json())["order_id"]
        return order_id


async def _decided(http: aiohttp.ClientSession, replica: Replica, order_id: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        async with http.get(f"{replica.base}/api/orders/{order_id}") as response:
            if response.status == 200:
                order = await response.json()
                if order["status"] in ("ACCEPTED", "REJECTED", "CANCELLED"):
                    return order
        assert time.monotonic() < deadline, f"order {order_id} never decided"
        await asyncio.sleep(0.2)


async def _state(http: aiohttp.ClientSession, replica: Replica) -> Any:
    async with http.get(f"{replica.base}/api/risk/global-limits") as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _open_notional(http: aiohttp.ClientSession, replica: Replica) -> Decimal:
    """What the firm holds of BTC-USD open orders, as any replica reads it from Redis."""
    return Decimal((await _state(http, replica))["usage"]["BTC-USD"]["open_notional"])


async def _account_on(http: aiohttp.ClientSession, replica: Replica, partition: int) -> str:
    while True:
        account = await open_account(http, replica.base, FUNDS, prefix="firm")
        if partition_of(account, 2) == partition:
            return account


async def test_global_cap_when_two_replicas_place_at_once_then_it_is_never_passed(
    pair: tuple[Replica, Replica], http: aiohttp.ClientSession
) -> None:
    # Arrange: the market, one account per partition (so per replica), and the firm's cap
    first, second = pair
    await _split(http, pair)
    await _publish_tick(first)
    for replica in pair:
        await last_price(http, replica.base, "BTC-USD")
    accounts = [await _account_on(http, first, p) for p in (0, 1)]
    owner = {p: r for r in pair for p in await _owned(http, r)}
    caps = {"symbols": {"BTC-USD": {"max_gross_notional": str(CAP)}}}
    async with http.put(f"{first.base}/api/risk/global-limits", json=caps) as response:
        assert response.status == 200, await response.text()
    assert (await _state(http, second))["symbols"]["BTC-USD"]["max_gross_notional"] == str(CAP)
    await asyncio.sleep(2 * first.settings.global_limits_refresh_s + 0.5)  # both read them

    # Act: thirty orders at once, each account's through a different replica than the
    # other's, half through the replica that does not own it
    placing = [_place(http, pair[n % 2], accounts[(n // 2) % 2]) for n in range(2 * PER_ACCOUNT)]
    order_ids = await asyncio.gather(*placing)
    owners = [owner[(n // 2) % 2] for n in range(2 * PER_ACCOUNT)]
    decided = await asyncio.gather(
        *(_decided(http, r, o) for r, o in zip(owners, order_ids, strict=True))
    )

    # Assert: exactly the cap's ten, from both accounts together; the rest refused for it
    accepted = [o for o in decided if o["status"] == "ACCEPTED"]
    refused = [o for o in decided if o["status"] == "REJECTED"]
    assert len(accepted) == 10, [(o["status"], o["reject_reason"]) for o in decided]
    assert {o["reject_reason"] for o in refused} == {"GLOBAL_NOTIONAL_LIMIT"}
    assert len(refused) == 2 * PER_ACCOUNT - 10
    assert await _open_notional(http, second) == CAP

    # Act: one accepted order cancelled gives its share back, to either replica's account
    cancelled = accepted[0]
    cancel_owner = owner[partition_of(cancelled["account_id"], 2)]
    async with http.delete(f"{cancel_owner.base}/api/orders/{cancelled['order_id']}") as r:
        assert r.status == 202, await r.text()
    deadline = time.monotonic() + DEADLINE_S
    while await _open_notional(http, first) != CAP - 290:
        assert time.monotonic() < deadline, "the cancel never released its reservation"
        await asyncio.sleep(0.2)
    other = next(a for a in accounts if a != cancelled["account_id"])
    again = await _decided(http, owner[partition_of(other, 2)], await _place(http, second, other))

    # Assert
    assert again["status"] == "ACCEPTED", again
    assert await _open_notional(http, first) == CAP


def test_global_cap_when_a_replica_is_killed_then_its_share_is_rebuilt_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Six orders rest on one replica's account; that replica is SIGKILLed; the survivor
    rebuilds the partition's share from the store: the firm still holds exactly six, so the
    other account gets exactly the four the cap has left."""
    require_servers()
    overrides = {**run_overrides(uuid.uuid4().hex[:8]), "OMS_SIMULATED_FEED": "false"}
    with two_replicas(overrides, tmp_path_factory.mktemp("global-kill")) as pair:
        asyncio.run(_killed_scenario(pair))


async def _killed_scenario(pair: tuple[Replica, Replica]) -> None:
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=30)) as http:
        # Arrange: the cap, the market, an account on each partition, six orders on one
        await _split(http, pair)
        await _publish_tick(pair[0])
        for replica in pair:
            await last_price(http, replica.base, "BTC-USD")
        caps = {"symbols": {"BTC-USD": {"max_gross_notional": str(CAP)}}}
        async with http.put(f"{pair[0].base}/api/risk/global-limits", json=caps) as response:
            assert response.status == 200, await response.text()
        await asyncio.sleep(2 * pair[0].settings.global_limits_refresh_s + 0.5)
        doomed, kept = [await _account_on(http, pair[0], p) for p in (0, 1)]
        owner = {p: r for r in pair for p in await _owned(http, r)}
        victim, survivor = owner[0], owner[1]
        placed = [await _place(http, victim, doomed) for _ in range(6)]
        for order_id in placed:
            assert (await _decided(http, victim, order_id))["status"] == "ACCEPTED"

        # Act: kill the owner of the six; the survivor takes their partition over
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(10)
        deadline = time.monotonic() + DEADLINE_S
        while await _owned(http, survivor) != {0, 1}:
            assert time.monotonic() < deadline, "the survivor never took the partition over"
            await asyncio.sleep(0.3)
        later = [await _place(http, survivor, kept) for _ in range(6)]
        decided = [await _decided(http, survivor, order_id) for order_id in later]

        # Assert: six held once (not lost, not twice), so four more fit and two are refused
        assert await _open_notional(http, survivor) == CAP
        assert [o["status"] for o in decided].count("ACCEPTED") == 4, decided
        refused = [o["reject_reason"] for o in decided if o["status"] == "REJECTED"]
        assert refused == ["GLOBAL_NOTIONAL_LIMIT"] * 2
