"""``oms serve`` with ``OMS_VENUE=ccxt`` on a fake Binance reconciles on its timer: an order whose
place answer was lost is resolved by a run while the gateway's own query waits an hour; an order
at the exchange that nobody here placed is a discrepancy that halts every account, durably, on
``risk-events``, ``/metrics`` and ``GET /api/venue/reconciliation`` (last: it stops trading).

Real ccxt, real HTTP, real Kafka, Redis and FerretDB; the replica has a run of its own (topics,
group, database), since the halt it proves stops everything in that run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import (
    Replica,
    drop_database,
    last_price,
    open_account,
    order_until,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
)
from tests.e2e.venue_exchange import SYMBOL, FakeOnItsLoop, place_limit_buy

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def exchange() -> Iterator[FakeOnItsLoop]:
    fake = FakeOnItsLoop()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def replica(exchange: FakeOnItsLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    require_servers()
    overrides = {
        **run_overrides(uuid.uuid4().hex[:8]),
        "OMS_SYMBOLS": SYMBOL,
        "OMS_VENUE": "ccxt",
        "OMS_VENUE_EXCHANGE": "binance",
        "OMS_VENUE_URL": exchange.url,
        "OMS_VENUE_API_KEY": "e2e-key",
        "OMS_VENUE_API_SECRET": "e2e-secret",
        "OMS_VENUE_TIMEOUT_S": "1",
        "OMS_RECONCILE_INTERVAL_S": "0.5",
        # The gateway's own query of a doubt waits an hour: only reconciliation resolves one.
        "OMS_VENUE_QUERY_DELAY_S": "3600",
    }
    started = start_replica(overrides, tmp_path_factory.mktemp("reconcile") / "serve.log")
    try:
        yield started
    finally:
        stop_replica(started)
        drop_database(started.settings)


async def _report_until(http: aiohttp.ClientSession, replica: Replica, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        response = await http.get(f"{replica.base}/api/venue/reconciliation")
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        # The count comes first, the run's report once the run has ended: wait for both.
        last = body["last"] or {"discrepancies": []}
        if kind in body["discrepancies_total"] and kind in {
            d["kind"] for d in last["discrepancies"]
        }:
            return body
        assert time.monotonic() < deadline, f"no {kind} reported: {body}"
        await asyncio.sleep(0.2)


async def test_reconcile_when_a_place_answer_was_lost_then_a_run_resolves_the_doubt(
    replica: Replica, exchange: FakeOnItsLoop, http: aiohttp.ClientSession
) -> None:
    # Arrange: the exchange takes the order (it rests there) and holds back its answer past
    # oms's one-second timeout; the gateway's query of the doubt would come in an hour.
    account = await open_account(http, replica.base, {"USDT": "1000000"})
    price = await last_price(http, replica.base, SYMBOL)

    def hang() -> None:
        exchange.fake.prices["BTCUSDT"] = Decimal(1_000_000)
        exchange.fake.hang_next_place = True

    exchange.call(hang)

    # Act
    order_id = await place_limit_buy(http, replica, account, price)
    await order_until(http, replica, order_id, {"IN_DOUBT"})
    resolved = await order_until(http, replica, order_id, {"ACCEPTED"})

    # Assert: placed once, never rejected, resolved on the exchange's word, nothing halted
    requests = exchange.call(lambda: list(exchange.fake.requests))
    assert requests.count(("POST", "/api/v3/order")) == 1
    assert resolved["reject_reason"] is None
    history = await (await http.get(f"{replica.base}/api/orders/{order_id}/events")).json()
    kinds = [event["type"] for event in history["events"]]
    assert kinds == ["OrderPlaced", "OrderAccepted", "OrderInDoubt", "OrderDoubtResolved"]
    report = await (await http.get(f"{replica.base}/api/venue/reconciliation")).json()
    assert report["discrepancies_total"] == {}


async def test_reconcile_when_the_exchange_holds_an_order_nobody_placed_then_everything_halts(
    replica: Replica, exchange: FakeOnItsLoop, http: aiohttp.ClientSession
) -> None:
    # Arrange: someone else's order on our exchange account
    async with aiohttp.ClientSession(headers={"X-MBX-APIKEY": "outsider"}) as outsider:
        placed = await outsider.post(
            f"{exchange.url}/api/v3/order",
            data={"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01",
                  "price": "0.5", "timeInForce": "GTC", "newClientOrderId": "stranger"},
        )  # fmt: skip
        assert placed.status == 200, await placed.text()

    # Act: the timer's run finds it
    body = await _report_until(http, replica, "UNKNOWN_VENUE_ORDER")

    # Assert
    assert body["reconciling"] is True
    assert body["discrepancies_total"] == {"UNKNOWN_VENUE_ORDER": 1}
    found = body["last"]["discrepancies"]
    assert [(d["kind"], d["account_id"], d["order_id"]) for d in found] == [
        ("UNKNOWN_VENUE_ORDER", None, "stranger")
    ]
    metrics = await (await http.get(f"{replica.base}/metrics")).text()
    assert 'oms_reconcile_discrepancies_total{kind="UNKNOWN_VENUE_ORDER"} 1.0' in metrics
    deadline = time.monotonic() + 10
    while 'oms_kill_switch{state="HALTED"} 1.0' not in metrics:
        assert time.monotonic() < deadline, "the global kill switch never showed HALTED"
        await asyncio.sleep(0.2)
        metrics = await (await http.get(f"{replica.base}/metrics")).text()
