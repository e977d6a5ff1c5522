"""Order books and the all-symbols market data: the latest snapshot wins, stale ones do not."""

from decimal import Decimal

import pytest

from oms.domain.errors import UnknownInstrument
from oms.marketdata import BookLevel, InvalidTick, MarketData, OrderBook, Tick


def _tick(symbol: str = "ETH-USD", *, ts: float = 10.0, bid: str = "2999.00") -> Tick:
    best_bid = Decimal(bid)
    bids = tuple(BookLevel(best_bid - i, Decimal(f"{i + 1}.000")) for i in range(3))
    asks = tuple(BookLevel(best_bid + 2 + i, Decimal(f"{i + 1}.500")) for i in range(3))
    return Tick(symbol, best_bid + 1, best_bid, asks[0].price, bids, asks, ts)


def test_order_book_when_no_tick_arrived_then_has_no_prices_and_no_levels() -> None:
    # Arrange
    book = OrderBook("ETH-USD")

    # Act / Assert
    assert book.last_price is None
    assert book.best_bid is None
    assert book.best_ask is None
    assert book.mid_price is None
    assert book.ts is None
    assert book.depth(5) == ((), ())
    assert book.snapshot() is None


def test_order_book_when_a_tick_is_applied_then_shows_last_price_best_bid_best_ask_and_mid() -> (
    None
):
    # Arrange
    book = OrderBook("ETH-USD")

    # Act
    changed = book.apply(_tick())

    # Assert
    assert changed is True
    assert book.last_price == Decimal("3000.00")
    assert book.best_bid == Decimal("2999.00")
    assert book.best_ask == Decimal("3001.00")
    assert book.mid_price == Decimal("3000.00")
    assert book.ts == 10.0


def test_order_book_depth_when_asked_for_n_then_returns_the_best_n_levels_of_each_side() -> None:
    # Arrange
    book = OrderBook("ETH-USD")
    book.apply(_tick())

    # Act
    bids, asks = book.depth(2)

    # Assert
    assert [level.price for level in bids] == [Decimal("2999.00"), Decimal("2998.00")]
    assert [level.price for level in asks] == [Decimal("3001.00"), Decimal("3002.00")]


def test_order_book_depth_when_negative_then_refuses_it() -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="negative"):
        OrderBook("ETH-USD").depth(-1)


def test_order_book_snapshot_when_given_a_depth_then_is_the_latest_tick_cut_to_it() -> None:
    # Arrange
    book = OrderBook("ETH-USD")
    tick = _tick()
    book.apply(tick)

    # Act
    snapshot = book.snapshot(1)

    # Assert
    assert snapshot is not None
    assert snapshot.bids == tick.bids[:1]
    assert snapshot.asks == tick.asks[:1]
    assert snapshot.last_price == tick.last_price
    assert book.snapshot() is tick


def test_order_book_when_a_tick_is_older_than_the_current_one_then_ignores_it() -> None:
    # Arrange
    book = OrderBook("ETH-USD")
    book.apply(_tick(ts=10.0, bid="2999.00"))

    # Act
    changed = book.apply(_tick(ts=9.0, bid="2500.00"))

    # Assert
    assert changed is False
    assert book.best_bid == Decimal("2999.00")


def test_order_book_when_a_tick_has_the_same_time_then_takes_it() -> None:
    # Arrange
    book = OrderBook("ETH-USD")
    book.apply(_tick(ts=10.0, bid="2999.00"))

    # Act
    changed = book.apply(_tick(ts=10.0, bid="2998.00"))

    # Assert
    assert changed is True
    assert book.best_bid == Decimal("2998.00")


def test_order_book_when_a_tick_is_for_another_symbol_then_refuses_it() -> None:
    # Arrange
    book = OrderBook("ETH-USD")

    # Act
    with pytest.raises(InvalidTick) as raised:
        book.apply(_tick("BTC-USD"))

    # Assert
    assert raised.value.code == "SYMBOL_MISMATCH"


def test_market_data_when_a_tick_is_applied_then_updates_only_its_symbol() -> None:
    # Arrange
    market = MarketData(["ETH-USD", "BTC-USD"])

    # Act
    market.apply(_tick("ETH-USD"))

    # Assert
    assert market.last_price("ETH-USD") == Decimal("3000.00")
    assert market.last_price("BTC-USD") is None
    assert market.book("ETH-USD").best_ask == Decimal("3001.00")
    assert market.symbols() == ("ETH-USD", "BTC-USD")


def test_market_data_when_a_tick_is_for_an_unlisted_symbol_then_raises_unknown_instrument() -> None:
    # Arrange
    market = MarketData(["ETH-USD"])

    # Act
    with pytest.raises(UnknownInstrument) as raised:
        market.apply(_tick("DOGE-USD"))

    # Assert
    assert raised.value.code == "UNKNOWN_INSTRUMENT"


def test_market_data_when_asked_for_an_unlisted_book_then_raises_unknown_instrument() -> None:
    # Arrange
    market = MarketData(["ETH-USD"])

    # Act
    with pytest.raises(UnknownInstrument) as no_book:
        market.book("DOGE-USD")
    with pytest.raises(UnknownInstrument) as no_price:
        market.last_price("DOGE-USD")

    # Assert
    assert no_book.value.code == no_price.value.code == "UNKNOWN_INSTRUMENT"


def test_market_data_when_listing_is_open_then_makes_a_book_on_a_symbols_first_tick() -> None:
    # Arrange
    market = MarketData()

    # Act
    market.apply(_tick("DOGE-USD"))

    # Assert
    assert market.symbols() == ("DOGE-USD",)
    assert market.last_price("DOGE-USD") == Decimal("3000.00")


def test_market_data_when_listing_is_open_then_answers_an_unseen_symbol_with_an_empty_book() -> (
    None
):
    # Arrange
    market = MarketData()

    # Act
    book = market.book("DOGE-USD")

    # Assert
    assert book.last_price is None
    assert market.symbols() == ()
