"""One market-data update: last trade, best bid and ask and an L2 snapshot of one symbol.

A ``Tick`` is both the value the order books hold and the message on the ``prices`` topic, so it
is immutable (pykka hands the same object across threads) and refuses to exist in a shape no real
book has: a crossed book, unsorted levels, non-positive amounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from oms.domain.errors import DomainError


class InvalidTick(DomainError):
    """A market-data update that no book can hold (crossed, unsorted, malformed)."""

    code = "INVALID_TICK"


@dataclass(frozen=True, slots=True)
class BookLevel:
    """One price level of a book: the price and the quantity displayed at it."""

    price: Decimal
    quantity: Decimal

    def to_dict(self) -> dict[str, str]:
        """The level as JSON-ready decimal strings."""
        return {"price": str(self.price), "quantity": str(self.quantity)}


@dataclass(frozen=True, slots=True)
class Tick:
    """Last trade, top of book and L2 levels of one symbol at ``ts`` (epoch seconds).

    ``bids`` run from the best (highest) price down, ``asks`` from the best (lowest) up. When a
    side has levels, its best price is the first level's; a side may be empty (no liquidity), and
    ``best_bid``/``best_ask`` are then whatever the source said, possibly ``None``.
    """

    symbol: str
    last_price: Decimal
    best_bid: Decimal | None
    best_ask: Decimal | None
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    ts: float

    def __post_init__(self) -> None:
        """Refuse a tick whose numbers contradict each other."""
        if not self.symbol:
            raise InvalidTick("a tick needs a symbol", code="TICK_WITHOUT_SYMBOL")
        _require_positive("last_price", self.last_price)
        _check_side("bids", self.bids, self.best_bid, descending=True)
        _check_side("asks", self.asks, self.best_ask, descending=False)
        if (
            self.best_bid is not None
            and self.best_ask is not None
            and (self.best_bid >= self.best_ask)
        ):
            raise InvalidTick(
                f"crossed book: best_bid={self.best_bid} >= best_ask={self.best_ask}",
                code="CROSSED_BOOK",
            )

    def to_dict(self) -> dict[str, Any]:
        """The tick as JSON-ready data: every amount a decimal string, ``ts`` a number."""
        return {
            "symbol": self.symbol,
            "last_price": str(self.last_price),
            "best_bid": None if self.best_bid is None else str(self.best_bid),
            "best_ask": None if self.best_ask is None else str(self.best_ask),
            "bids": [level.to_dict() for level in self.bids],
            "asks": [level.to_dict() for level in self.asks],
            "ts": self.ts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tick:
        """Read a tick written by ``to_dict``; amounts must be decimal strings, never numbers."""
        try:
            symbol = data["symbol"]
            ts = data["ts"]
            bids = data.get("bids", ())
            asks = data.get("asks", ())
            last_price = _decimal("last_price", data["last_price"])
            best_bid = _optional_decimal("best_bid", data.get("best_bid"))
            best_ask = _optional_decimal("best_ask", data.get("best_ask"))
        except KeyError as exc:
            missing = exc.args[0]
            raise InvalidTick(f"tick lacks field {missing!r}", code="TICK_FIELD_MISSING") from None
        if not isinstance(symbol, str):
            raise InvalidTick("symbol must be a string", code="TICK_FIELD_INVALID")
        # bool is an int: refuse it explicitly so `true` never becomes a timestamp.
        if isinstance(ts, bool) or not isinstance(ts, int | float):
            raise InvalidTick("ts must be a number of epoch seconds", code="TICK_FIELD_INVALID")
        return cls(
            symbol=symbol,
            last_price=last_price,
            best_bid=best_bid,
            best_ask=best_ask,
            bids=_levels("bids", bids),
            asks=_levels("asks", asks),
            ts=float(ts),
        )


def _require_positive(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise InvalidTick(f"{name} must be a positive decimal, got {value!r}", code="TICK_AMOUNT")


def _check_side(
    name: str, levels: tuple[BookLevel, ...], best: Decimal | None, *, descending: bool
) -> None:
    if best is not None:
        _require_positive(f"best of {name}", best)
    previous: Decimal | None = None
    for level in levels:
        _require_positive(f"{name} price", level.price)
        _require_positive(f"{name} quantity", level.quantity)
        if previous is not None and (
            level.price >= previous if descending else level.price <= previous
        ):
            raise InvalidTick(
                f"{name} must be strictly {'descending' if descending else 'ascending'} in price",
                code="UNSORTED_LEVELS",
            )
        previous = level.price
    if levels and best != levels[0].price:
        raise InvalidTick(
            f"best of {name} {best} is not its first level's price {levels[0].price}",
            code="BEST_PRICE_MISMATCH",
        )


def _decimal(name: str, raw: object) -> Decimal:
    # A JSON number has already been through a float: refuse it rather than guess its digits.
    if not isinstance(raw, str):
        raise InvalidTick(f"{name} must be a decimal string, got {raw!r}", code="TICK_AMOUNT")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InvalidTick(f"{name} is not a decimal: {raw!r}", code="TICK_AMOUNT") from None
    _require_positive(name, value)
    return value


def _optional_decimal(name: str, raw: object) -> Decimal | None:
    return None if raw is None else _decimal(name, raw)


def _levels(name: str, raw: object) -> tuple[BookLevel, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise InvalidTick(f"{name} must be a list of levels", code="TICK_FIELD_INVALID")
    levels = []
    for item in raw:
        if not isinstance(item, Mapping) or "price" not in item or "quantity" not in item:
            raise InvalidTick(
                f"each of {name} needs a price and a quantity", code="TICK_FIELD_INVALID"
            )
        levels.append(
            BookLevel(
                _decimal(f"{name} price", item["price"]),
                _decimal(f"{name} quantity", item["quantity"]),
            )
        )
    return tuple(levels)
