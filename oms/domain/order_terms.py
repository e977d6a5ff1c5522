"""The order's own terms beyond price and quantity: stops, expiry and post-only, checked once.

One stateless check that every door shares (REST's body, a Kafka record, the order process for
anything that reached it another way): which of ``price``, ``stop_price``, ``expire_at`` and
``post_only`` an order of a given type and time in force takes, and whether its expiry is still
ahead. Each problem names its field and its reason code (a member of ``OrderCheckReason``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.reasons import OrderCheckReason

PRICED = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
"""The types that take a ``price`` (and need one)."""
STOPS = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})
"""The types that rest untriggered until the last price crosses their ``stop_price``."""


def resting_type(order_type: OrderType, triggered_at: float | None) -> OrderType:
    """The type an order stands as now: an untriggered stop as itself (so ``in STOPS`` says it
    rests among the stops), a triggered one as what it became (STOP_LIMIT -> LIMIT,
    STOP_MARKET -> MARKET), any other as its type."""
    if triggered_at is None:
        return order_type
    if order_type is OrderType.STOP_LIMIT:
        return OrderType.LIMIT
    if order_type is OrderType.STOP_MARKET:
        return OrderType.MARKET
    return order_type


class TermProblem(NamedTuple):
    """One wrong term: the field, its reason code and what is wrong."""

    field: str
    reason: OrderCheckReason
    message: str


def term_problems(
    order_type: OrderType,
    time_in_force: TimeInForce,
    *,
    price: Decimal | None,
    stop_price: Decimal | None,
    expire_at: float | None,
    post_only: bool,
    now: float,
) -> list[TermProblem]:
    """Every problem with these terms (empty: they fit together)."""
    problems: list[TermProblem] = []
    if order_type in PRICED and price is None:
        problems.append(
            TermProblem("price", OrderCheckReason.PRICE_REQUIRED, f"a {order_type} order needs one")
        )
    if order_type not in PRICED and price is not None:
        problems.append(
            TermProblem("price", OrderCheckReason.PRICE_NOT_ALLOWED, f"a {order_type} has none")
        )
    if order_type in STOPS and stop_price is None:
        problems.append(
            TermProblem("stop_price", OrderCheckReason.STOP_PRICE_REQUIRED, "a stop needs one")
        )
    if order_type not in STOPS and stop_price is not None:
        problems.append(
            TermProblem(
                "stop_price", OrderCheckReason.STOP_PRICE_NOT_ALLOWED, "only a stop order has one"
            )
        )
    if time_in_force is TimeInForce.GTD:
        if expire_at is None:
            problems.append(
                TermProblem(
                    "expire_at", OrderCheckReason.EXPIRE_AT_REQUIRED, "a GTD order needs one"
                )
            )
        elif expire_at <= now:
            problems.append(
                TermProblem(
                    "expire_at", OrderCheckReason.EXPIRE_AT_IN_PAST, "must be in the future"
                )
            )
    elif expire_at is not None:
        problems.append(
            TermProblem(
                "expire_at", OrderCheckReason.EXPIRE_AT_NOT_ALLOWED, "only a GTD order has one"
            )
        )
    # A MARKET order's GTC is refused at the doors; the engine has always let it run as IOC.
    if (time_in_force is TimeInForce.GTD and order_type is OrderType.MARKET) or (
        time_in_force in (TimeInForce.GTC, TimeInForce.GTD) and order_type is OrderType.STOP_MARKET
    ):
        problems.append(
            TermProblem(
                "time_in_force",
                OrderCheckReason.INVALID_TIME_IN_FORCE,
                f"a {order_type} order does not rest once it works: use IOC or FOK",
            )
        )
    if post_only and (order_type is not OrderType.LIMIT or time_in_force in _TAKERS):
        problems.append(
            TermProblem(
                "post_only",
                OrderCheckReason.POST_ONLY_NOT_ALLOWED,
                "only a resting LIMIT order (GTC or GTD) may be post-only",
            )
        )
    return problems


_TAKERS = (TimeInForce.IOC, TimeInForce.FOK)


def stop_on_wrong_side(side: Side, stop_price: Decimal, last_price: Decimal | None) -> bool:
    """Whether a stop's trigger is already behind the market: a BUY stop at or below the last
    price, a SELL stop at or above it (None: no last price yet, so no side to be wrong about).

    Such a stop would trigger on the next tick, which is never what its sender meant (a buy
    stop guards against a rise from here). The REST door refuses it with 422 when it knows a
    last price, the venue rejects one that arrives wrong-side anyway (a Kafka command, or the
    market moved on the way): both with ``STOP_PRICE_WRONG_SIDE``, through this one rule.

    A STOP_LIMIT's limit price has no side rule: Binance, CME and Interactive Brokers all take
    a buy stop-limit whose limit is below its stop (it rests, triggered, below the market, as
    its sender may mean to), so refusing one would refuse a legal order.
    """
    if last_price is None:
        return False
    return stop_price <= last_price if side is Side.BUY else stop_price >= last_price
