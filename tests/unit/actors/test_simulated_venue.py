"""The simulated venue on the dispatcher: the book it matches against and what it answers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from oms.actors.messages import (
    ForgetResting,
    MarketTick,
    Matched,
    RestAgain,
    RouteVenueFills,
    Submit,
)
from oms.actors.ports import StoredOrder
from oms.actors.runtime import DispatchedActor, Dispatcher
from oms.actors.venue import CountResting, SimulatedVenue
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import OrderAccepted, OrderEvent, OrderFilled, OrderPlaced
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from oms.domain.orders import fold
from oms.marketdata import MarketData
from oms.marketdata.book import L2Book
from oms.venue import Matcher, MatchResult, Outcome, VenueOrder
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


def _buy(order_id: str = "o-1", limit: str = "100.00", symbol: str = "BTC-USD") -> VenueOrder:
    return VenueOrder(
        order_id, "a1", symbol, Side.BUY, OrderType.LIMIT, TimeInForce.GTC,
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


# -- a submit replayed while the order rests ------------------------------------------------


def test_submit_when_the_order_id_already_rests_then_answers_resting_with_what_is_left(
    venue: Venue,
) -> None:
    # Arrange: the order rests (a restart restored it, then its submit was replayed)
    venue.tell(Submit(_buy(), venue.inbox))

    # Act
    venue.tell(Submit(_buy(), venue.inbox))

    # Assert: the same order, where it stands; not a refusal that would cancel what still rests
    first, again = venue.of(Matched)
    assert first.result.outcome is Outcome.RESTING
    assert again == Matched(MatchResult((), Decimal("0.5"), Outcome.RESTING), 7.0)
    assert venue.resting() == 1


# -- arrivals the venue refuses --------------------------------------------------------------

NOTHING_FILLED = MatchResult((), Decimal("0.5"), Outcome.CANCELLED_REMAINDER)


def test_submit_when_the_symbol_is_not_listed_then_answers_nothing_filled(
    venue: Venue, caplog: pytest.LogCaptureFixture
) -> None:
    # Act
    with caplog.at_level(logging.WARNING, logger="oms.actors.venue"):
        venue.tell(Submit(_buy(symbol="DOGE-USD"), venue.inbox))

    # Assert
    assert venue.of(Matched) == [Matched(NOTHING_FILLED, 7.0)]
    assert "UNKNOWN_INSTRUMENT" in caplog.text
    assert venue.ref.is_alive()


class BrokenMatcher(Matcher):
    """A matcher with a bug: arithmetic fails on every arrival."""

    def on_arrival(self, order: VenueOrder, book: L2Book) -> MatchResult:
        return MatchResult((), order.quantity / 0, Outcome.FILLED)


def test_submit_when_the_matcher_has_a_bug_then_the_venue_fails_loudly_and_stops(
    dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange
    venue = Venue(dispatcher, BrokenMatcher(Decimal("0.001"), INSTRUMENTS))

    # Act
    with caplog.at_level(logging.ERROR):
        venue.tell(Submit(_buy(), venue.inbox))
    alive = venue.ref.is_alive()
    venue.stop()

    # Assert: no made-up answer; pykka's rule for a told message: logged, the actor stops
    assert venue.of(Matched) == []
    assert "DivisionByZero" in caplog.text
    assert not alive


def _stored_buy(order_id: str, limit: str, fills: tuple[tuple[str, str], ...] = ()) -> StoredOrder:
    """A stored accepted GTC LIMIT BUY of 0.5 with ``fills`` as (execution id, quantity)."""
    price = Decimal(limit)
    events: list[OrderEvent] = [
        OrderPlaced(
            order_id, 1, f"place-{order_id}", 1.0, f"cl-{order_id}", "a1", "BTC-USD", Side.BUY,
            OrderType.LIMIT, Decimal("0.5"), price, TimeInForce.GTC,
        ),
        OrderAccepted(order_id, 2, f"risk-{order_id}", 1.0, price),
    ]  # fmt: skip
    for n, (execution_id, quantity) in enumerate(fills, start=3):
        events.append(OrderFilled(order_id, n, execution_id, 1.0, Decimal(quantity), price, _FEE))
    return StoredOrder(fold(events), tuple(events))


_FEE = Decimal("0.01")


def test_rest_again_when_stored_orders_come_back_then_they_rest_without_matching(
    venue: Venue,
) -> None:
    # Arrange: one order already resting, one stored that rests no more (0.2 of it filled)
    venue.tell(Submit(_buy("o-1"), venue.inbox))
    stored = (_stored_buy("o-1", "100.00"), _stored_buy("o-2", "99.00", (("o-2:2", "0.2"),)))

    # Act
    already = venue.ref.ask(RestAgain(stored), timeout=5)
    venue.tell(MarketTick(tick(bid="97.00", ask="98.00", ts=3000.0)))

    # Assert: the one resting already is left as it was and named; the other rested with what
    # was left, and its next execution id follows its stored ones
    assert already == ("o-1",)
    fills = {oid: f for routed in venue.of(RouteVenueFills) for oid, f in routed.fills}
    assert [(f.command_id, f.quantity) for f in fills["o-2"]] == [("o-2:3", Decimal("0.3"))]
    assert [f.quantity for f in fills["o-1"]] == [Decimal("0.5")]


def test_forget_resting_when_a_rebuild_starts_then_nothing_rests(venue: Venue) -> None:
    # Arrange
    venue.tell(Submit(_buy("o-1"), venue.inbox))

    # Act
    venue.tell(ForgetResting())

    # Assert
    assert venue.resting() == 0
