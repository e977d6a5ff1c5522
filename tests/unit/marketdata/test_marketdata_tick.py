"""Ticks: what a book snapshot may look like, and how it travels as JSON."""

from decimal import Decimal

import pytest

from oms.marketdata import BookLevel, InvalidTick, Tick


def _tick(**overrides: object) -> Tick:
    fields: dict[str, object] = {
        "symbol": "BTC-USD",
        "last_price": Decimal("60000.00"),
        "best_bid": Decimal("59999.00"),
        "best_ask": Decimal("60001.00"),
        "bids": (
            BookLevel(Decimal("59999.00"), Decimal("1.5000")),
            BookLevel(Decimal("59998.00"), Decimal("2.0000")),
        ),
        "asks": (
            BookLevel(Decimal("60001.00"), Decimal("0.7500")),
            BookLevel(Decimal("60002.00"), Decimal("3.0000")),
        ),
        "ts": 1_700_000_000.25,
    }
    fields.update(overrides)
    return Tick(**fields)  # type: ignore[arg-type]


def test_tick_when_written_to_dict_and_read_back_then_is_the_same() -> None:
    # Arrange
    tick = _tick()

    # Act
    again = Tick.from_dict(tick.to_dict())

    # Assert
    assert again == tick


def test_tick_to_dict_when_written_then_every_amount_is_a_decimal_string() -> None:
    # Arrange
    tick = _tick()

    # Act
    data = tick.to_dict()

    # Assert
    assert data["last_price"] == "60000.00"
    assert data["best_bid"] == "59999.00"
    assert data["asks"][0] == {"price": "60001.00", "quantity": "0.7500"}
    assert data["ts"] == 1_700_000_000.25


def test_tick_from_dict_when_an_amount_is_a_json_number_then_refuses_it() -> None:
    # Arrange
    data = _tick().to_dict()
    data["last_price"] = 60000.0

    # Act
    with pytest.raises(InvalidTick) as raised:
        Tick.from_dict(data)

    # Assert
    assert raised.value.code == "TICK_AMOUNT"


def test_tick_from_dict_when_a_level_quantity_is_a_json_number_then_refuses_it() -> None:
    # Arrange
    data = _tick().to_dict()
    data["bids"][0]["quantity"] = 1.5

    # Act
    with pytest.raises(InvalidTick) as raised:
        Tick.from_dict(data)

    # Assert
    assert raised.value.code == "TICK_AMOUNT"


def test_tick_from_dict_when_a_field_is_missing_then_names_it() -> None:
    # Arrange
    data = _tick().to_dict()
    del data["ts"]

    # Act
    with pytest.raises(InvalidTick) as raised:
        Tick.from_dict(data)

    # Assert
    assert raised.value.code == "TICK_FIELD_MISSING"
    assert "'ts'" in str(raised.value)


def test_tick_from_dict_when_ts_is_a_boolean_then_refuses_it() -> None:
    # Arrange
    data = _tick().to_dict()
    data["ts"] = True

    # Act
    with pytest.raises(InvalidTick) as raised:
        Tick.from_dict(data)

    # Assert
    assert raised.value.code == "TICK_FIELD_INVALID"


def test_tick_from_dict_when_an_amount_is_not_a_decimal_then_refuses_it() -> None:
    # Arrange
    data = _tick().to_dict()
    data["best_ask"] = "sixty thousand"

    # Act
    with pytest.raises(InvalidTick) as raised:
        Tick.from_dict(data)

    # Assert
    assert raised.value.code == "TICK_AMOUNT"


def test_tick_when_the_book_is_crossed_then_refuses_it() -> None:
    # Arrange
    bids = (BookLevel(Decimal("60002.00"), Decimal("1")),)

    # Act
    with pytest.raises(InvalidTick) as raised:
        _tick(bids=bids, best_bid=Decimal("60002.00"))

    # Assert
    assert raised.value.code == "CROSSED_BOOK"


def test_tick_when_bids_are_not_descending_then_refuses_it() -> None:
    # Arrange
    bids = (
        BookLevel(Decimal("59998.00"), Decimal("1")),
        BookLevel(Decimal("59999.00"), Decimal("1")),
    )

    # Act
    with pytest.raises(InvalidTick) as raised:
        _tick(bids=bids, best_bid=Decimal("59998.00"))

    # Assert
    assert raised.value.code == "UNSORTED_LEVELS"


def test_tick_when_asks_repeat_a_price_then_refuses_it() -> None:
    # Arrange
    asks = (
        BookLevel(Decimal("60001.00"), Decimal("1")),
        BookLevel(Decimal("60001.00"), Decimal("1")),
    )

    # Act
    with pytest.raises(InvalidTick) as raised:
        _tick(asks=asks)

    # Assert
    assert raised.value.code == "UNSORTED_LEVELS"


def test_tick_when_best_bid_is_not_the_first_levels_price_then_refuses_it() -> None:
    # Act
    with pytest.raises(InvalidTick) as raised:
        _tick(best_bid=Decimal("59990.00"))

    # Assert
    assert raised.value.code == "BEST_PRICE_MISMATCH"


@pytest.mark.parametrize("quantity", [Decimal(0), Decimal(-1), Decimal("NaN")])
def test_tick_when_a_level_quantity_is_not_positive_then_refuses_it(quantity: Decimal) -> None:
    # Arrange
    asks = (BookLevel(Decimal("60001.00"), quantity),)

    # Act
    with pytest.raises(InvalidTick) as raised:
        _tick(asks=asks)

    # Assert
    assert raised.value.code == "TICK_AMOUNT"


def test_tick_when_sides_are_empty_and_no_best_prices_then_is_a_valid_last_trade_only_tick() -> (
    None
):
    # Act
    tick = _tick(bids=(), asks=(), best_bid=None, best_ask=None)

    # Assert
    assert Tick.from_dict(tick.to_dict()) == tick
    assert tick.to_dict()["best_bid"] is None
