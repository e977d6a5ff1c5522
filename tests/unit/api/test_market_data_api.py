"""The door's stale-feed check: a MARKET order on a stopped feed is 422 MARKET_DATA_STALE."""

from __future__ import annotations

from oms.api.problems import PROBLEM_CONTENT_TYPE
from tests.unit.api.conftest import Api

MARKET = {
    "account_id": "a1",
    "symbol": "BTC-USD",
    "side": "BUY",
    "type": "MARKET",
    "quantity": "0.5",
    "time_in_force": "IOC",
}


async def test_place_when_market_and_feed_stale_then_422_and_sends_nothing(api: Api) -> None:
    stale_s = api.engine.settings.market_data_stale_s
    api.engine.freshness.saw("BTC-USD", api.engine.clock() - stale_s - 1)  # the feed stopped
    sent = api.bus.sent_count

    response = await api.client.post("/api/orders", json=MARKET)

    assert response.status == 422
    assert response.content_type == PROBLEM_CONTENT_TYPE
    [error] = (await response.json())["errors"]
    assert (error["field"], error["code"]) == ("type", "MARKET_DATA_STALE")
    assert api.bus.sent_count == sent


async def test_place_when_limit_and_feed_stale_then_202(api: Api) -> None:
    stale_s = api.engine.settings.market_data_stale_s
    api.engine.freshness.saw("BTC-USD", api.engine.clock() - stale_s - 1)
    body = {**MARKET, "type": "LIMIT", "price": "99.00", "time_in_force": "GTC"}

    response = await api.client.post("/api/orders", json=body)

    assert response.status == 202, await response.text()


async def test_place_when_market_and_feed_fresh_then_202(api: Api) -> None:
    response = await api.client.post("/api/orders", json=MARKET)

    assert response.status == 202, await response.text()
