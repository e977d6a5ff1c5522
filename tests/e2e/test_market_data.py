"""Real market data on a real ``oms serve``: ``OMS_MARKET_DATA=exchange`` pointed at a local
Binance replaying recorded frames (``tests/fixtures/binance_replay.py``).

A MARKET order fills at the replayed book's price; once the exchange stops sending, MARKET
orders are refused with ``MARKET_DATA_STALE`` (422 over REST, REJECTED over Kafka) and
``/metrics`` shows the symbol stale.
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

from oms.domain.order_ids import client_order_id_order
from oms.stream.names import topic_names
from tests.e2e.conftest import (
    Replica,
    drop_database,
    open_account,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
)
from tests.fixtures.binance_replay import BinanceReplay, in_thread

STALE_S = 2.0
WAIT_S = 20.0
REPLAYED_ASK = Decimal("60010.50")  # the fixture's last best ask (and last trade)
FUNDS = {"USD": "1000000", "BTC": "10"}


@pytest.fixture(scope="module")
def feed() -> Iterator[BinanceReplay]:
    """The local Binance, its last trade repeated every 0.2 s until the test silences it."""
    with in_thread(BinanceReplay(frame_interval_s=0.02, keepalive_s=0.2)) as replay:
        yield replay


@pytest.fixture(scope="module")
def exchange_replica(
    feed: BinanceReplay, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replica]:
    """``oms serve`` taking BTC-USD from the local Binance."""
    require_servers()
    overrides = {
        **run_overrides(uuid.uuid4().hex[:8]),
        "OMS_MARKET_DATA": "exchange",
        "OMS_MARKET_DATA_URL": feed.url,
        "OMS_MARKET_DATA_REST_URL": feed.rest_url,
        "OMS_MARKET_DATA_SYMBOLS": "BTC-USD=BTCUSDT",
        "OMS_MARKET_DATA_STALE_S": str(STALE_S),
        "OMS_MARKET_DATA_RECONNECT_INITIAL_S": "0.1",
    }
    started = start_replica(overrides, tmp_path_factory.mktemp("feed") / "serve.log")
    try:
        yield started
    finally:
        stop_replica(started)
        drop_database(started.settings)


def _is(text: str | None, value: Decimal | str) -> bool:
    """Whether a decimal string of the API is ``value`` (the exchange's digits are kept)."""
    return text is not None and Decimal(text) == Decimal(value)


async def _until(http: aiohttp.ClientSession, url: str, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        response = await http.get(url)
        body = await response.json() if response.status == 200 else {}
        if done(body):
            return body  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never became what was waited for: {body}")
        await asyncio.sleep(0.1)


async def _stale_gauge(http: aiohttp.ClientSession, base: str) -> str:
    text = await (await http.get(f"{base}/metrics")).text()
    lines = [
        ln for ln in text.splitlines() if ln.startswith('oms_market_data_stale{symbol="BTC-USD"')
    ]
    return lines[0].rsplit(" ", 1)[1] if lines else ""


async def _produce_market(replica: Replica, account: str, client_order_id: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=replica.settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_names(replica.settings).orders,
            key=account.encode(),
            value=orjson.dumps(
                {
                    "type": "PlaceOrder",
                    "client_order_id": client_order_id,
                    "account_id": account,
                    "symbol": "BTC-USD",
                    "side": "BUY",
                    "order_type": "MARKET",
                    "quantity": "0.01",
                    "price": None,
                    "time_in_force": "IOC",
                    "created_at": time.time(),
                }
            ),
        )
    finally:
        await producer.stop()


async def test_market_order_when_exchange_feeds_then_fills_at_replayed_price_and_refused_once_stale(
    feed: BinanceReplay, exchange_replica: Replica, http: aiohttp.ClientSession
) -> None:
    base = exchange_replica.base
    market = {"symbol": "BTC-USD", "side": "BUY", "type": "MARKET", "quantity": "0.01",
              "time_in_force": "IOC"}  # fmt: skip
    account = await open_account(http, base, FUNDS)

    # The replay reached its last book: a MARKET BUY takes its best ask.
    price = await _until(
        http,
        f"{base}/api/market-data/prices/BTC-USD",
        lambda b: _is(b.get("last_price"), REPLAYED_ASK) and _is(b.get("best_bid"), "60010.20"),
    )
    assert Decimal(price["best_ask"]) == REPLAYED_ASK
    placed = await http.post(f"{base}/api/orders", json={**market, "account_id": account})
    assert placed.status == 202, await placed.text()
    order_id = (await placed.json())["order_id"]
    order = await _until(
        http, f"{base}/api/orders/{order_id}", lambda b: b.get("status") == "SETTLED"
    )
    assert Decimal(order["average_fill_price"]) == REPLAYED_ASK
    assert await _stale_gauge(http, base) == "0.0"

    # The exchange stops sending (the connection stays open): after STALE_S, refused.
    feed.silence()
    await asyncio.sleep(STALE_S + 1.0)

    refused = await http.post(f"{base}/api/orders", json={**market, "account_id": account})
    assert refused.status == 422, await refused.text()
    [error] = (await refused.json())["errors"]
    assert error["code"] == "MARKET_DATA_STALE"
    await _produce_market(exchange_replica, account, "k-stale")
    rejected = await _until(
        http,
        f"{base}/api/orders/{client_order_id_order(account, 'k-stale')}",
        lambda b: b.get("status") == "REJECTED",
    )
    assert rejected["reject_reason"] == "MARKET_DATA_STALE"
    assert await _stale_gauge(http, base) == "1.0"
    limit = {**market, "type": "LIMIT", "price": "59000.00", "time_in_force": "GTC"}
    resting = await http.post(f"{base}/api/orders", json={**limit, "account_id": account})
    assert resting.status == 202, await resting.text()  # a LIMIT order is still taken
