"""Every legal move of the transition table is taken; every other one is refused, changing nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.enums import OrderStatus
from oms.domain.events import (
    OrderAmended,
    OrderEvent,
    OrderFilled,
)
from oms.domain.orders import Order, Overfill, WrongOrder, apply, fold
from oms.domain.transitions import ORDER_TRANSITIONS, InvalidTransition, Trigger
from tests.unit.domain.order_states import (
    QTY,
    event_for,
    order_in,
    placed_event,
)


def order_for(status: OrderStatus, trigger: Trigger) -> Order:
    """An order in ``status`` that ``trigger`` can apply to: RESOLVE_PARTIAL needs a fill."""
    if status is OrderStatus.IN_DOUBT and trigger is Trigger.RESOLVE_PARTIAL:
        order = order_in(OrderStatus.PARTIALLY_FILLED)
        return apply(order, event_for(order, Trigger.DOUBT))
    return order_in(status)


LEGAL = sorted(ORDER_TRANSITIONS.items())
ILLEGAL = sorted(
    (status, trigger)
    for status in OrderStatus
    for trigger in Trigger
    if (status, trigger) not in ORDER_TRANSITIONS
)


def test_table_when_read_then_holds_the_designs_ten_moves_and_those_of_issue_15() -> None:
    amends = {
        move for move in ORDER_TRANSITIONS if move[1] in {Trigger.AMEND, Trigger.AMEND_REJECT}
    }
    later = {
        (OrderStatus.ACCEPTED, Trigger.REJECT),  # post-only refused at the venue
        (OrderStatus.ACCEPTED, Trigger.TRIGGER),
        (OrderStatus.NEW, Trigger.EXPIRE),
        (OrderStatus.ACCEPTED, Trigger.EXPIRE),
        (OrderStatus.PARTIALLY_FILLED, Trigger.EXPIRE),
    }
    doubts = {  # issue 17: a request whose outcome is unknown
        (OrderStatus.ACCEPTED, Trigger.DOUBT),
        (OrderStatus.PARTIALLY_FILLED, Trigger.DOUBT),
        (OrderStatus.IN_DOUBT, Trigger.RESOLVE),
        (OrderStatus.IN_DOUBT, Trigger.RESOLVE_PARTIAL),
        (OrderStatus.IN_DOUBT, Trigger.REJECT),
        (OrderStatus.IN_DOUBT, Trigger.PARTIAL_FILL),
        (OrderStatus.IN_DOUBT, Trigger.FILL),
    }
    later |= doubts
    assert later <= set(ORDER_TRANSITIONS)
    assert len(ORDER_TRANSITIONS) - len(amends) - len(later) == 10
    assert all(ORDER_TRANSITIONS[move] is move[0] for move in amends)  # an amend keeps the status
    assert len(amends) == 7  # (IN_DOUBT, AMEND_REJECT) too
    assert {status for status, _ in ORDER_TRANSITIONS} == {
        OrderStatus.IN_DOUBT,
        OrderStatus.NEW,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    }


@pytest.mark.parametrize(("move", "target"), LEGAL, ids=[f"{s}-{t}" for (s, t), _ in LEGAL])
def test_apply_when_move_in_table_then_order_takes_it(
    move: tuple[OrderStatus, Trigger],
    target: OrderStatus,
) -> None:
    status, trigger = move
    order = order_for(status, trigger)
    event = event_for(order, trigger)

    after = apply(order, event)

    assert after.status is target
    assert after.version == order.version + 1
    assert after.updated_at == event.at


@pytest.mark.parametrize(("status", "trigger"), ILLEGAL, ids=[f"{s}-{t}" for s, t in ILLEGAL])
def test_apply_when_move_not_in_table_then_refused_and_nothing_changes(
    status: OrderStatus,
    trigger: Trigger,
) -> None:
    order = order_in(status)
    event = event_for(order, trigger)

    with pytest.raises(InvalidTransition) as refused:
        apply(order, event)

    # Any fill on an order with nothing left would complete (or pass) it: its trigger is FILL.
    expected = (
        Trigger.FILL
        if trigger is Trigger.PARTIAL_FILL and order.remaining_quantity == 0
        else trigger
    )
    # Likewise a resolution's trigger is decided by what has filled.
    if trigger is Trigger.RESOLVE or trigger is Trigger.RESOLVE_PARTIAL:
        filled = order.filled_quantity
        expected = Trigger.RESOLVE_PARTIAL if filled else Trigger.RESOLVE
    assert str(refused.value) == f"{status.value} -> {expected.value}"
    assert refused.value.code == "INVALID_TRANSITION"
    assert order == order_in(status)


def test_apply_when_fill_after_cancel_then_refused() -> None:
    order = order_in(OrderStatus.CANCELLED)
    late = OrderFilled("o-1", order.version + 1, "late", 9.0, QTY, Decimal("100"), Decimal(0))

    with pytest.raises(InvalidTransition, match="CANCELLED -> FILL"):
        apply(order, late)


def test_fold_when_history_replayed_then_same_order() -> None:
    order = apply(None, placed_event())
    history: list[OrderEvent] = [placed_event()]
    for trigger in (Trigger.ACCEPT, Trigger.PARTIAL_FILL, Trigger.FILL, Trigger.SETTLE):
        event = event_for(order, trigger)
        history.append(event)
        order = apply(order, event)

    assert fold(history) == order
    assert order.status is OrderStatus.SETTLED


def test_amend_when_applied_then_quantity_price_and_protection_change_and_status_stays() -> None:
    order = order_in(OrderStatus.PARTIALLY_FILLED)

    after = apply(order, event_for(order, Trigger.AMEND))

    assert after.status is OrderStatus.PARTIALLY_FILLED
    assert (after.quantity, after.price, after.protection_price) == (
        QTY + 1, Decimal("99"), Decimal("99")
    )  # fmt: skip
    assert after.filled_quantity == order.filled_quantity


def test_amend_when_quantity_not_above_filled_then_refused_and_nothing_changes() -> None:
    order = order_in(OrderStatus.PARTIALLY_FILLED)  # 0.5 filled
    seq, at = order.version + 1, order.updated_at + 1
    event = OrderAmended("o-1", seq, "a-1", at, Decimal("0.5"), Decimal("99"), Decimal("99"))

    with pytest.raises(Overfill) as refused:
        apply(order, event)

    assert refused.value.code == "OVERFILL"


def test_amend_rejected_when_applied_then_only_version_moves() -> None:
    order = order_in(OrderStatus.ACCEPTED)

    after = apply(order, event_for(order, Trigger.AMEND_REJECT))

    assert after._replace(version=order.version, updated_at=order.updated_at) == order


def test_trigger_when_applied_then_triggered_at_set_and_a_second_trigger_refused() -> None:
    order = order_in(OrderStatus.ACCEPTED)

    triggered = apply(order, event_for(order, Trigger.TRIGGER))

    assert triggered.triggered_at == triggered.updated_at
    with pytest.raises(WrongOrder):
        apply(triggered, event_for(triggered, Trigger.TRIGGER))
