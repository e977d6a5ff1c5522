"""The market-data actor: an explicit protocol around MarketData and the simulated feed."""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pykka
import pytest

from oms.domain.errors import UnknownInstrument
from oms.domain.instruments import DEFAULT_INSTRUMENTS
from oms.marketdata import (
    AdvanceFeed,
    BookLevel,
    GetBook,
    GetLastPrice,
    MarketData,
    MarketDataActor,
    NoFeed,
    SimulatedFeed,
    Subscribe,
    Tick,
    UnknownMessage,
    Unsubscribe,
)

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")


class _Recorder(pykka.ThreadingActor):
    """A subscriber that keeps what it was told; ask it anything else to read the list."""

    def __init__(self) -> None:
        super().__init__()
        self.ticks: list[Tick] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Tick):
            self.ticks.append(message)
            return None
        return list(self.ticks)


def _tick(ts: float = 1.0, bid: str = "2999.00") -> Tick:
    best_bid = Decimal(bid)
    return Tick(
        "ETH-USD",
        best_bid,
        best_bid,
        best_bid + 2,
        (BookLevel(best_bid, Decimal(1)),),
        (BookLevel(best_bid + 2, Decimal(1)),),
        ts,
    )


@pytest.fixture
def actors() -> Iterator[list[pykka.ActorRef[Any]]]:
    started: list[pykka.ActorRef[Any]] = []
    yield started
    for ref in started:
        ref.stop()


def _start(actors: list[pykka.ActorRef[Any]], feed: SimulatedFeed | None = None) -> Any:
    ref = MarketDataActor.start(MarketData(SYMBOLS), feed)
    actors.append(ref)
    return ref


def test_market_data_actor_when_a_tick_is_applied_then_answers_the_book_and_last_price(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)

    # Act
    changed = ref.ask(_tick())
    snapshot = ref.ask(GetBook("ETH-USD", depth=1))
    last = ref.ask(GetLastPrice("ETH-USD"))

    # Assert
    assert changed is True
    assert snapshot == _tick()
    assert last == Decimal("2999.00")


def test_market_data_actor_when_a_listed_symbol_has_no_ticks_then_answers_none(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)

    # Act / Assert
    assert ref.ask(GetBook("BTC-USD")) is None
    assert ref.ask(GetLastPrice("BTC-USD")) is None


def test_market_data_actor_when_ticks_arrive_then_forwards_accepted_ones_but_not_stale_ones(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)
    recorder = _Recorder.start()
    actors.append(recorder)
    ref.ask(Subscribe(recorder))

    # Act
    ref.ask(_tick(ts=2.0))
    ref.ask(_tick(ts=1.0))  # older: the book ignores it, so nobody hears of it
    received = recorder.ask("read")

    # Assert
    assert received == [_tick(ts=2.0)]


def test_market_data_actor_when_unsubscribed_then_stops_forwarding(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)
    recorder = _Recorder.start()
    actors.append(recorder)
    ref.ask(Subscribe(recorder))
    ref.ask(Subscribe(recorder))  # twice: still one subscription

    # Act
    ref.ask(_tick(ts=1.0))
    ref.ask(Unsubscribe(recorder))
    ref.ask(_tick(ts=2.0))
    received = recorder.ask("read")

    # Assert
    assert received == [_tick(ts=1.0)]


def test_market_data_actor_when_a_subscriber_died_then_drops_it_and_keeps_going(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)
    recorder = _Recorder.start()
    ref.ask(Subscribe(recorder))
    recorder.stop()

    # Act
    changed = ref.ask(_tick())

    # Assert
    assert changed is True
    assert ref.is_alive()


def test_market_data_actor_when_the_feed_advances_then_applies_and_answers_one_tick_per_symbol(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors, SimulatedFeed(DEFAULT_INSTRUMENTS, seed=7))
    expected = SimulatedFeed(DEFAULT_INSTRUMENTS, seed=7).step(5.0)

    # Act
    ticks = ref.ask(AdvanceFeed(now=5.0))
    btc = ref.ask(GetBook("BTC-USD"))

    # Assert
    assert ticks == expected
    assert btc == expected[0]


def test_market_data_actor_when_advanced_without_a_feed_then_raises_no_feed(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)

    # Act
    with pytest.raises(NoFeed) as raised:
        ref.ask(AdvanceFeed(now=1.0))

    # Assert
    assert raised.value.code == "NO_FEED"


def test_market_data_actor_when_asked_something_outside_its_protocol_then_raises(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)

    # Act
    with pytest.raises(UnknownMessage) as raised:
        ref.ask({"command": "get_book"})

    # Assert
    assert raised.value.code == "UNKNOWN_MESSAGE"


def test_market_data_actor_when_asked_with_an_unlisted_symbols_tick_then_raises(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)
    tick = _tick()
    foreign = Tick("DOGE-USD", tick.last_price, None, None, (), (), 1.0)

    # Act
    with pytest.raises(UnknownInstrument) as raised:
        ref.ask(foreign)

    # Assert
    assert raised.value.code == "UNKNOWN_INSTRUMENT"
