"""Positions: average price on increases, realized PnL on reductions, unrealized at the mark."""

from __future__ import annotations

from decimal import Decimal

from oms.risk.positions import PositionState

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
