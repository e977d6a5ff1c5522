"""``oms serve`` with ``OMS_VENUE=ccxt`` trading on a fake Binance spot API on 127.0.0.1.

Real ccxt, real HTTP, real Kafka, Redis and FerretDB: an order is placed at the exchange, filled
there and SETTLED here (its fill came back through ``executions``); a place whose answer never
comes leaves the order IN_DOUBT, and the query by client order id resolves it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

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
def venue_replica(
    exchange: FakeOnItsLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replica]:
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
        "OMS_VENUE_QUERY_DELAY_S": "1",
    }
    started = start_replica(overrides, tmp_path_factory.mktemp("venue") / "serve.log")
    try:
        yield started
    finally:
        stop_replica(started)
        drop_database(started.settings)


async def test_place_when_the_exchange_fills_it_then_settled_in_oms(
    venue_replica: Replica, exchange: FakeOnItsLoop, http: aiohttp.ClientSession
) -> None:
    # Arrange: the exchange trades below our price, so the order fills there on arrival.
    account = await open_account(http, venue_replica.base, {"USDT": "1000000"})
    price = await last_price(http, venue_replica.base, SYMBOL)
    exchange.call(lambda: exchange.fake.prices.update(BTCUSDT=Decimal("0.01")))

    # Act
    order_id = await place_limit_buy(http, venue_replica, account, price)
    order = await order_until(http, venue_replica, order_id, {"SETTLED"})

    # Assert
    assert exchange.call(lambda: exchange.fake.order(order_id).status) == "FILLED"
    assert Decimal(order["filled_quantity"]) == Decimal("0.01")
    account_now = await (await http.get(f"{venue_replica.base}/api/accounts/{account}")).json()
    assert Decimal(account_now["balances"]["BTC"]["available"]) == Decimal("0.01")
    assert Decimal(account_now["balances"]["USDT"]["reserved"]) == 0


async def test_place_when_its_answer_never_comes_then_in_doubt_until_the_query_resolves_it(
    venue_replica: Replica, exchange: FakeOnItsLoop, http: aiohttp.ClientSession
) -> None:
    # Arrange: the exchange trades above our price (the order rests there), and holds back
    # its answer to the next place past oms's one-second timeout.
    account = await open_account(http, venue_replica.base, {"USDT": "1000000"})
    price = await last_price(http, venue_replica.base, SYMBOL)

    def hang() -> None:
        exchange.fake.prices["BTCUSDT"] = Decimal(1_000_000)
        exchange.fake.hang_next_place = True

    exchange.call(hang)

    # Act
    order_id = await place_limit_buy(http, venue_replica, account, price)
    await order_until(http, venue_replica, order_id, {"IN_DOUBT"})
    resolved = await order_until(http, venue_replica, order_id, {"ACCEPTED"})
    exchange.call(lambda: exchange.fake.trade_at("BTCUSDT", Decimal("0.01")))
    settled = await order_until(http, venue_replica, order_id, {"SETTLED"})

    # Assert: placed once, never rejected, the doubt on its history, then filled there.
    requests = exchange.call(lambda: list(exchange.fake.requests))
    places = [(m, p) for m, p in requests if (m, p) == ("POST", "/api/v3/order")]
    assert resolved["reject_reason"] is None
    assert Decimal(settled["filled_quantity"]) == Decimal("0.01")
    history = await (await http.get(f"{venue_replica.base}/api/orders/{order_id}/events")).json()
    kinds = [event["type"] for event in history["events"]]
    assert kinds[:4] == ["OrderPlaced", "OrderAccepted", "OrderInDoubt", "OrderDoubtResolved"]
    assert kinds[-1] == "OrderSettled"
    assert len(places) == 2  # this order's one place, and the first test's
    metrics = await (await http.get(f"{venue_replica.base}/metrics")).text()
    assert "oms_orders_in_doubt 0.0" in metrics
