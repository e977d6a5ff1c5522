"""The ccxt adapter's pure parts: URLs pointed elsewhere, symbols, orders, trades, rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.enums import Side
from oms.venue.ccxt_venue import (
    CcxtSettings,
    CcxtVenue,
    build_exchange,
    instrument_rules,
    order_state,
    rebased,
    trade,
)
from oms.venue.port import (
    AmendRequest,
    AmendSupport,
    RefusalReason,
    UnknownReason,
    VenueOrderStatus,
    VenueOutcomeUnknown,
    VenueRefused,
)


def test_rebased_when_urls_are_nested_then_every_origin_changes_and_paths_stay() -> None:
    urls = {"public": "https://api.binance.com/api/v3", "sapi": {"v1": "https://x.io/sapi/v1"}}

    moved = rebased(urls, "http://127.0.0.1:9000")

    assert moved == {
        "public": "http://127.0.0.1:9000/api/v3",
        "sapi": {"v1": "http://127.0.0.1:9000/sapi/v1"},
    }


def test_build_exchange_when_url_is_set_then_spot_api_points_there_and_numbers_are_text() -> None:
    exchange = build_exchange(CcxtSettings("binance", "key", "secret", url="http://127.0.0.1:1"))

    assert exchange.urls["api"]["public"] == "http://127.0.0.1:1/api/v3"
    assert exchange.urls["api"]["private"] == "http://127.0.0.1:1/api/v3"
    assert exchange.number is str
    assert exchange.timeout == 10_000


def test_build_exchange_when_the_exchange_is_unknown_then_refused() -> None:
    with pytest.raises(VenueRefused) as refused:
        build_exchange(CcxtSettings("no-such-exchange", "key", "secret"))

    assert refused.value.code == RefusalReason.REFUSED.value


def test_order_state_when_ccxt_answers_text_then_amounts_are_exact_decimals() -> None:
    raw = {
        "id": "42",
        "clientOrderId": "cancel-7",
        "symbol": "BTC/USDT",
        "status": "canceled",
        "amount": "0.30000000",
        "filled": "0.10000000",
        "price": "50000.01000000",
        "average": "50000.01",
        "timestamp": 1_700_000_000_000,
    }

    state = order_state(raw, "OURID")

    assert state.client_order_id == "OURID"  # ours, not the cancel's own id
    assert state.symbol == "BTC-USDT"
    assert state.status is VenueOrderStatus.CANCELLED
    assert (state.quantity, state.filled) == (Decimal("0.3"), Decimal("0.1"))
    assert state.price == Decimal("50000.01")
    assert state.updated_at == 1_700_000_000.0


def test_order_state_when_status_is_unreadable_then_unknown_outcome() -> None:
    with pytest.raises(VenueOutcomeUnknown) as unknown:
        order_state({"status": "weird", "amount": "1", "symbol": "BTC/USDT"}, "X")

    assert unknown.value.code == UnknownReason.UNEXPECTED.value


def test_trade_when_binance_trade_then_fee_and_side_are_kept() -> None:
    raw = {
        "id": "9",
        "order": "42",
        "symbol": "ETH/USDT",
        "side": "sell",
        "amount": "1.5",
        "price": "3000.10",
        "fee": {"cost": "4.5", "currency": "USDT"},
        "timestamp": 1_700_000_000_500,
    }

    parsed = trade(raw)

    assert (parsed.trade_id, parsed.venue_order_id, parsed.side) == ("9", "42", Side.SELL)
    assert (parsed.quantity, parsed.price, parsed.fee) == (
        Decimal("1.5"),
        Decimal("3000.10"),
        Decimal("4.5"),
    )
    assert parsed.executed_at == 1_700_000_000.5


def test_instrument_rules_when_market_has_precision_steps_then_tick_and_lot() -> None:
    market = {
        "symbol": "BTC/USDT",
        "active": True,
        "precision": {"price": "0.01", "amount": "0.00001"},
        "limits": {"amount": {"min": "0.00001"}, "cost": {"min": "5"}},
    }

    rules = instrument_rules(market)

    assert rules.symbol == "BTC-USDT"
    assert (rules.tick_size, rules.lot_size) == (Decimal("0.01"), Decimal("0.00001"))
    assert rules.min_notional == Decimal(5)
    assert rules.trading


async def test_amend_when_binance_spot_then_refused_as_unsupported() -> None:
    exchange = build_exchange(CcxtSettings("binance", "key", "secret"))
    venue = CcxtVenue(exchange)
    try:
        with pytest.raises(VenueRefused) as refused:
            await venue.amend(AmendRequest("X", "BTC-USDT", price=Decimal(1)))
    finally:
        await venue.close()

    assert venue.amend_support is AmendSupport.UNSUPPORTED
    assert refused.value.code == RefusalReason.AMEND_UNSUPPORTED.value
