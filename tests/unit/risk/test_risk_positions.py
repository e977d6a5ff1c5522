"""Positions: average price on increases, realized PnL on reductions, unrealized at the mark."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from oms.api.orders import as_new
from oms.domain.enums import Side
from oms.domain.orders import Order
from oms.risk.positions import PositionState, growing_orders
from tests.unit.engine_helpers import place

D = Decimal


def test_apply_fill_when_adding_to_a_long_then_average_price_is_quantity_weighted() -> None:
    # Arrange
    position = PositionState("BTC-USD")
    position.apply_fill(is_buy=True, quantity=D("1"), price=D("100"), fee=D("0"))

    # Act
    realized = position.apply_fill(is_buy=True, quantity=D("3"), price=D("200"), fee=D("1"))

    # Assert
    assert (position.quantity, position.average_price) == (D("4"), D("175"))
    assert realized == D("-1")  # only the fee


def test_apply_fill_when_reducing_a_long_then_realizes_price_difference_less_fee() -> None:
    # Arrange
    position = PositionState("BTC-USD")
    position.apply_fill(is_buy=True, quantity=D("2"), price=D("100"), fee=D("0"))

    # Act
    realized = position.apply_fill(is_buy=False, quantity=D("0.5"), price=D("120"), fee=D("1"))

    # Assert
    assert realized == D("9")
    assert (position.quantity, position.average_price) == (D("1.5"), D("100"))
    assert position.realized_pnl == D("9")


def test_apply_fill_when_covering_a_short_below_its_price_then_realizes_a_gain() -> None:
    # Arrange: selling opening holdings makes a short against the sell price
    position = PositionState("BTC-USD")
    position.apply_fill(is_buy=False, quantity=D("1"), price=D("100"), fee=D("0"))

    # Act
    realized = position.apply_fill(is_buy=True, quantity=D("1"), price=D("90"), fee=D("0"))

    # Assert
    assert realized == D("10")
    assert (position.quantity, position.average_price) == (D("0"), D("0"))


def test_apply_fill_when_it_crosses_zero_then_the_rest_opens_at_the_fill_price() -> None:
    # Arrange
    position = PositionState("BTC-USD")
    position.apply_fill(is_buy=True, quantity=D("1"), price=D("100"), fee=D("0"))

    # Act
    realized = position.apply_fill(is_buy=False, quantity=D("3"), price=D("110"), fee=D("0"))

    # Assert
    assert realized == D("10")
    assert (position.quantity, position.average_price) == (D("-2"), D("110"))


def test_unrealized_pnl_when_marked_then_is_quantity_times_mark_less_average() -> None:
    # Arrange
    position = PositionState("BTC-USD")
    position.apply_fill(is_buy=True, quantity=D("2"), price=D("100"), fee=D("0"))

    # Act
    marked, unmarked = position.unrealized_pnl(D("95")), position.unrealized_pnl(None)

    # Assert
    assert (marked, unmarked) == (D("-10"), D("0"))


def test_reduces_when_open_sells_and_order_fit_inside_the_long_then_true_else_false() -> None:
    # Arrange
    position = PositionState("BTC-USD")
    position.apply_fill(is_buy=True, quantity=D("1"), price=D("100"), fee=D("0"))
    position.open_sell = D("0.6")

    # Act
    fits = position.reduces(is_buy=False, quantity=D("0.4"))
    too_big = position.reduces(is_buy=False, quantity=D("0.5"))
    adds = position.reduces(is_buy=True, quantity=D("0.1"))

    # Assert
    assert (fits, too_big, adds) == (True, False, False)


def _open(side: Side, quantity: str, *, filled: str = "0", created_at: float = 1.0) -> Order:
    order = as_new(replace(place(side=side, quantity=quantity), created_at=created_at))
    return order._replace(filled_quantity=D(filled))


def test_growing_orders_when_short_then_buys_that_fit_are_kept_and_sells_grow() -> None:
    # Arrange: short 1; a BUY of 0.6 fits, a second BUY of 0.6 would cross zero.
    first = _open(Side.BUY, "0.6", created_at=1.0)
    second = _open(Side.BUY, "0.6", created_at=2.0)
    sell = _open(Side.SELL, "0.1", created_at=3.0)

    # Act
    growing = growing_orders({"BTC-USD": D("-1")}, [sell, second, first])

    # Assert
    assert growing == [second, sell]


def test_growing_orders_when_partly_filled_then_only_what_is_left_is_judged() -> None:
    # Arrange: long 1; a SELL of 1.5 with 0.5 filled has 1 left, which fits.
    order = _open(Side.SELL, "1.5", filled="0.5")

    # Act / Assert
    assert growing_orders({"BTC-USD": D("1")}, [order]) == []
    assert growing_orders({}, [order]) == [order]  # no position: everything grows
