"""A book's ticks and resting LIMIT orders, for the simulated venue's resting-order tests."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.marketdata import BookLevel, Tick
from oms.venue import Matcher, Outcome, VenueOrder

FEE_RATE = Decimal("0.001")


EMPTY = Tick("BTC-USD", Decimal("100.00"), None, None, (), (), 0.0)


def tick(
    asks: list[tuple[str, str]] | None = None,
    bids: list[tuple[str, str]] | None = None,
    symbol: str = "BTC-USD",
) -> Tick:
    ask_levels = tuple(BookLevel(Decimal(p), Decimal(q)) for p, q in asks or [])
    bid_levels = tuple(BookLevel(Decimal(p), Decimal(q)) for p, q in bids or [])
    return Tick(
        symbol,
        Decimal("100.00"),
        bid_levels[0].price if bid_levels else None,
        ask_levels[0].price if ask_levels else None,
        bid_levels,
        ask_levels,
        1.0,
    )


def limit_order(
    order_id: str,
    price: str,
    quantity: str = "1",
    side: Side = Side.BUY,
    protection: str | None = None,
) -> VenueOrder:
    return VenueOrder(
        order_id,
        "acct-1",
        "BTC-USD",
        side,
        OrderType.LIMIT,
        TimeInForce.GTC,
        Decimal(quantity),
        Decimal(price),
        Decimal(protection or price),
    )


def rest_orders(matcher: Matcher, *orders: VenueOrder) -> None:
    for order in orders:
        assert matcher.on_arrival(order, EMPTY).outcome is Outcome.RESTING
