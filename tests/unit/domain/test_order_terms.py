"""The stop's side rule every door shares (``oms.domain.order_terms.stop_on_wrong_side``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.enums import OrderType, Side
from oms.domain.order_terms import resting_type, stop_on_wrong_side

LAST = Decimal("100.00")


@pytest.mark.parametrize(
    ("side", "stop", "wrong"),
    [
        (Side.BUY, "100.01", False),  # above the market: waits for a rise
        (Side.BUY, "100.00", True),  # at the last price: would trigger at once
        (Side.BUY, "99.99", True),
        (Side.SELL, "99.99", False),  # below the market: waits for a fall
        (Side.SELL, "100.00", True),
        (Side.SELL, "100.01", True),
    ],
)
def test_stop_side_when_compared_with_the_last_price_then_wrong_at_or_behind_it(
    side: Side, stop: str, wrong: bool
) -> None:
    assert stop_on_wrong_side(side, Decimal(stop), LAST) is wrong


def test_stop_side_when_no_last_price_then_never_wrong() -> None:
    assert stop_on_wrong_side(Side.BUY, Decimal("1"), None) is False
    assert stop_on_wrong_side(Side.SELL, Decimal("1000000"), None) is False


@pytest.mark.parametrize(
    ("order_type", "triggered_at", "expected"),
    [
        (OrderType.STOP_LIMIT, None, OrderType.STOP_LIMIT),
        (OrderType.STOP_MARKET, None, OrderType.STOP_MARKET),
        (OrderType.STOP_LIMIT, 10.0, OrderType.LIMIT),
        (OrderType.STOP_MARKET, 10.0, OrderType.MARKET),
        (OrderType.LIMIT, None, OrderType.LIMIT),
        (OrderType.MARKET, None, OrderType.MARKET),
    ],
)
def test_resting_type_when_triggered_or_not_then_the_type_it_stands_as(
    order_type: OrderType, triggered_at: float | None, expected: OrderType
) -> None:
    # Act / Assert: an untriggered stop stays a stop; a triggered one is what it became
    assert resting_type(order_type, triggered_at) is expected
