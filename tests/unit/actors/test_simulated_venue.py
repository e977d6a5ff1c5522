"""The simulated venue on the dispatcher: the book it matches against and what it answers."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from oms.actors.messages import MarketTick, Matched, RouteVenueFills, Submit
from oms.actors.runtime import DispatchedActor, Dispatcher
from oms.actors.venue import CountResting, SimulatedVenue
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from oms.marketdata import MarketData
from oms.venue import Matcher, VenueOrder
from tests.unit.engine_helpers import tick

INSTRUMENTS = instrument_map(DEFAULT_INSTRUMENTS)


class Inbox(DispatchedActor):
    """Keeps what the venue tells it: ``Matched`` answers and ``RouteVenueFills``."""

    registered = False
    handlers: ClassVar[dict[type, str]] = {Matched: "on_message", RouteVenueFills: "on_message"}

    def __init__(self, dispatcher: Dispatcher, received: list[Any]) -> None:
        super().__init__(dispatcher)
        self.received = received

    def on_message(self, message: Any) -> None:
        self.received.append(message)


class Venue:
    """A started venue, the inbox it answers to, and a way to wait for both."""

    def __init__(self, dispatcher: Dispatcher, matcher: Matcher) -> None:
        self.dispatcher = dispatcher
        self.received: list[Any] = []
        self.inbox = Inbox.start(dispatcher, self.received)
        self.ref = SimulatedVenue.start(
            dispatcher, MarketData(INSTRUMENTS), matcher, self.inbox, lambda: 7.0
        )

    def tell(self, message: Any) -> None:
        self.ref.tell(message)
        self.dispatcher.wait_idle(timeout=5)

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.received if isinstance(m, kind)]

    def stop(self) -> None:
        for ref in (self.ref, self.inbox):
            if ref.is_alive():
                ref.stop(timeout=5)

    def resting(self) -> int:
        count: int = self.ref.ask(CountResting(), timeout=5)
        return count


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    running = Dispatcher("test-venue")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def venue(dispatcher: Dispatcher) -> Iterator[Venue]:
    started = Venue(dispatcher, Matcher(Decimal("0.001"), INSTRUMENTS))
    yield started
    started.stop()


def _buy(order_id: str = "o-1", limit: str = "100.00") -> VenueOrder:
    return VenueOrder(
        order_id, "a1", "BTC-USD", Side.BUY, OrderType.LIMIT, TimeInForce.GTC,
        Decimal("0.5"), Decimal(limit), Decimal(limit),
    )  # fmt: skip


def test_a_tick_older_than_the_book_when_it_crosses_a_resting_order_then_fills_nothing(
    venue: Venue,
) -> None:
    # Arrange: a BUY rests at 100.00, the book has a newer tick far above it
    venue.tell(Submit(_buy(), venue.inbox))
    venue.tell(MarketTick(tick(bid="109.00", ask="110.00", ts=2000.0)))

    # Act: a stale tick whose ask would cross the resting BUY
    venue.tell(MarketTick(tick(bid="98.00", ask="99.00", ts=1000.0)))

    # Assert
    assert venue.of(RouteVenueFills) == []
    assert venue.resting() == 1


def test_a_tick_newer_than_the_book_when_it_crosses_a_resting_order_then_fills_it(
    venue: Venue,
) -> None:
    # Arrange
    venue.tell(Submit(_buy(), venue.inbox))
    venue.tell(MarketTick(tick(bid="109.00", ask="110.00", ts=2000.0)))

    # Act
    venue.tell(MarketTick(tick(bid="98.00", ask="99.00", ts=3000.0)))

    # Assert
    [routed] = venue.of(RouteVenueFills)
    [(order_id, (fill,))] = routed.fills
    assert (order_id, fill.quantity, fill.price, fill.executed_at) == (
        "o-1", Decimal("0.5"), Decimal("100.00"), 3000.0,
    )  # fmt: skip
    assert venue.resting() == 0
