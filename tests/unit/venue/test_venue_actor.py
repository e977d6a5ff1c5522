"""The venue actor: an explicit protocol around the matcher and its own copy of the books."""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pykka
import pytest

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.marketdata import BookLevel, MarketData, Tick, UnknownMessage
from oms.venue import (
    CancelResting,
    CountResting,
    ExecutionsReported,
    Matcher,
    Outcome,
    SubmitOrder,
    VenueActor,
    VenueOrder,
)

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")


class _Inbox(pykka.ThreadingActor):
    """Keeps every ExecutionsReported it is told; ask it anything else to read them."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[ExecutionsReported] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ExecutionsReported):
            self.reports.append(message)
            return None
        return list(self.reports)


def _tick(ask: str, quantity: str = "1", ts: float = 1.0) -> Tick:
    price = Decimal(ask)
    return Tick(
        "BTC-USD",
        price,
        price - 1,
        price,
        (BookLevel(price - 1, Decimal(quantity)),),
        (BookLevel(price, Decimal(quantity)),),
        ts,
    )


def _order(order_id: str, type_: OrderType, limit: str | None) -> VenueOrder:
    return VenueOrder(
        order_id,
        "acct-1",
        "BTC-USD",
        Side.BUY,
        type_,
        TimeInForce.GTC,
        Decimal(1),
        None if limit is None else Decimal(limit),
        Decimal(limit or "1000.00"),
    )


@pytest.fixture
def actors() -> Iterator[list[pykka.ActorRef[Any]]]:
    started: list[pykka.ActorRef[Any]] = []
    yield started
    for ref in started:
        ref.stop()


def _start(actors: list[pykka.ActorRef[Any]], reports_to: Any = None) -> Any:
    ref = VenueActor.start(Matcher(Decimal("0.001")), MarketData(SYMBOLS), reports_to)
    actors.append(ref)
    return ref


def test_venue_actor_when_an_order_is_submitted_then_matches_it_against_the_last_tick(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)
    ref.ask(_tick("100.00"))

    # Act
    result = ref.ask(SubmitOrder(_order("m-1", OrderType.MARKET, None)))

    # Assert
    assert result.outcome is Outcome.FILLED
    assert [e.price for e in result.executions] == [Decimal("100.00")]


def test_venue_actor_when_a_tick_causes_executions_then_reports_them_to_its_reports_to_actor(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    inbox = _Inbox.start()
    actors.append(inbox)
    ref = _start(actors, reports_to=inbox)
    ref.ask(_tick("100.00"))
    ref.ask(SubmitOrder(_order("l-1", OrderType.LIMIT, "95.00")))

    # Act
    executions = ref.ask(_tick("94.00", ts=2.0))
    reports = inbox.ask("read")

    # Assert
    assert [e.execution_id for e in executions] == ["l-1:1"]
    assert reports == [ExecutionsReported(tuple(executions), 2.0)]


def test_venue_actor_when_a_tick_is_stale_then_ignores_it_for_matching(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)
    ref.ask(_tick("100.00", ts=5.0))
    ref.ask(SubmitOrder(_order("l-1", OrderType.LIMIT, "95.00")))

    # Act
    executions = ref.ask(_tick("94.00", ts=4.0))

    # Assert
    assert executions == []
    assert ref.ask(CountResting()) == 1


def test_venue_actor_when_asked_to_cancel_and_count_then_does_both_for_resting_orders(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)
    ref.ask(SubmitOrder(_order("l-1", OrderType.LIMIT, "95.00")))
    ref.ask(SubmitOrder(_order("l-2", OrderType.LIMIT, "96.00")))

    # Act
    removed = ref.ask(CancelResting("l-1"))
    again = ref.ask(CancelResting("l-1"))
    count = ref.ask(CountResting())

    # Assert
    assert removed == Decimal(1)
    assert again is None
    assert count == 1


def test_venue_actor_when_asked_something_outside_its_protocol_then_raises(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    # Arrange
    ref = _start(actors)

    # Act
    with pytest.raises(UnknownMessage) as raised:
        ref.ask("cancel everything")

    # Assert
    assert raised.value.code == "UNKNOWN_MESSAGE"
