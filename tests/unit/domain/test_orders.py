"""The order as a fold of its events: fills, averages, sequence numbers, refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.enums import OrderStatus
from oms.domain.events import OrderAccepted, OrderFilled, OrderPlaced
from oms.domain.orders import Overfill, SequenceGap, WrongOrder, apply, fold
from tests.unit.domain.order_states import order_in, placed_event


def test_fill_when_two_partials_then_average_is_exact_and_fees_add_up() -> None:
    order = order_in(OrderStatus.ACCEPTED)

    order = apply(order, OrderFilled("o-1", 3, "f1", 3.0, Decimal("1"), Decimal("100"), Decimal(1)))
    order = apply(order, OrderFilled("o-1", 4, "f2", 4.0, Decimal("1"), Decimal("103"), Decimal(2)))

    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == Decimal("2")
    assert order.average_fill_price == Decimal("101.5")
    assert order.fees == Decimal("3")
    assert order.remaining_quantity == 0


def test_fill_when_more_than_remaining_then_overfill_and_nothing_changes() -> None:
    order = order_in(OrderStatus.PARTIALLY_FILLED)
    too_much = OrderFilled(
        "o-1", order.version + 1, "f9", 5.0, Decimal("2"), Decimal(1), Decimal(0)
    )

    with pytest.raises(Overfill) as refused:
        apply(order, too_much)

    assert refused.value.code == "OVERFILL"
    assert order == order_in(OrderStatus.PARTIALLY_FILLED)


@pytest.mark.parametrize("quantity", [Decimal(0), Decimal(-1)])
def test_fill_when_not_positive_then_refused(quantity: Decimal) -> None:
    order = order_in(OrderStatus.ACCEPTED)

    with pytest.raises(Overfill):
        apply(order, OrderFilled("o-1", 3, "f", 3.0, quantity, Decimal(1), Decimal(0)))


@pytest.mark.parametrize("sequence", [1, 2, 4])
def test_apply_when_sequence_is_not_next_then_refused(sequence: int) -> None:
    order = order_in(OrderStatus.ACCEPTED)  # version 2

    with pytest.raises(SequenceGap) as refused:
        apply(order, OrderAccepted("o-1", sequence, "c", 5.0, Decimal(1)))

    assert refused.value.code == "SEQUENCE_GAP"


def test_apply_when_first_event_is_not_placed_then_refused() -> None:
    with pytest.raises(WrongOrder):
        apply(None, OrderAccepted("o-1", 1, "c", 1.0, Decimal(1)))


def test_apply_when_event_of_other_order_then_refused() -> None:
    order = order_in(OrderStatus.NEW)

    with pytest.raises(WrongOrder):
        apply(order, OrderAccepted("o-2", 2, "c", 1.0, Decimal(1)))


def test_apply_when_placed_twice_then_refused() -> None:
    order = order_in(OrderStatus.NEW)
    again = OrderPlaced(**{**_as_dict(placed_event()), "sequence": 2})

    with pytest.raises(WrongOrder):
        apply(order, again)


def test_fold_when_empty_then_refused() -> None:
    with pytest.raises(WrongOrder):
        fold([])


def test_placed_when_applied_then_order_is_new_with_its_fields() -> None:
    order = apply(None, placed_event())

    assert order.status is OrderStatus.NEW
    assert order.version == 1
    assert order.filled_quantity == 0
    assert order.average_fill_price is None
    assert order.created_at == order.updated_at == 1.0


def _as_dict(event: OrderPlaced) -> dict[str, object]:
    return {name: getattr(event, name) for name in event.__slots__}
