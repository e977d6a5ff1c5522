"""Resting orders: ticks that cross them fill them at their price until they drain; cancels."""

from decimal import Decimal

import pytest

from oms.domain.enums import Side, TimeInForce
from oms.domain.instruments import DEFAULT_INSTRUMENTS
from oms.marketdata import SimulatedFeed
from oms.venue import Matcher, Outcome, VenueError, VenueOrder
from tests.unit.venue.resting_orders import (
    EMPTY,
    FEE_RATE,
    limit_order,
    rest_orders,
    tick,
)


def test_tick_when_its_asks_stay_above_a_resting_buy_then_fills_nothing() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("b-1", "99.00"))

    # Act
    executions = matcher.on_tick(tick(asks=[("99.01", "10")], bids=[("98.00", "10")]))

    # Assert
    assert executions == []
    assert matcher.remaining("b-1") == 1


def test_tick_when_it_crosses_a_resting_buy_then_fills_it_at_its_own_price() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("b-1", "99.00", quantity="2"))

    # Act
    executions = matcher.on_tick(tick(asks=[("98.00", "5")]))

    # Assert
    assert [(e.execution_id, e.quantity, e.price) for e in executions] == [
        ("b-1:1", Decimal(2), Decimal("99.00"))
    ]
    assert executions[0].fee == Decimal("0.19")  # 2 x 99.00 x 0.001 = 0.198, rounded down
    assert matcher.resting_count() == 0


def test_tick_when_it_crosses_a_resting_sell_then_fills_it_from_bids_at_or_above_its_price() -> (
    None
):
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("s-1", "101.00", quantity="3", side=Side.SELL))

    # Act
    executions = matcher.on_tick(tick(bids=[("101.50", "1"), ("101.00", "1"), ("100.99", "9")]))

    # Assert
    assert [(e.quantity, e.price) for e in executions] == [(Decimal(2), Decimal("101.00"))]
    assert matcher.remaining("s-1") == 1


def test_tick_when_levels_cross_a_resting_order_then_it_takes_each_but_none_beyond_its_price() -> (
    None
):
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("b-1", "99.00", quantity="10"))

    # Act
    executions = matcher.on_tick(tick(asks=[("98.00", "1"), ("99.00", "2"), ("99.01", "50")]))

    # Assert
    assert [e.quantity for e in executions] == [Decimal(3)]
    assert matcher.remaining("b-1") == 7


def test_tick_when_several_buys_rest_then_serves_best_price_first_then_oldest_first() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(
        matcher,
        limit_order("low", "97.00"),
        limit_order("old", "98.00"),
        limit_order("high", "99.00"),
        limit_order("young", "98.00"),
    )

    # Act: three lots of liquidity at 96.00 cross all of them
    executions = matcher.on_tick(tick(asks=[("96.00", "3")]))

    # Assert
    assert [e.order_id for e in executions] == ["high", "old", "young"]
    assert matcher.remaining("low") == 1


def test_tick_when_several_sells_rest_then_serves_lowest_price_first() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(
        matcher,
        limit_order("s-103", "103.00", side=Side.SELL),
        limit_order("s-101", "101.00", side=Side.SELL),
        limit_order("s-102", "102.00", side=Side.SELL),
    )

    # Act
    executions = matcher.on_tick(tick(bids=[("104.00", "2")]))

    # Assert
    assert [e.order_id for e in executions] == ["s-101", "s-102"]


def test_tick_when_several_orders_rest_then_shares_its_liquidity_once_among_them() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(
        matcher, limit_order("a", "99.00", quantity="2"), limit_order("b", "99.00", quantity="2")
    )

    # Act
    executions = matcher.on_tick(tick(asks=[("98.00", "3")]))

    # Assert
    assert [(e.order_id, e.quantity) for e in executions] == [("a", Decimal(2)), ("b", Decimal(1))]
    assert matcher.remaining("b") == 1


def test_later_ticks_when_a_resting_order_is_partly_filled_then_drain_it_until_gone() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("b-1", "99.00", quantity="5"))
    crossing = tick(asks=[("99.00", "2")])

    # Act
    fills = [matcher.on_tick(crossing) for _ in range(4)]

    # Assert
    assert [[e.quantity for e in f] for f in fills] == [[2], [2], [1], []]
    assert [e.execution_id for f in fills for e in f] == ["b-1:1", "b-1:2", "b-1:3"]
    assert matcher.resting_count() == 0
    assert matcher.remaining("b-1") is None


def test_tick_when_an_order_filled_on_arrival_then_its_execution_ids_continue() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    arrival = matcher.on_arrival(
        limit_order("b-1", "99.00", quantity="3"), tick(asks=[("98.00", "1"), ("99.00", "1")])
    )

    # Act
    later = matcher.on_tick(tick(asks=[("99.00", "5")]))

    # Assert
    assert [e.execution_id for e in arrival.executions] == ["b-1:1", "b-1:2"]
    assert [e.execution_id for e in later] == ["b-1:3"]


def test_rest_when_the_protection_price_is_off_the_tick_grid_then_rests_on_the_safe_side() -> None:
    # Arrange: a BUY capped at 99.005 may not pay 99.01; it rests at 99.00
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("b-1", "99.50", protection="99.005"))

    # Act
    executions = matcher.on_tick(tick(asks=[("99.00", "1")]))

    # Assert
    assert [e.price for e in executions] == [Decimal("99.00")]


def test_tick_when_an_ask_is_off_the_tick_grid_then_crosses_only_orders_it_reaches() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("b-1", "99.00"))

    # Act
    executions = matcher.on_tick(tick(asks=[("99.001", "1")]))

    # Assert
    assert executions == []


def test_tick_when_the_symbol_is_unlisted_then_fills_nothing() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("b-1", "99.00"))

    # Act
    executions = matcher.on_tick(tick(asks=[("1.00", "10")], symbol="DOGE-USD"))

    # Assert
    assert executions == []


def test_cancel_when_the_order_rests_then_removes_it_and_returns_what_it_still_had() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("b-1", "99.00", quantity="5"))
    matcher.on_tick(tick(asks=[("99.00", "2")]))

    # Act
    removed = matcher.cancel("b-1")

    # Assert
    assert removed == 3
    assert matcher.resting_count() == 0
    assert matcher.on_tick(tick(asks=[("90.00", "100")])) == []


def test_cancel_when_the_order_is_not_resting_then_returns_none() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("b-1", "99.00"))
    matcher.cancel("b-1")

    # Act / Assert
    assert matcher.cancel("b-1") is None
    assert matcher.cancel("never-seen") is None


def test_tick_when_an_order_ahead_was_cancelled_then_its_liquidity_goes_to_the_next() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("first", "99.00"), limit_order("second", "99.00"))
    matcher.cancel("first")

    # Act
    executions = matcher.on_tick(tick(asks=[("99.00", "1")]))

    # Assert
    assert [e.order_id for e in executions] == ["second"]


def test_tick_when_many_orders_were_cancelled_then_still_fills_the_live_ones_in_priority() -> None:
    # Arrange: enough cancels to trigger the rebuild of the heaps
    matcher = Matcher(FEE_RATE)
    orders = [limit_order(f"b-{i}", f"{90 + i % 9}.00") for i in range(3000)]
    rest_orders(matcher, *orders)
    for order in orders[:2500]:
        matcher.cancel(order.order_id)

    # Act
    executions = matcher.on_tick(tick(asks=[("80.00", "1000")]))

    # Assert
    assert len(executions) == 500
    assert matcher.resting_count() == 0
    prices = [e.price for e in executions]
    assert prices == sorted(prices, reverse=True)


def test_arrival_when_the_order_id_no_longer_rests_then_accepted_again() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("b-1", "99.00"))
    matcher.cancel("b-1")

    # Act
    result = matcher.on_arrival(limit_order("b-1", "99.00"), EMPTY)

    # Assert
    assert result.outcome is Outcome.RESTING


def test_restore_when_an_order_rested_then_rests_it_without_matching_and_continues_its_ids() -> (
    None
):
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    matcher.restore(limit_order("b-1", "99.00", quantity="5"), Decimal(2), executions_so_far=4)
    executions = matcher.on_tick(tick(asks=[("99.00", "10")]))

    # Assert
    assert [(e.execution_id, e.quantity) for e in executions] == [("b-1:5", Decimal(2))]


@pytest.mark.parametrize(
    ("order", "remaining", "code"),
    [
        (limit_order("b-1", "99.00")._replace(time_in_force=TimeInForce.IOC), "1", "NOT_RESTABLE"),
        (limit_order("b-1", "99.00"), "0", "INVALID_QUANTITY"),
    ],
)
def test_restore_when_the_order_cannot_rest_then_refused_with_its_code(
    order: VenueOrder, remaining: str, code: str
) -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    with pytest.raises(VenueError) as raised:
        matcher.restore(order, Decimal(remaining), executions_so_far=0)

    # Assert
    assert raised.value.code == code


def test_simulated_feed_when_it_walks_then_resting_orders_near_the_market_drain() -> None:
    # Arrange: buys 0.2% under and sells 0.2% over the start; a feed with strong moves
    matcher = Matcher(FEE_RATE)
    feed = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=5, volatility=0.002)
    rest_orders(
        matcher,
        limit_order("b-1", "59880.00", quantity="0.5"),
        limit_order("s-1", "60120.00", quantity="0.5", side=Side.SELL),
    )

    # Act
    filled: dict[str, Decimal] = {}
    for step in range(5000):
        for execution in matcher.on_tick(feed.next_tick("BTC-USD", float(step))):
            filled[execution.order_id] = filled.get(execution.order_id, Decimal(0)) + (
                execution.quantity
            )
        if not matcher.resting_count():
            break

    # Assert
    assert matcher.resting_count() == 0
    assert filled == {"b-1": Decimal("0.5"), "s-1": Decimal("0.5")}
