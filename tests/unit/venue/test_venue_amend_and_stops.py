"""Amending resting orders (queue priority as exchanges keep it), post-only, GTD and stops."""

from dataclasses import replace
from decimal import Decimal

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.venue import Matcher, Outcome, VenueOrder
from tests.unit.venue.resting_orders import EMPTY, FEE_RATE, limit_order, rest_orders, tick


def _first_filled(matcher: Matcher) -> str:
    """Which of the resting BUYs at 100.00 a tick with 1 to sell at 100.00 fills first."""
    executions = matcher.on_tick(tick(asks=[("100.00", "1")]))
    return executions[0].order_id


def test_amend_when_quantity_smaller_at_the_same_price_then_keeps_its_place() -> None:
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("a", "100.00", "2"), limit_order("b", "100.00", "2"))

    held = matcher.amend(limit_order("a", "100.00"), Decimal("-1"))

    assert held == Decimal("1")
    assert _first_filled(matcher) == "a"


def test_amend_when_quantity_larger_then_loses_its_place() -> None:
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("a", "100.00", "2"), limit_order("b", "100.00", "2"))

    held = matcher.amend(limit_order("a", "100.00"), Decimal("1"))

    assert held == Decimal("3")
    assert _first_filled(matcher) == "b"


def test_amend_when_price_changes_then_rests_at_the_new_price_behind_it() -> None:
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("a", "99.00"), limit_order("b", "100.00"))

    matcher.amend(limit_order("a", "100.00"), Decimal(0))

    assert _first_filled(matcher) == "b"
    assert matcher.remaining("a") == Decimal("1")


def test_amend_when_it_takes_more_than_rests_then_refused_and_nothing_changes() -> None:
    matcher = Matcher(FEE_RATE)
    rest_orders(matcher, limit_order("a", "100.00", "2"))

    held = matcher.amend(limit_order("a", "100.00"), Decimal("-2"))

    assert held is not None
    assert held <= 0
    assert matcher.remaining("a") == Decimal("2")


def test_amend_when_not_resting_then_none() -> None:
    assert Matcher(FEE_RATE).amend(limit_order("a", "100.00"), Decimal(1)) is None


def test_post_only_when_it_would_cross_then_refused_without_executions() -> None:
    matcher = Matcher(FEE_RATE)
    book = tick(asks=[("100.00", "5")])

    result = matcher.on_arrival(limit_order("a", "100.00")._replace(post_only=True), book)

    assert result.outcome is Outcome.POST_ONLY_REJECTED
    assert result.executions == ()
    assert matcher.resting_count() == 0


def test_gtd_limit_when_it_does_not_fill_then_rests() -> None:
    matcher = Matcher(FEE_RATE)

    result = matcher.on_arrival(
        limit_order("a", "99.00")._replace(time_in_force=TimeInForce.GTD), EMPTY
    )

    assert result.outcome is Outcome.RESTING


def test_stop_when_the_last_price_crosses_then_triggered_and_arrives_as_what_it_becomes() -> None:
    matcher = Matcher(FEE_RATE)
    stop = VenueOrder(
        "s", "acct-1", "BTC-USD", Side.BUY, OrderType.STOP_MARKET, TimeInForce.IOC,
        Decimal("1"), None, Decimal("110.00"), False, Decimal("101.00"),
    )  # fmt: skip
    assert matcher.on_arrival(stop, EMPTY).outcome is Outcome.RESTING
    below = tick(asks=[("100.50", "5")])
    assert matcher.trigger(below, below) == []  # last 100.00: below its stop

    above = replace(tick(asks=[("101.10", "5")]), last_price=Decimal("101.00"))
    triggered = matcher.trigger(above, above)

    assert [(order.type, result.outcome) for order, result in triggered] == [
        (OrderType.MARKET, Outcome.FILLED)
    ]
    assert matcher.remaining("s") is None


def test_stop_when_cancelled_untriggered_then_its_quantity_comes_back() -> None:
    matcher = Matcher(FEE_RATE)
    stop = VenueOrder(
        "s", "acct-1", "BTC-USD", Side.SELL, OrderType.STOP_LIMIT, TimeInForce.GTC,
        Decimal("2"), Decimal("98.00"), Decimal("98.00"), False, Decimal("99.00"),
    )  # fmt: skip
    matcher.on_arrival(stop, EMPTY)

    assert matcher.cancel("s") == Decimal("2")
    assert matcher.cancel("s") is None


def test_stop_when_the_last_price_has_passed_it_on_arrival_then_refused_and_not_held() -> None:
    matcher = Matcher(FEE_RATE)
    stop = VenueOrder(
        "s", "acct-1", "BTC-USD", Side.BUY, OrderType.STOP_MARKET, TimeInForce.IOC,
        Decimal("1"), None, Decimal("110.00"), False, Decimal("100.00"),
    )  # fmt: skip

    result = matcher.on_arrival(stop, EMPTY)  # last 100.00: a BUY stop at 100.00 is behind it

    assert result.outcome is Outcome.STOP_WRONG_SIDE
    assert result.executions == ()
    assert matcher.remaining("s") is None
