"""Order histories for the store tests: real events folded by the domain, no engine needed."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import (
    AmendRejected,
    CancelReason,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
)
from oms.domain.orders import Order, fold
from oms.domain.reasons import OrderCheckReason, RejectReason


def placed(order_id: str, account_id: str = "acct-1", at: float = 1_767_225_600.25) -> OrderPlaced:
    """The first event of a LIMIT BUY of 0.50 BTC at 30000.10."""
    return OrderPlaced(
        order_id,
        1,
        f"place:{order_id}",
        at,
        client_order_id=f"c-{order_id}",
        account_id=account_id,
        symbol="BTC-USD",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.50"),
        price=Decimal("30000.10"),
        time_in_force=TimeInForce.GTC,
    )


def settled_history(
    order_id: str, account_id: str = "acct-1", at: float = 1_767_225_600.25
) -> list[OrderEvent]:
    """Placed, accepted, two fills, settled."""
    return [
        placed(order_id, account_id, at),
        OrderAccepted(order_id, 2, f"place:{order_id}", at + 0.001, Decimal("33000.1")),
        OrderFilled(
            order_id,
            3,
            f"x-{order_id}-1",
            at + 0.002,
            Decimal("0.20"),
            Decimal("30000.10"),
            Decimal("6.00002"),
        ),
        OrderFilled(
            order_id,
            4,
            f"x-{order_id}-2",
            at + 0.003,
            Decimal("0.30"),
            Decimal("29999.9"),
            Decimal("0"),
        ),
        OrderSettled(order_id, 5, f"settle:{order_id}", at + 0.004),
    ]


def open_history(
    order_id: str, account_id: str = "acct-1", at: float = 1_767_225_600.25
) -> list[OrderEvent]:
    """Placed and accepted: resting."""
    return settled_history(order_id, account_id, at)[:2]


def rejected_history(order_id: str) -> list[OrderEvent]:
    """Placed, rejected with a reason code."""
    return [
        placed(order_id),
        OrderRejected(
            order_id,
            2,
            f"place:{order_id}",
            1.0e9,
            RejectReason.INSUFFICIENT_BUYING_POWER,
            "need=1 have=0",
        ),
    ]


def cancelled_history(order_id: str) -> list[OrderEvent]:
    """Placed, accepted, cancelled on request."""
    return [
        *open_history(order_id),
        OrderCancelled(order_id, 3, f"cancel:{order_id}", 1.0e9, CancelReason.REQUESTED),
    ]


def amended_history(order_id: str) -> list[OrderEvent]:
    """Placed, accepted, an amend refused, then one made (more, at a lower price)."""
    return [
        *open_history(order_id),
        AmendRejected(
            order_id, 3, f"amend:{order_id}-1", 1.0e9, OrderCheckReason.NOTHING_TO_AMEND,
            "price and quantity are unchanged", "req-1",
        ),
        OrderAmended(
            order_id, 4, f"amend:{order_id}-2", 1.0e9 + 1, Decimal("0.80"), Decimal("29990.00"),
            Decimal("29990.00"),
        ),
    ]  # fmt: skip


def states(history: list[OrderEvent]) -> list[Order]:
    """The order after each event."""
    return [fold(history[: i + 1]) for i in range(len(history))]
