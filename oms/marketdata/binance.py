"""Binance spot's public market-data frames, read into values with ``Decimal`` amounts.

Three shapes, as Binance documents them (and as ``tests/fixtures/binance`` records them):

- a diff-depth event (``<symbol>@depth@100ms``): ``{"e": "depthUpdate", "E": 1700000000123,
  "s": "BTCUSDT", "U": 157, "u": 160, "b": [["60000.10", "0.5"]], "a": [["60000.20", "0"]]}``;
  ``U``..``u`` are the update ids it covers, a quantity of ``"0"`` removes the level;
- a trade (``<symbol>@trade``): ``{"e": "trade", "E": ..., "s": "BTCUSDT", "t": 12345,
  "p": "60000.10", "q": "0.01", "T": ..., "m": true}``;
- the REST depth snapshot (``GET /api/v3/depth``): ``{"lastUpdateId": 1027024, "bids": [...],
  "asks": [...]}``.

A combined stream wraps each event as ``{"stream": "...", "data": {...}}``. Every amount is a
JSON string on the wire and stays a string until ``Decimal`` reads it: a number is refused, as
it has been through a float. A frame of another kind (a subscription answer, a 24 h ticker) is
``None``, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from oms.domain.errors import DomainError

Level = tuple[Decimal, Decimal]
"""One price level: price and quantity (0: the level is gone)."""


class FeedFrameError(DomainError):
    """A frame from the exchange that does not read as the kind it says it is."""

    code = "FEED_FRAME_INVALID"


@dataclass(frozen=True, slots=True)
class DepthUpdate:
    """A diff-depth event: the levels that changed between update ids ``first_id`` and ``last_id``."""

    exchange_symbol: str
    first_id: int
    last_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class Trade:
    """One public trade: ``quantity`` at ``price``."""

    exchange_symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """The book as of update id ``last_id`` (from REST)."""

    last_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


def parse_event(frame: Mapping[str, Any]) -> DepthUpdate | Trade | None:
    """A stream frame (combined or raw) as an event; None for a frame of another kind."""
    data = frame.get("data", frame) if "stream" in frame else frame
    if not isinstance(data, Mapping):
        raise FeedFrameError("a combined-stream frame's data must be an object")
    kind = data.get("e")
    if kind == "depthUpdate":
        return DepthUpdate(
            _symbol(data),
            _update_id(data, "U"),
            _update_id(data, "u"),
            _levels(data, "b"),
            _levels(data, "a"),
        )
    if kind == "trade":
        price = _amount(data.get("p"), "p")
        quantity = _amount(data.get("q"), "q")
        if price <= 0 or quantity <= 0:
            raise FeedFrameError(f"a trade needs a positive price and quantity: {price} {quantity}")
        return Trade(_symbol(data), _update_id(data, "t"), price, quantity)
    return None


def parse_snapshot(body: object) -> DepthSnapshot:
    """``GET /api/v3/depth``'s answer."""
    if not isinstance(body, Mapping):
        raise FeedFrameError("the depth snapshot must be an object")
    return DepthSnapshot(
        _update_id(body, "lastUpdateId"), _levels(body, "bids"), _levels(body, "asks")
    )


def _symbol(data: Mapping[str, Any]) -> str:
    symbol = data.get("s")
    if not isinstance(symbol, str) or not symbol:
        raise FeedFrameError("an event needs its symbol in 's'")
    return symbol


def _update_id(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    # bool is an int: refuse it so that `true` never becomes an update id.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FeedFrameError(f"{key!r} must be a non-negative integer, got {value!r}")
    return value


def _levels(data: Mapping[str, Any], key: str) -> tuple[Level, ...]:
    raw = data.get(key)
    if not isinstance(raw, list):
        raise FeedFrameError(f"{key!r} must be a list of [price, quantity]")
    levels = []
    for item in raw:
        if not isinstance(item, list) or len(item) < 2:
            raise FeedFrameError(f"each of {key!r} must be [price, quantity], got {item!r}")
        price = _amount(item[0], f"{key} price")
        quantity = _amount(item[1], f"{key} quantity")
        if price <= 0 or quantity < 0:
            raise FeedFrameError(f"a level of {key!r} must have a positive price: {item!r}")
        levels.append((price, quantity))
    return tuple(levels)


def _amount(raw: object, name: str) -> Decimal:
    if not isinstance(raw, str):
        raise FeedFrameError(f"{name} must be a decimal string, got {raw!r}")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise FeedFrameError(f"{name} is not a decimal: {raw!r}") from None
    if not value.is_finite():
        raise FeedFrameError(f"{name} is not a finite decimal: {raw!r}")
    return value
