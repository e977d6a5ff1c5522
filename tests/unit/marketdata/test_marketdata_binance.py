"""Binance spot frames read into values: Decimal amounts, strings only, other kinds ignored."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.marketdata.binance import (
    DepthUpdate,
    FeedFrameError,
    Trade,
    parse_event,
    parse_snapshot,
)

DEPTH = {
    "e": "depthUpdate", "E": 1733400000123, "s": "BTCUSDT", "U": 157, "u": 160,
    "b": [["60000.10000000", "0.50000000"]], "a": [["60000.20000000", "0.00000000"]],
}  # fmt: skip
TRADE = {
    "e": "trade", "E": 1733400000200, "s": "BTCUSDT", "t": 12345, "p": "60000.15000000",
    "q": "0.01000000", "T": 1733400000199, "m": True, "M": True,
}  # fmt: skip


def test_parse_event_when_combined_depth_update_then_decimal_levels_and_ids() -> None:
    event = parse_event({"stream": "btcusdt@depth@100ms", "data": DEPTH})

    assert event == DepthUpdate(
        "BTCUSDT", 157, 160, ((Decimal("60000.1"), Decimal("0.5")),),
        ((Decimal("60000.2"), Decimal(0)),),
    )  # fmt: skip
    assert isinstance(event.bids[0][0], Decimal)


def test_parse_event_when_raw_trade_then_trade_with_exact_digits() -> None:
    event = parse_event(TRADE)

    assert event == Trade("BTCUSDT", 12345, Decimal("60000.15000000"), Decimal("0.01"))
    assert isinstance(event, Trade)
    assert str(event.price) == "60000.15000000"


def test_parse_event_when_other_kind_then_none() -> None:
    assert parse_event({"result": None, "id": 1}) is None
    assert parse_event({"stream": "btcusdt@ticker", "data": {"e": "24hrTicker"}}) is None


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        ({**TRADE, "p": 60000.15}, "decimal string"),
        ({**TRADE, "p": "sixty"}, "not a decimal"),
        ({**TRADE, "q": "0"}, "positive"),
        ({**TRADE, "s": ""}, "symbol"),
        ({**DEPTH, "U": True}, "'U'"),
        ({**DEPTH, "b": [["1"]]}, "[price, quantity]"),
        ({**DEPTH, "a": "none"}, "list"),
        ({**DEPTH, "b": [["-1", "1"]]}, "positive price"),
        ({**DEPTH, "b": [["NaN", "1"]]}, "finite"),
    ],
)
def test_parse_event_when_frame_malformed_then_feed_frame_error(
    frame: dict[str, object], fragment: str
) -> None:
    with pytest.raises(FeedFrameError, match=fragment) as raised:
        parse_event(frame)

    assert raised.value.code == "FEED_FRAME_INVALID"


def test_parse_snapshot_when_rest_depth_then_levels_and_last_id() -> None:
    snapshot = parse_snapshot(
        {"lastUpdateId": 150, "bids": [["60000.00", "1.5"]], "asks": [["60000.30", "2"]]}
    )

    assert snapshot.last_id == 150
    assert snapshot.bids == ((Decimal("60000.00"), Decimal("1.5")),)
    assert snapshot.asks == ((Decimal("60000.30"), Decimal(2)),)
