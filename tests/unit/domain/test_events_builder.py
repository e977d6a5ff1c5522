"""Positional builders make the same frozen events (and commands) as the dataclass constructors,
faster."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

import pytest

from oms.domain.commands import ApplyFill, PlaceOrder, new_place_order
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import (
    CancelReason,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
    new_order_accepted,
    new_order_cancelled,
    new_order_filled,
    new_order_placed,
    new_order_rejected,
    new_order_settled,
    positional_builder,
)

_ONE = Decimal("1.5")
CASES = [
    (
        new_order_placed,
        OrderPlaced,
        (
            "o-1",
            1,
            "c-1",
            1.0,
            "cl-1",
            "a-1",
            "BTC-USD",
            Side.BUY,
            OrderType.LIMIT,
            _ONE,
            _ONE,
            TimeInForce.GTD,
            "req-1",
            True,
            _ONE,
            9.0,
        ),
    ),
    (new_order_accepted, OrderAccepted, ("o-1", 2, "place:o-1", 2.0, _ONE, "req-1")),
    (new_order_rejected, OrderRejected, ("o-1", 2, "place:o-1", 2.0, "CODE", "detail", "req-1")),
    (new_order_filled, OrderFilled, ("o-1", 3, "o-1:1", 3.0, _ONE, _ONE, Decimal(0), None)),
    (new_order_cancelled, OrderCancelled, ("o-1", 3, "c-2", 3.0, CancelReason.REQUESTED, "r-2")),
    (new_order_settled, OrderSettled, ("o-1", 4, "settle:o-1", 4.0, None)),
    (positional_builder(ApplyFill), ApplyFill, ("o-1:1", "o-1", "a-1", _ONE, _ONE, _ONE, 3.0)),
    (
        new_place_order,
        PlaceOrder,
        (
            "place:o-1",
            "o-1",
            "cl-1",
            "a-1",
            "BTC-USD",
            Side.SELL,
            OrderType.STOP_LIMIT,
            _ONE,
            _ONE,
            TimeInForce.GTD,
            1.0,
            "req-1",
            False,
            _ONE,
            9.0,
        ),
    ),
]


@pytest.mark.parametrize(("build", "cls", "values"), CASES)
def test_builder_when_given_fields_then_equals_the_dataclass_construction(
    build: object,
    cls: type,
    values: tuple[object, ...],
) -> None:
    built = build(*values)  # type: ignore[operator]
    constructed = cls(*values)

    assert type(built) is cls
    assert built == constructed
    assert hash(built) == hash(constructed)
    assert repr(built) == repr(constructed)
    assert dataclasses.astuple(built) == values


@pytest.mark.parametrize(("build", "cls", "values"), CASES)
def test_built_event_when_written_then_frozen_like_any_other(
    build: object,
    cls: type,
    values: tuple[object, ...],
) -> None:
    built = build(*values)  # type: ignore[operator]
    name = dataclasses.fields(cls)[0].name

    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, name, "other")


def test_builder_when_a_defaulted_field_is_left_out_then_it_takes_its_default() -> None:
    built = new_order_settled("o-1", 4, "settle:o-1", 4.0)

    assert built == OrderSettled("o-1", 4, "settle:o-1", 4.0)
    assert built.request_id is None


def test_place_order_builder_when_called_by_keyword_then_equals_the_dataclass() -> None:
    fields = {
        "command_id": "place:o-1",
        "order_id": "o-1",
        "client_order_id": "o-1",
        "account_id": "a-1",
        "symbol": "BTC-USD",
        "side": Side.BUY,
        "type": OrderType.MARKET,
        "quantity": _ONE,
        "price": None,
        "time_in_force": TimeInForce.IOC,
        "created_at": 1.0,
    }

    assert new_place_order(**fields) == PlaceOrder(**fields)  # type: ignore[arg-type]


def test_builder_when_class_has_post_init_then_refused() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        amount: int

        def __post_init__(self) -> None:
            if self.amount < 0:
                raise ValueError("negative")

    with pytest.raises(TypeError, match="__post_init__"):
        positional_builder(Checked)


def test_builder_when_class_has_no_slots_then_refused() -> None:
    @dataclass(frozen=True)
    class Loose:
        amount: int

    with pytest.raises(TypeError):
        positional_builder(Loose)
