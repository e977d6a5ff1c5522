"""Arrival matching: MARKET walks the book, LIMIT takes what crosses, IOC and FOK as named."""

from decimal import Decimal

import pytest

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.errors import UnknownInstrument
from oms.marketdata import BookLevel, Tick
from oms.venue import Matcher, Outcome, VenueError, VenueOrder

FEE_RATE = Decimal("0.001")


def _book(
    asks: list[tuple[str, str]] | None = None, bids: list[tuple[str, str]] | None = None
) -> Tick:
    """A BTC-USD snapshot; defaults: asks 100.00 x1, 101.00 x2, 102.00 x3 and bids mirrored."""
    ask_levels = tuple(
        BookLevel(Decimal(p), Decimal(q))
        for p, q in (asks or [("100.00", "1"), ("101.00", "2"), ("102.00", "3")])
    )
    bid_levels = tuple(
        BookLevel(Decimal(p), Decimal(q))
        for p, q in (bids or [("99.00", "1"), ("98.00", "2"), ("97.00", "3")])
    )
    return Tick(
        "BTC-USD",
        ask_levels[0].price if ask_levels else bid_levels[0].price,
        bid_levels[0].price if bid_levels else None,
        ask_levels[0].price if ask_levels else None,
        bid_levels,
        ask_levels,
        1.0,
    )


def _order(
    side: Side = Side.BUY,
    *,
    type_: OrderType = OrderType.MARKET,
    tif: TimeInForce = TimeInForce.IOC,
    quantity: str = "1",
    limit: str | None = None,
    protection: str | None = None,
    order_id: str = "o-1",
) -> VenueOrder:
    if protection is None:
        protection = limit or ("1000.00" if side is Side.BUY else "1.00")
    return VenueOrder(
        order_id,
        "acct-1",
        "BTC-USD",
        side,
        type_,
        tif,
        Decimal(quantity),
        None if limit is None else Decimal(limit),
        Decimal(protection),
    )


def test_market_buy_when_it_arrives_then_walks_the_asks_filling_each_level_at_its_price() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(_order(quantity="4"), _book())

    # Assert
    assert result.outcome is Outcome.FILLED
    assert result.remaining == 0
    assert [(e.quantity, e.price) for e in result.executions] == [
        (Decimal(1), Decimal("100.00")),
        (Decimal(2), Decimal("101.00")),
        (Decimal(1), Decimal("102.00")),
    ]


def test_market_sell_when_it_arrives_then_walks_the_bids_down_from_the_best() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(_order(side=Side.SELL, quantity="2"), _book())

    # Assert
    assert result.outcome is Outcome.FILLED
    assert [(e.quantity, e.price) for e in result.executions] == [
        (Decimal(1), Decimal("99.00")),
        (Decimal(1), Decimal("98.00")),
    ]


def test_market_buy_when_it_reaches_its_protection_price_then_cancels_the_remainder() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(_order(quantity="5", protection="101.00"), _book())

    # Assert
    assert result.outcome is Outcome.CANCELLED_REMAINDER
    assert result.remaining == 2
    assert max(e.price for e in result.executions) == Decimal("101.00")
    assert matcher.resting_count() == 0


def test_market_sell_when_bids_fall_below_its_protection_price_then_never_fills_there() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(_order(side=Side.SELL, quantity="6", protection="98.50"), _book())

    # Assert
    assert result.outcome is Outcome.CANCELLED_REMAINDER
    assert [e.price for e in result.executions] == [Decimal("99.00")]
    assert result.remaining == 5


def test_market_order_when_gtc_then_never_rests_its_remainder() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(_order(quantity="10", tif=TimeInForce.GTC), _book())

    # Assert
    assert result.outcome is Outcome.CANCELLED_REMAINDER
    assert result.remaining == 4
    assert matcher.resting_count() == 0


def test_market_order_when_its_side_is_empty_then_fills_nothing_and_cancels() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    book = Tick("BTC-USD", Decimal("100.00"), None, None, (), (), 1.0)

    # Act
    result = matcher.on_arrival(_order(quantity="1"), book)

    # Assert
    assert result.executions == ()
    assert result.remaining == 1
    assert result.outcome is Outcome.CANCELLED_REMAINDER


def test_limit_gtc_buy_when_part_crosses_then_takes_it_at_once_and_rests_the_rest() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(
        _order(type_=OrderType.LIMIT, tif=TimeInForce.GTC, quantity="5", limit="101.00"), _book()
    )

    # Assert
    assert result.outcome is Outcome.RESTING
    assert sum(e.quantity for e in result.executions) == 3
    assert result.remaining == 2
    assert matcher.resting_count() == 1
    assert matcher.remaining("o-1") == 2


def test_limit_gtc_sell_when_it_does_not_cross_then_rests_whole() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(
        _order(Side.SELL, type_=OrderType.LIMIT, tif=TimeInForce.GTC, quantity="2", limit="105.00"),
        _book(),
    )

    # Assert
    assert result.outcome is Outcome.RESTING
    assert result.executions == ()
    assert result.remaining == 2


def test_limit_buy_when_the_book_price_is_better_than_the_limit_then_takes_the_book_price() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(
        _order(type_=OrderType.LIMIT, tif=TimeInForce.IOC, quantity="1", limit="110.00"), _book()
    )

    # Assert
    assert [e.price for e in result.executions] == [Decimal("100.00")]


def test_limit_buy_when_its_protection_price_is_stricter_than_its_limit_then_uses_it() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    order = _order(
        type_=OrderType.LIMIT,
        tif=TimeInForce.IOC,
        quantity="6",
        limit="102.00",
        protection="100.00",
    )

    # Act
    result = matcher.on_arrival(order, _book())

    # Assert
    assert [e.price for e in result.executions] == [Decimal("100.00")]
    assert result.remaining == 5


def test_limit_ioc_when_it_cannot_fill_at_once_then_cancels_the_rest() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(
        _order(type_=OrderType.LIMIT, tif=TimeInForce.IOC, quantity="5", limit="100.00"), _book()
    )

    # Assert
    assert result.outcome is Outcome.CANCELLED_REMAINDER
    assert result.remaining == 4
    assert matcher.resting_count() == 0


def test_fok_when_the_book_holds_enough_within_the_limit_then_fills_whole() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(
        _order(type_=OrderType.LIMIT, tif=TimeInForce.FOK, quantity="3", limit="101.00"), _book()
    )

    # Assert
    assert result.outcome is Outcome.FILLED
    assert sum(e.quantity for e in result.executions) == 3


@pytest.mark.parametrize("type_", [OrderType.LIMIT, OrderType.MARKET])
def test_fok_when_the_book_cannot_fill_it_whole_then_kills_it_without_executions(
    type_: OrderType,
) -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    order = _order(type_=type_, tif=TimeInForce.FOK, quantity="4", limit="101.00")
    if type_ is OrderType.MARKET:
        order = order._replace(limit_price=None)

    # Act
    result = matcher.on_arrival(order, _book())

    # Assert
    assert result.outcome is Outcome.KILLED
    assert result.executions == ()
    assert result.remaining == 4
    assert matcher.resting_count() == 0


def test_arrivals_when_several_use_one_snapshot_then_each_sees_the_whole_depth() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    book = _book()

    # Act
    first = matcher.on_arrival(_order(quantity="1", order_id="o-1"), book)
    second = matcher.on_arrival(_order(quantity="1", order_id="o-2"), book)

    # Assert
    assert first.executions[0].price == second.executions[0].price == Decimal("100.00")
    assert book == _book()


def test_executions_when_an_order_fills_then_are_numbered_per_order_from_one() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(_order(quantity="3", order_id="ord-9"), _book())

    # Assert
    assert [e.execution_id for e in result.executions] == ["ord-9:1", "ord-9:2"]
    assert {e.order_id for e in result.executions} == {"ord-9"}
    assert {e.account_id for e in result.executions} == {"acct-1"}


def test_fee_when_an_order_fills_then_is_quantity_times_price_times_rate_rounded_down() -> None:
    # Arrange: 0.3333 x 100.00 x 0.001 = 0.03333 -> 0.03
    matcher = Matcher(FEE_RATE)

    # Act
    result = matcher.on_arrival(_order(quantity="0.3333"), _book())

    # Assert
    assert result.executions[0].fee == Decimal("0.03")


def test_fee_when_the_rate_is_zero_then_is_zero() -> None:
    # Arrange
    matcher = Matcher(Decimal(0))

    # Act
    result = matcher.on_arrival(_order(quantity="1"), _book())

    # Assert
    assert result.executions[0].fee == 0


def test_arrival_when_a_level_quantity_is_off_the_lot_grid_then_floors_it() -> None:
    # Arrange: BTC-USD lots are 0.0001
    matcher = Matcher(FEE_RATE)
    book = _book(asks=[("100.00", "0.00015")])

    # Act
    result = matcher.on_arrival(_order(quantity="1"), book)

    # Assert
    assert [e.quantity for e in result.executions] == [Decimal("0.0001")]


def test_execution_to_fill_when_converted_then_is_apply_fill_keyed_by_the_execution_id() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    execution = matcher.on_arrival(_order(quantity="1"), _book()).executions[0]

    # Act
    fill = execution.to_fill(executed_at=42.0)

    # Assert
    assert fill.command_id == execution.execution_id
    assert (fill.order_id, fill.account_id) == ("o-1", "acct-1")
    assert (fill.quantity, fill.price, fill.fee) == (Decimal(1), Decimal("100.00"), Decimal("0.10"))
    assert fill.executed_at == 42.0


def test_arrival_when_the_symbol_is_unlisted_then_raises_unknown_instrument() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    order = _order()._replace(symbol="DOGE-USD")

    # Act
    with pytest.raises(UnknownInstrument) as raised:
        matcher.on_arrival(order, _book())

    # Assert
    assert raised.value.code == "UNKNOWN_INSTRUMENT"


def test_arrival_when_the_order_id_still_rests_then_refused_duplicate_order() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    resting = _order(type_=OrderType.LIMIT, tif=TimeInForce.GTC, limit="90.00")
    matcher.on_arrival(resting, _book())

    # Act
    with pytest.raises(VenueError) as raised:
        matcher.on_arrival(resting, _book())

    # Assert
    assert raised.value.code == "DUPLICATE_ORDER"
    assert matcher.resting_count() == 1


def test_arrival_when_a_limit_order_has_no_price_then_refused_missing_price() -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)
    order = _order(type_=OrderType.LIMIT, tif=TimeInForce.GTC)

    # Act
    with pytest.raises(VenueError) as raised:
        matcher.on_arrival(order, _book())

    # Assert
    assert raised.value.code == "MISSING_PRICE"


@pytest.mark.parametrize("quantity", ["0", "-1"])
def test_arrival_when_the_quantity_is_not_positive_then_refused_invalid_quantity(
    quantity: str,
) -> None:
    # Arrange
    matcher = Matcher(FEE_RATE)

    # Act
    with pytest.raises(VenueError) as raised:
        matcher.on_arrival(_order(quantity=quantity), _book())

    # Assert
    assert raised.value.code == "INVALID_QUANTITY"


def test_matcher_when_the_fee_rate_is_negative_then_refuses_it() -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="fee_rate"):
        Matcher(Decimal("-0.001"))
