"""An order in each status, walked along the transition table: for the table's tests and the
order fold's."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.events import (
    AmendRejected,
    CancelReason,
    DoubtedRequest,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderDoubtResolved,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderInDoubt,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
    OrderTriggered,
    VenueWord,
)
from oms.domain.orders import Order, apply
from oms.domain.reasons import OrderCheckReason, RejectReason
from oms.domain.transitions import Trigger

QTY = Decimal("2")


def placed_event() -> OrderPlaced:
    return OrderPlaced(
        "o-1",
        1,
        "c-1",
        1.0,
        "cl-1",
        "acc",
        "BTC-USD",
        Side.BUY,
        OrderType.STOP_LIMIT,  # a stop, so that TRIGGER has an order to trigger
        QTY,
        Decimal("100"),
        TimeInForce.GTC,
        stop_price=Decimal("101"),
    )


def event_for(order: Order, trigger: Trigger) -> OrderEvent:  # noqa: PLR0911 - one per trigger
    """The event that fires ``trigger`` on ``order`` (one sequence number after it)."""
    seq, at = order.version + 1, order.updated_at + 1
    if trigger is Trigger.ACCEPT:
        return OrderAccepted("o-1", seq, "c-1", at, Decimal("100"))
    if trigger is Trigger.REJECT:
        return OrderRejected("o-1", seq, "c-1", at, RejectReason.INSUFFICIENT_BUYING_POWER, "")
    if trigger is Trigger.CANCEL:
        return OrderCancelled("o-1", seq, f"x-{seq}", at, CancelReason.REQUESTED)
    if trigger is Trigger.SETTLE:
        return OrderSettled("o-1", seq, f"s-{seq}", at)
    if trigger is Trigger.TRIGGER:
        return OrderTriggered("o-1", seq, f"t-{seq}", at, Decimal("101"))
    if trigger is Trigger.EXPIRE:
        return OrderExpired("o-1", seq, f"e-{seq}", at)
    if trigger is Trigger.AMEND:
        return OrderAmended("o-1", seq, f"a-{seq}", at, QTY + 1, Decimal("99"), Decimal("99"))
    if trigger is Trigger.DOUBT:
        return OrderInDoubt("o-1", seq, f"d-{seq}", at, DoubtedRequest.PLACE, "VENUE_TIMEOUT")
    if trigger is Trigger.RESOLVE or trigger is Trigger.RESOLVE_PARTIAL:
        # One event: the fold picks RESOLVE or RESOLVE_PARTIAL by what has filled.
        filled = order.filled_quantity
        return OrderDoubtResolved("o-1", seq, f"r-{seq}", at, VenueWord.OPEN, filled)
    if trigger is Trigger.AMEND_REJECT:
        return AmendRejected(
            "o-1", seq, f"a-{seq}", at, OrderCheckReason.QUANTITY_BELOW_FILLED, "quantity=0.1"
        )
    remaining = order.remaining_quantity
    quantity = remaining if trigger is Trigger.FILL else Decimal("0.5")
    if quantity <= 0:
        quantity = Decimal("0.5")  # an order with nothing left: still a well-formed fill event
    return OrderFilled("o-1", seq, f"f-{seq}", at, quantity, Decimal("100"), Decimal("0.1"))


PATH_TO: dict[OrderStatus, tuple[Trigger, ...]] = {
    OrderStatus.NEW: (),
    OrderStatus.ACCEPTED: (Trigger.ACCEPT,),
    OrderStatus.PARTIALLY_FILLED: (Trigger.ACCEPT, Trigger.PARTIAL_FILL),
    OrderStatus.FILLED: (Trigger.ACCEPT, Trigger.FILL),
    OrderStatus.SETTLED: (Trigger.ACCEPT, Trigger.FILL, Trigger.SETTLE),
    OrderStatus.REJECTED: (Trigger.REJECT,),
    OrderStatus.CANCELLED: (Trigger.ACCEPT, Trigger.CANCEL),
    OrderStatus.EXPIRED: (Trigger.ACCEPT, Trigger.EXPIRE),
    OrderStatus.IN_DOUBT: (Trigger.ACCEPT, Trigger.DOUBT),
}


def order_in(status: OrderStatus) -> Order:
    """An order brought to ``status`` along the table."""
    order = apply(None, placed_event())
    for trigger in PATH_TO[status]:
        order = apply(order, event_for(order, trigger))
    assert order.status is status
    return order
