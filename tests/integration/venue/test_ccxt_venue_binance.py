"""The ccxt adapter against a fake of Binance spot's REST API on 127.0.0.1 (real HTTP, real ccxt).

Nothing of ccxt is mocked: its binance class signs and sends every request to the fake, which
answers as Binance does, including its error payloads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from oms.domain.enums import OrderType, Side
from oms.venue.ccxt_venue import CcxtSettings, CcxtVenue, build_exchange
from oms.venue.port import (
    PlaceRequest,
    RefusalReason,
    UnknownReason,
    VenueOrderStatus,
    VenueOutcomeUnknown,
    VenueRefused,
)
from tests.fake_binance import INSUFFICIENT, NOT_FOUND, RATE_LIMITED, FakeBinance

pytestmark = pytest.mark.integration


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    exchange = FakeBinance(hang_s=3.0)
    await exchange.start()
    yield exchange
    await exchange.stop()


@pytest.fixture
async def venue(fake: FakeBinance) -> AsyncIterator[CcxtVenue]:
    settings = CcxtSettings("binance", "test-key", "test-secret", url=fake.url, timeout_s=1.0)
    adapter = CcxtVenue(build_exchange(settings))
    await adapter.open()
    yield adapter
    await adapter.close()


def _limit(client_order_id: str, price: str, quantity: str = "0.01") -> PlaceRequest:
    return PlaceRequest(
        client_order_id, "BTC-USDT", Side.BUY, OrderType.LIMIT, Decimal(quantity), Decimal(price)
    )


async def test_instrument_rules_when_markets_load_then_binance_filters_become_tick_and_lot(
    venue: CcxtVenue, fake: FakeBinance
) -> None:
    rules = await venue.instrument_rules()

    assert set(rules) == {"BTC-USDT", "ETH-USDT"}
    assert rules["BTC-USDT"].tick_size == Decimal("0.01")
    assert rules["BTC-USDT"].lot_size == Decimal("0.00001")
    assert rules["BTC-USDT"].min_notional == Decimal(5)
    assert ("GET", "/api/v3/exchangeInfo") in fake.requests


async def test_place_when_limit_below_the_market_then_rests_under_our_client_order_id(
    venue: CcxtVenue, fake: FakeBinance
) -> None:
    placed = await venue.place(_limit("OMS0001", "49000"))

    assert placed.status is VenueOrderStatus.OPEN
    assert placed.client_order_id == "OMS0001"
    assert fake.order("OMS0001").status == "NEW"
    assert [o.client_order_id for o in await venue.open_orders("BTC-USDT")] == ["OMS0001"]


async def test_fetch_order_when_the_market_crosses_then_filled_with_its_trade(
    venue: CcxtVenue, fake: FakeBinance
) -> None:
    await venue.place(_limit("OMS0002", "49000"))
    fake.trade_at("BTCUSDT", Decimal(48000))

    state = await venue.fetch_order("OMS0002", "BTC-USDT")
    trades = await venue.my_trades("BTC-USDT")

    assert state.status is VenueOrderStatus.FILLED
    assert state.filled == Decimal("0.01")
    assert [(t.quantity, t.price, t.fee) for t in trades] == [
        (Decimal("0.01"), Decimal(49000), Decimal("0.49"))
    ]
    assert trades[0].venue_order_id == state.venue_order_id


async def test_cancel_when_resting_then_cancelled_with_nothing_filled(
    venue: CcxtVenue, fake: FakeBinance
) -> None:
    await venue.place(_limit("OMS0003", "40000"))

    cancelled = await venue.cancel("OMS0003", "BTC-USDT")

    assert cancelled.status is VenueOrderStatus.CANCELLED
    assert cancelled.client_order_id == "OMS0003"
    assert cancelled.filled == 0
    assert await venue.open_orders() == []


async def test_place_when_balance_is_short_then_refused_insufficient_funds(
    venue: CcxtVenue, fake: FakeBinance
) -> None:
    fake.balances["USDT"] = Decimal(10)

    with pytest.raises(VenueRefused) as refused:
        await venue.place(_limit("OMS0004", "49000"))

    assert refused.value.code == RefusalReason.INSUFFICIENT_FUNDS.value
    assert INSUFFICIENT["msg"] in str(refused.value)
    assert "OMS0004" not in fake.orders


async def test_fetch_order_when_the_venue_never_had_it_then_refused_not_found(
    venue: CcxtVenue,
) -> None:
    with pytest.raises(VenueRefused) as refused:
        await venue.fetch_order("NEVERSENT", "BTC-USDT")

    assert refused.value.code == RefusalReason.ORDER_NOT_FOUND.value
    assert NOT_FOUND["msg"] in str(refused.value)


async def test_cancel_when_the_order_is_unknown_then_refused_not_found(venue: CcxtVenue) -> None:
    with pytest.raises(VenueRefused) as refused:
        await venue.cancel("NEVERSENT", "BTC-USDT")

    assert refused.value.code == RefusalReason.ORDER_NOT_FOUND.value


async def test_place_when_rate_limited_with_429_then_unknown_and_nothing_guessed(
    venue: CcxtVenue, fake: FakeBinance
) -> None:
    fake.fail_next("POST", "/api/v3/order", 429, RATE_LIMITED)

    with pytest.raises(VenueOutcomeUnknown) as unknown:
        await venue.place(_limit("OMS0005", "49000"))

    assert unknown.value.code == UnknownReason.RATE_LIMITED.value


async def test_place_when_the_venue_answers_5xx_then_unknown_unavailable(
    venue: CcxtVenue, fake: FakeBinance
) -> None:
    fake.fail_next("POST", "/api/v3/order", 503, {"code": -1001, "msg": "Internal error"})

    with pytest.raises(VenueOutcomeUnknown) as unknown:
        await venue.place(_limit("OMS0006", "49000"))

    assert unknown.value.code == UnknownReason.UNAVAILABLE.value


async def test_place_when_the_answer_never_comes_then_unknown_and_the_query_finds_it(
    venue: CcxtVenue, fake: FakeBinance
) -> None:
    fake.hang_next_place = True

    with pytest.raises(VenueOutcomeUnknown) as unknown:
        await venue.place(_limit("OMS0007", "49000"))
    found = await venue.fetch_order("OMS0007", "BTC-USDT")

    assert unknown.value.code == UnknownReason.TIMEOUT.value
    assert found.status is VenueOrderStatus.OPEN
    assert [m for m, p in fake.requests if p == "/api/v3/order"].count("POST") == 1


async def test_place_when_keys_are_missing_then_refused_authentication(fake: FakeBinance) -> None:
    adapter = CcxtVenue(build_exchange(CcxtSettings("binance", "", "", url=fake.url)))
    try:
        await adapter.open()
        with pytest.raises(VenueRefused) as refused:
            await adapter.place(_limit("OMS0008", "49000"))
    finally:
        await adapter.close()

    assert refused.value.code == RefusalReason.AUTHENTICATION.value
