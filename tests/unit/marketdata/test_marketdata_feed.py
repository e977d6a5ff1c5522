"""The simulated feed: deterministic for a seed, always on the grids, deep enough for demos."""

from decimal import Decimal

import pytest

from oms.domain.errors import UnknownInstrument
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument, instrument_map
from oms.marketdata import SimulatedFeed, Tick


def _walk(feed: SimulatedFeed, steps: int) -> list[Tick]:
    return [tick for i in range(steps) for tick in feed.step(float(i))]


def test_feed_when_seeded_the_same_then_gives_the_same_ticks() -> None:
    # Arrange
    first = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=42)
    second = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=42)

    # Act / Assert
    assert _walk(first, 50) == _walk(second, 50)


def test_feed_when_seeded_otherwise_then_gives_other_ticks() -> None:
    # Arrange
    first = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=1)
    second = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=2)

    # Act / Assert
    assert _walk(first, 5) != _walk(second, 5)


def test_feed_when_other_symbols_are_stepped_then_a_symbols_ticks_stay_the_same() -> None:
    # Arrange
    busy = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=7)
    quiet = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=7)
    for i in range(10):
        busy.next_tick("BTC-USD", float(i))

    # Act
    from_busy = [busy.next_tick("ETH-USD", float(i)) for i in range(5)]
    from_quiet = [quiet.next_tick("ETH-USD", float(i)) for i in range(5)]

    # Assert
    assert from_busy == from_quiet


def test_feed_step_when_called_then_gives_one_tick_per_symbol_in_listing_order_stamped_now() -> (
    None
):
    # Arrange
    feed = SimulatedFeed(instrument_map(DEFAULT_INSTRUMENTS), seed=7)

    # Act
    ticks = feed.step(123.5)

    # Assert
    assert [tick.symbol for tick in ticks] == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert {tick.ts for tick in ticks} == {123.5}
    assert feed.symbols == ("BTC-USD", "ETH-USD", "SOL-USD")


def test_feed_when_it_quotes_then_prices_are_on_the_tick_grid_and_quantities_on_the_lot_grid() -> (
    None
):
    # Arrange
    feed = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=3)
    instruments = instrument_map(DEFAULT_INSTRUMENTS)

    # Act
    ticks = _walk(feed, 300)

    # Assert
    for tick in ticks:
        instrument = instruments[tick.symbol]
        assert tick.last_price % instrument.tick_size == 0
        for level in tick.bids + tick.asks:
            assert level.price % instrument.tick_size == 0
            assert level.quantity % instrument.lot_size == 0
            assert level.quantity > 0


def test_feed_when_it_quotes_then_has_a_positive_spread_and_the_configured_depth_each_side() -> (
    None
):
    # Arrange
    feed = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=3, depth=7)

    # Act
    ticks = _walk(feed, 100)

    # Assert
    for tick in ticks:
        assert tick.best_bid is not None
        assert tick.best_ask is not None
        assert tick.best_bid < tick.best_ask
        assert len(tick.bids) == 7
        assert len(tick.asks) == 7
        assert tick.last_price in (tick.best_bid, tick.best_ask)


@pytest.mark.parametrize(
    ("symbol", "start"),
    [("BTC-USD", Decimal(60000)), ("ETH-USD", Decimal(3000)), ("SOL-USD", Decimal(150))],
)
def test_feed_when_started_with_defaults_then_quotes_near_the_usual_prices(
    symbol: str, start: Decimal
) -> None:
    # Arrange
    feed = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=7)

    # Act
    tick = feed.next_tick(symbol, 0.0)

    # Assert
    assert abs(tick.last_price - start) / start < Decimal("0.01")


def test_feed_when_given_start_prices_then_starts_there() -> None:
    # Arrange
    feed = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=7, start_prices={"ETH-USD": Decimal(1000)})

    # Act
    tick = feed.next_tick("ETH-USD", 0.0)

    # Assert
    assert abs(tick.last_price - 1000) < 10


def test_feed_when_it_quotes_then_two_levels_hold_a_typical_demo_order() -> None:
    # Arrange: about $30,000 of each (0.5 BTC, 10 ETH, 200 SOL)
    feed = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=11)
    demo_size = {"BTC-USD": Decimal("0.5"), "ETH-USD": Decimal(10), "SOL-USD": Decimal(200)}

    # Act
    ticks = _walk(feed, 200)

    # Assert
    for tick in ticks:
        wanted = demo_size[tick.symbol]
        assert sum(level.quantity for level in tick.asks[:2]) >= wanted
        assert sum(level.quantity for level in tick.bids[:2]) >= wanted


def test_feed_when_it_walks_long_from_a_low_start_then_keeps_prices_positive() -> None:
    # Arrange
    penny = Instrument("PEN-USD", "PEN", "USD", Decimal("0.01"), Decimal(1))
    feed = SimulatedFeed([penny], seed=5, start_prices={"PEN-USD": Decimal("0.05")}, volatility=0.2)

    # Act
    ticks = _walk(feed, 2000)

    # Assert
    assert all(level.price > 0 for tick in ticks for level in tick.bids + tick.asks)


def test_feed_when_asked_for_a_symbol_it_does_not_quote_then_raises_unknown_instrument() -> None:
    # Arrange
    feed = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=7)

    # Act
    with pytest.raises(UnknownInstrument) as raised:
        feed.next_tick("DOGE-USD", 0.0)

    # Assert
    assert raised.value.code == "UNKNOWN_INSTRUMENT"


@pytest.mark.parametrize(
    "bad", [{"depth": 0}, {"volatility": -0.1}, {"level_notional": Decimal(0)}]
)
def test_feed_when_a_parameter_is_out_of_range_then_refuses_it(bad: dict[str, object]) -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="must"):
        SimulatedFeed(DEFAULT_INSTRUMENTS, seed=7, **bad)  # type: ignore[arg-type]


def test_resume_when_another_replica_left_the_market_elsewhere_then_walk_continues_there() -> None:
    feed = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=1, volatility=0.0)

    feed.resume("BTC-USD", Decimal("61234.56"))
    tick = feed.next_tick("BTC-USD", 1.0)

    assert tick.best_bid is not None
    assert tick.best_ask is not None
    assert tick.best_bid <= Decimal("61234.56") <= tick.best_ask
