"""The venue gateway on a scripted in-memory port: doubts are queried, never sent twice; the
venue's trades become fills once each."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal

from oms.domain.commands import ApplyFill
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import DoubtedRequest, VenueWord
from oms.venue import VenueOrder
from oms.venue.gateway import VenueGateway
from oms.venue.port import (
    AmendRequest,
    AmendSupport,
    InstrumentRules,
    PlaceRequest,
    RefusalReason,
    UnknownReason,
    VenueOrderState,
    VenueOrderStatus,
    VenueOutcomeUnknown,
    VenuePort,
    VenueRefused,
    VenueTrade,
)

ORDER = VenueOrder(
    "OID1", "a1", "BTC-USDT", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal("0.5"),
    Decimal(100), Decimal(100),
)  # fmt: skip


def _state(status: VenueOrderStatus, filled: str = "0") -> VenueOrderState:
    return VenueOrderState(
        "OID1", "V1", "BTC-USDT", status, Decimal("0.5"), Decimal(filled), Decimal(100), None, None
    )


class ScriptedVenue(VenuePort):
    """Answers each call from a script: a state, or an error to raise."""

    def __init__(self) -> None:
        self.places: list[object] = []
        self.fetches: list[object] = []
        self.cancels: list[object] = []
        self.trades: list[VenueTrade] = []
        self.calls: list[str] = []

    @property
    def amend_support(self) -> AmendSupport:
        return AmendSupport.UNSUPPORTED

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def instrument_rules(self) -> Mapping[str, InstrumentRules]:
        return {}

    async def place(self, request: PlaceRequest) -> VenueOrderState:
        self.calls.append("place")
        return self._next(self.places)

    async def amend(self, request: AmendRequest) -> VenueOrderState:
        raise VenueRefused(RefusalReason.AMEND_UNSUPPORTED, "no amend")

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrderState:
        self.calls.append("cancel")
        return self._next(self.cancels)

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrderState:
        self.calls.append("fetch")
        return self._next(self.fetches)

    async def open_orders(self, symbol: str | None = None) -> Sequence[VenueOrderState]:
        return []

    async def my_trades(self, symbol: str, since: float | None = None) -> Sequence[VenueTrade]:
        return list(self.trades)

    @staticmethod
    def _next(script: list[object]) -> VenueOrderState:
        answer = script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, VenueOrderState)
        return answer


class Answers:
    """What the gateway told the engine, in order."""

    def __init__(self) -> None:
        self.log: list[tuple[object, ...]] = []

    def said(self, order_id: str, word: VenueWord, venue_filled: Decimal) -> None:
        self.log.append(("said", order_id, word, venue_filled))

    def refused(self, order_id: str, reason: str, detail: str) -> None:
        self.log.append(("refused", order_id, reason))

    def in_doubt(self, order_id: str, request: DoubtedRequest, reason: str) -> None:
        self.log.append(("in_doubt", order_id, request, reason))

    def cancelled(self, order_id: str, leaves: Decimal | None) -> None:
        self.log.append(("cancelled", order_id, leaves))


async def _gateway(
    venue: ScriptedVenue, published: list[ApplyFill]
) -> tuple[VenueGateway, Answers]:
    async def publish(fills: Sequence[ApplyFill]) -> None:
        published.extend(fills)

    gateway = VenueGateway(venue, publish, query_delay_s=0.01, poll_s=0.01)
    answers = Answers()
    gateway.bind(answers)
    return gateway, answers


async def _settle(answers: Answers, count: int) -> None:
    for _ in range(200):
        if len(answers.log) >= count:
            return
        await asyncio.sleep(0.01)


async def test_place_when_unknown_and_the_query_fails_once_then_queried_again_never_placed_again() -> (
    None
):
    # Arrange
    venue = ScriptedVenue()
    venue.places = [VenueOutcomeUnknown(UnknownReason.TIMEOUT, "read timed out")]
    venue.fetches = [
        VenueOutcomeUnknown(UnknownReason.UNAVAILABLE, "503"),
        _state(VenueOrderStatus.OPEN),
    ]
    gateway, answers = await _gateway(venue, [])

    # Act
    gateway.place(ORDER)
    await _settle(answers, 2)

    # Assert
    assert answers.log == [
        ("in_doubt", "OID1", DoubtedRequest.PLACE, "VENUE_TIMEOUT"),
        ("said", "OID1", VenueWord.OPEN, Decimal(0)),
    ]
    assert venue.calls == ["place", "fetch", "fetch"]
    await gateway.stop()


async def test_place_when_unknown_and_the_venue_never_had_it_then_not_found_is_its_word() -> None:
    venue = ScriptedVenue()
    venue.places = [VenueOutcomeUnknown(UnknownReason.UNAVAILABLE, "503")]
    venue.fetches = [VenueRefused(RefusalReason.ORDER_NOT_FOUND, "-2013")]
    gateway, answers = await _gateway(venue, [])

    gateway.place(ORDER)
    await _settle(answers, 2)

    assert answers.log[-1] == ("said", "OID1", VenueWord.NOT_FOUND, Decimal(0))
    assert venue.calls.count("place") == 1
    await gateway.stop()


async def test_place_when_refused_then_refused_with_the_venue_reason() -> None:
    venue = ScriptedVenue()
    venue.places = [VenueRefused(RefusalReason.INSUFFICIENT_FUNDS, "-2010")]
    gateway, answers = await _gateway(venue, [])

    gateway.place(ORDER)
    await _settle(answers, 1)

    assert answers.log == [("refused", "OID1", "VENUE_INSUFFICIENT_FUNDS")]
    await gateway.stop()


async def test_cancel_when_refused_as_unknown_order_then_asked_and_its_fills_are_due() -> None:
    venue = ScriptedVenue()
    venue.cancels = [VenueRefused(RefusalReason.ORDER_NOT_FOUND, "-2011")]
    venue.fetches = [_state(VenueOrderStatus.FILLED, "0.5")]
    gateway, answers = await _gateway(venue, [])

    gateway.cancel(ORDER)
    await _settle(answers, 1)

    assert answers.log == [("cancelled", "OID1", Decimal(0))]  # nothing left to take out
    await gateway.stop()


async def test_trades_when_read_twice_then_each_becomes_one_fill_with_a_quote_fee() -> None:
    # Arrange: the order rests at the venue, which then reports its trade (fee in BTC).
    venue = ScriptedVenue()
    venue.places = [_state(VenueOrderStatus.OPEN)]
    trade = VenueTrade(
        "T9", "V1", None, "BTC-USDT", Side.BUY, Decimal("0.5"), Decimal(100),
        Decimal("0.0005"), "BTC", 1000.0,
    )  # fmt: skip
    venue.trades = [trade]
    published: list[ApplyFill] = []
    gateway, answers = await _gateway(venue, published)

    # Act: placed, then the poller reads the same trade on several rounds.
    gateway.place(ORDER)
    await _settle(answers, 1)
    gateway.start()
    await asyncio.sleep(0.1)
    await gateway.stop()

    # Assert
    assert [(f.command_id, f.quantity, f.fee) for f in published] == [
        ("OID1:T9", Decimal("0.5"), Decimal("0.05"))
    ]
