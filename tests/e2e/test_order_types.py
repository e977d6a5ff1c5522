"""Issue 15's order types on a real ``oms serve`` (real Kafka, Redis, FerretDB), each over REST
and over Kafka: amend, post-only, stops, GTD expiry (across a restart too) and cancel-all."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from oms.domain.order_ids import client_order_id_order
from oms.marketdata import BookLevel, Tick
from oms.stream.codecs import encode_tick
from oms.stream.names import topic_names
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
)

FUNDS = {"USD": "1000000", "BTC": "10", "ETH": "100", "SOL": "1000"}
TERMINAL = {"SETTLED", "CANCELLED", "REJECTED", "EXPIRED"}
WAIT_S = 20.0


async def _order(http: aiohttp.ClientSession, base: str, order_id: str) -> dict[str, Any]:
    response = await http.get(f"{base}/api/orders/{order_id}")
    return await response.json() if response.status == 200 else {}


async def _until(
    http: aiohttp.ClientSession, base: str, order_id: str, statuses: set[str]
) -> dict[str, Any]:
    """The order once its status is one of ``statuses`` (WAIT_S at most)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        order = await _order(http, base, order_id)
        if order.get("status") in statuses:
            return order
        if time.monotonic() > deadline:
            raise AssertionError(f"{order_id} never reached {statuses}: {order}")
        await asyncio.sleep(0.1)


async def _events_until(
    http: aiohttp.ClientSession, base: str, order_id: str, kind: str
) -> list[dict[str, Any]]:
    """The order's history once it holds an event of ``kind`` (WAIT_S at most)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        response = await http.get(f"{base}/api/orders/{order_id}/events")
        events = (await response.json())["events"] if response.status == 200 else []
        if any(event["type"] == kind for event in events):
            return events  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"{order_id} never had {kind}: {events}")
        await asyncio.sleep(0.1)


async def _place(http: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> str:
    response = await http.post(f"{base}/api/orders", json=body)
    assert response.status == 202, await response.text()
    return str((await response.json())["order_id"])


async def _produce(replica: Replica, account: str, *records: dict[str, Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=replica.settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                topic_names(replica.settings).orders,
                key=account.encode(),
                value=orjson.dumps(record),
            )
    finally:
        await producer.stop()


def _kafka_place(account: str, client_order_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "PlaceOrder", "client_order_id": client_order_id, "account_id": account,
        "symbol": "ETH-USD", "side": "BUY", "quantity": "0.1", "created_at": time.time(),
        **fields,
    }  # fmt: skip


async def _far_below(http: aiohttp.ClientSession, base: str) -> Decimal:
    return (await last_price(http, base, "ETH-USD") * Decimal("0.97")).quantize(Decimal("0.01"))


async def test_amend_when_over_rest_then_amended_and_reservation_follows(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    price = await _far_below(http, replica.base)
    order_id = await _place(http, replica.base, {
        "account_id": account, "symbol": "ETH-USD", "side": "BUY", "type": "LIMIT",
        "quantity": "0.1", "price": str(price),
    })  # fmt: skip
    await _until(http, replica.base, order_id, {"ACCEPTED"})
    lower = price - Decimal("1.00")

    response = await http.patch(
        f"{replica.base}/api/orders/{order_id}", json={"quantity": "0.3", "price": str(lower)}
    )
    await _events_until(http, replica.base, order_id, "OrderAmended")

    assert response.status == 202
    order = await _order(http, replica.base, order_id)
    assert (Decimal(order["quantity"]), Decimal(order["price"])) == (Decimal("0.3"), lower)
    account_now = await (await http.get(f"{replica.base}/api/accounts/{account}")).json()
    assert Decimal(account_now["balances"]["USD"]["reserved"]) >= Decimal("0.3") * lower
    cancel = await http.delete(f"{replica.base}/api/orders/{order_id}")
    assert cancel.status == 202
    await _until(http, replica.base, order_id, {"CANCELLED"})
    again = await http.patch(f"{replica.base}/api/orders/{order_id}", json={"price": str(price)})
    assert again.status == 409


async def test_amend_when_over_kafka_then_amended(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    price = await _far_below(http, replica.base)
    order_id = client_order_id_order(account, "k-amend")
    await _produce(replica, account, _kafka_place(
        account, "k-amend", order_type="LIMIT", price=str(price), time_in_force="GTC"
    ))  # fmt: skip
    await _until(http, replica.base, order_id, {"ACCEPTED"})

    await _produce(replica, account, {
        "type": "AmendOrder", "order_id": order_id, "account_id": account,
        "command_id": f"amend:{uuid.uuid4().hex}", "quantity": "0.2",
    })  # fmt: skip
    await _events_until(http, replica.base, order_id, "OrderAmended")

    assert (await _order(http, replica.base, order_id))["quantity"] == "0.2"


async def test_post_only_when_it_would_cross_then_rejected_over_rest_and_kafka(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    above = (await last_price(http, replica.base, "ETH-USD") * Decimal("1.01")).quantize(
        Decimal("0.01")
    )
    rest_id = await _place(http, replica.base, {
        "account_id": account, "symbol": "ETH-USD", "side": "BUY", "type": "LIMIT",
        "quantity": "0.1", "price": str(above), "post_only": True,
    })  # fmt: skip
    kafka_id = client_order_id_order(account, "k-post-only")
    await _produce(replica, account, _kafka_place(
        account, "k-post-only", order_type="LIMIT", price=str(above), post_only=True
    ))  # fmt: skip

    for order_id in (rest_id, kafka_id):
        order = await _until(http, replica.base, order_id, TERMINAL)
        assert (order["status"], order["reject_reason"]) == ("REJECTED", "POST_ONLY_WOULD_CROSS")
        assert order["filled_quantity"] == "0"


async def _publish_eth_tick(replica: Replica, last: Decimal) -> None:
    """One ETH-USD tick on the run's ``prices`` (where the simulated feed publishes too, on the
    same partition): last price and bid at ``last``, ask one tick above, 10 ETH on each side.

    It is stamped once the producer is connected, just before it is sent: the book ignores a
    tick older than the one it holds, and the feed stamps one every 100 ms, so a stamp taken
    before a slow connect can land behind a newer feed tick and be ignored."""
    producer = AIOKafkaProducer(bootstrap_servers=replica.settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        ask = last + Decimal("0.01")
        tick = Tick("ETH-USD", last, last, ask, (BookLevel(last, Decimal(10)),),
                    (BookLevel(ask, Decimal(10)),), time.time())  # fmt: skip
        await producer.send_and_wait(
            topic_names(replica.settings).prices, encode_tick(tick), b"ETH-USD"
        )
    finally:
        await producer.stop()


async def _cross(
    http: aiohttp.ClientSession, replica: Replica, last: Decimal, order_ids: tuple[str, ...]
) -> None:
    """Publish a tick at ``last`` until each of ``order_ids`` has been triggered or has left
    ACCEPTED (5 ticks at most). A feed tick stamped between our stamp and our send can still
    win the race; another tick at the same price is harmless, a triggered stop has left the
    stops."""
    for _ in range(5):
        await _publish_eth_tick(replica, last)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            orders = [await _order(http, replica.base, order_id) for order_id in order_ids]
            if not any(o.get("status") == "ACCEPTED" and o.get("triggered_at") is None
                       for o in orders):  # fmt: skip
                return
            await asyncio.sleep(0.1)


async def test_stop_when_the_market_crosses_then_triggered_and_filled_over_rest_and_kafka(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    # A BUY stop 2% above the market waits (the walk does not go that far in a few seconds)...
    stop = (await last_price(http, replica.base, "ETH-USD") * Decimal("1.02")).quantize(
        Decimal("0.01")
    )
    rest_id = await _place(http, replica.base, {
        "account_id": account, "symbol": "ETH-USD", "side": "BUY", "type": "STOP_MARKET",
        "quantity": "0.1", "stop_price": str(stop), "time_in_force": "IOC",
    })  # fmt: skip
    kafka_id = client_order_id_order(account, "k-stop")
    await _produce(replica, account, _kafka_place(
        account, "k-stop", order_type="STOP_MARKET", stop_price=str(stop), time_in_force="IOC"
    ))  # fmt: skip
    for order_id in (rest_id, kafka_id):
        waiting = await _until(http, replica.base, order_id, {"ACCEPTED"})
        assert waiting["triggered_at"] is None

    # ...until a tick's last price reaches it: triggered, it fills as a MARKET order.
    await _cross(http, replica, stop, (rest_id, kafka_id))

    for order_id in (rest_id, kafka_id):
        order = await _until(http, replica.base, order_id, TERMINAL)
        assert order["status"] == "SETTLED", order
        assert order["triggered_at"] is not None
        events = await _events_until(http, replica.base, order_id, "OrderTriggered")
        assert [e["type"] for e in events][:3] == ["OrderPlaced", "OrderAccepted", "OrderTriggered"]


async def test_stop_when_the_market_is_already_past_it_then_refused_over_rest_and_kafka(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    # A BUY stop 2% below the market would trigger at once: never what its sender meant.
    stop = (await last_price(http, replica.base, "ETH-USD") * Decimal("0.98")).quantize(
        Decimal("0.01")
    )
    body = {
        "account_id": account, "symbol": "ETH-USD", "side": "BUY", "type": "STOP_MARKET",
        "quantity": "0.1", "stop_price": str(stop), "time_in_force": "IOC",
    }  # fmt: skip

    response = await http.post(f"{replica.base}/api/orders", json=body)
    kafka_id = client_order_id_order(account, "k-stop-wrong")
    await _produce(replica, account, _kafka_place(
        account, "k-stop-wrong", order_type="STOP_MARKET", stop_price=str(stop),
        time_in_force="IOC",
    ))  # fmt: skip

    assert response.status == 422, await response.text()
    [error] = (await response.json())["errors"]
    assert (error["field"], error["code"]) == ("stop_price", "STOP_PRICE_WRONG_SIDE")
    # Over Kafka there is no market at decode time: the venue rejects it on arrival.
    order = await _until(http, replica.base, kafka_id, TERMINAL)
    assert (order["status"], order["reject_reason"]) == ("REJECTED", "STOP_PRICE_WRONG_SIDE")
    assert await _reserved_drops_to_zero(http, replica.base, account)


async def _reserved_drops_to_zero(http: aiohttp.ClientSession, base: str, account: str) -> bool:
    """Whether nothing of the account stays reserved (its release may lag its order's end)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        document = await (await http.get(f"{base}/api/accounts/{account}")).json()
        if all(Decimal(b["reserved"]) == 0 for b in document["balances"].values()):
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)


async def test_gtd_when_its_time_comes_then_expired_over_rest_and_kafka(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    price = await _far_below(http, replica.base)
    expire_at = time.time() + 3
    rest_id = await _place(http, replica.base, {
        "account_id": account, "symbol": "ETH-USD", "side": "BUY", "type": "LIMIT",
        "quantity": "0.1", "price": str(price), "time_in_force": "GTD",
        "expire_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expire_at + 1)),
    })  # fmt: skip
    kafka_id = client_order_id_order(account, "k-gtd")
    await _produce(replica, account, _kafka_place(
        account, "k-gtd", order_type="LIMIT", price=str(price), time_in_force="GTD",
        expire_at=expire_at,
    ))  # fmt: skip

    for order_id in (rest_id, kafka_id):
        order = await _until(http, replica.base, order_id, TERMINAL)
        assert order["status"] == "EXPIRED"
    account_now = await (await http.get(f"{replica.base}/api/accounts/{account}")).json()
    assert Decimal(account_now["balances"]["USD"]["reserved"]) == 0


async def test_cancel_all_when_orders_rest_then_each_cancelled_over_rest_and_kafka(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    price = await _far_below(http, replica.base)
    body = {
        "account_id": account, "symbol": "ETH-USD", "side": "BUY", "type": "LIMIT",
        "quantity": "0.1", "price": str(price),
    }  # fmt: skip
    first = [await _place(http, replica.base, body) for _ in range(2)]
    for order_id in first:
        await _until(http, replica.base, order_id, {"ACCEPTED"})

    response = await http.delete(f"{replica.base}/api/orders", params={"account_id": account})
    assert response.status == 202
    assert (await response.json())["requested"] == 2
    for order_id in first:
        await _until(http, replica.base, order_id, {"CANCELLED"})

    second = await _place(http, replica.base, body)
    await _until(http, replica.base, second, {"ACCEPTED"})
    await _produce(replica, account, {
        "type": "CancelAll", "account_id": account, "command_id": f"all:{uuid.uuid4().hex}",
    })  # fmt: skip
    await _until(http, replica.base, second, {"CANCELLED"})


@pytest.fixture
def own_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    require_servers()
    return run_overrides(uuid.uuid4().hex[:8])


async def test_gtd_when_its_time_comes_while_serve_is_down_then_expired_after_restart(
    own_run: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    log = tmp_path_factory.mktemp("gtd") / "serve.log"
    first = await asyncio.to_thread(start_replica, own_run, log)
    try:
        async with authenticated_session(timeout=aiohttp.ClientTimeout(total=30)) as http:
            account = await open_account(http, first.base, FUNDS)
            price = await _far_below(http, first.base)
            expire = time.time() + 8
            expire_at = time.gmtime(expire)
            order_id = await _place(http, first.base, {
                "account_id": account, "symbol": "ETH-USD", "side": "BUY", "type": "LIMIT",
                "quantity": "0.1", "price": str(price), "time_in_force": "GTD",
                "expire_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", expire_at),
            })  # fmt: skip
            await _until(http, first.base, order_id, {"ACCEPTED"})
    finally:
        await asyncio.to_thread(stop_replica, first)
    assert time.time() < expire, "the first serve outlived the order: nothing was tested"
    await asyncio.sleep(expire - time.time() + 0.5)  # its time comes while nothing runs
    second = await asyncio.to_thread(start_replica, own_run, log)
    try:
        async with authenticated_session(timeout=aiohttp.ClientTimeout(total=30)) as http:
            order = await _until(http, second.base, order_id, TERMINAL)
            assert order["status"] == "EXPIRED"
            account_now = await (await http.get(f"{second.base}/api/accounts/{account}")).json()
            assert Decimal(account_now["balances"]["USD"]["reserved"]) == 0
    finally:
        await asyncio.to_thread(stop_replica, second)
        drop_database(second.settings)
