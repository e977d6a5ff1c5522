"""The reconciliation driver over an engine without the simulated venue and the fault-injecting
venue; and a fill the ledger refuses, decided as a discrepancy."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from oms.actors.supervisor import Unbookable
from oms.config import Settings
from oms.domain.commands import ApplyFill
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.events import (
    DoubtedRequest,
    OrderDoubtResolved,
    OrderInDoubt,
    VenueWord,
    new_order_accepted,
    new_order_in_doubt,
    new_order_placed,
)
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.orders import Order, apply
from oms.domain.reasons import OrderCheckReason
from oms.engine.application import Engine
from oms.engine.core import EngineCore
from oms.engine.reconciliation import (
    Discrepancies,
    EngineResolver,
    Halt,
    Reconciler,
    ReconcileReport,
    Resolver,
    place_in_doubt,
)
from oms.store.memory import MemoryOrderRepository
from oms.venue.faulty import Fault, FaultyVenue
from oms.venue.gateway import VenueGateway
from oms.venue.port import PlaceRequest
from oms.venue.reconcile import Discrepancy, DiscrepancyKind, Resolve
from tests.unit.engine_helpers import FUNDS, fill, make_engine, place, tick


@dataclass
class Recorded(Resolver, Halt):
    """What reconciliation resolved and halted, and the halt applied to the engine."""

    engine: Engine
    resolved: list[Resolve] = field(default_factory=list)
    halted: list[Discrepancy] = field(default_factory=list)

    async def resolve(self, resolve: Resolve) -> None:
        self.resolved.append(resolve)

    async def halt(self, discrepancy: Discrepancy, at: float) -> None:
        self.halted.append(discrepancy)
        await self.engine.set_kill_switch(TradingState.HALTED, discrepancy.account_id)


@pytest.fixture
def core() -> Iterator[EngineCore]:
    engine = make_engine(simulated_venue=False)
    engine.on_tick(tick())
    engine.wait_idle()
    yield engine
    engine.stop()


def _reconciler(engine: Engine, venue: FaultyVenue, recorded: Recorded) -> Reconciler:
    return Reconciler(
        engine=engine,
        venue=venue,
        resolver=recorded,
        discrepancies=Discrepancies(recorded),
        in_doubt=lambda _order, _events: None,
        symbols=("BTC-USD",),
        owns=lambda _account: True,
        submit_window_s=30.0,
        lookback_s=3600.0,
        clock=lambda: 1000.0,
    )


async def _placed_at_venue(core: EngineCore, venue: FaultyVenue) -> str:
    order = core.place_order(place(quantity="1", price="100.10")).get(timeout=5)
    core.wait_idle()
    request = PlaceRequest(
        order.order_id, "BTC-USD", Side.BUY, OrderType.LIMIT, Decimal(1), Decimal("100.10")
    )
    await venue.place(request)
    return order.order_id


def test_run_when_a_fill_was_missed_then_books_it_once_and_the_next_run_matches_it(
    core: EngineCore,
) -> None:
    async def scenario() -> tuple[ReconcileReport, ReconcileReport, Decimal]:
        # Arrange: an order at the venue traded 0.4 and the report was lost
        engine = Engine(core)
        venue = FaultyVenue(report_faults=[Fault.DROP])
        recorded = Recorded(engine)
        order_id = await _placed_at_venue(core, venue)
        venue.trade(order_id, Decimal("0.4"), 990.0)
        assert venue.reports() == []
        reconciler = _reconciler(engine, venue, recorded)

        # Act
        first = await reconciler.run("timer")
        second = await reconciler.run("timer")
        order = await engine.get_order(order_id)
        assert order is not None
        return first, second, order.filled_quantity

    first, second, filled = asyncio.run(scenario())

    # Assert
    assert (first.booked, first.discrepancies) == (1, ())
    assert (second.booked, second.matched) == (0, 2)
    assert filled == Decimal("0.4")


def test_run_when_the_venue_has_an_order_we_do_not_know_then_halts_every_account(
    core: EngineCore,
) -> None:
    async def scenario() -> tuple[Recorded, Reconciler]:
        engine = Engine(core)
        venue = FaultyVenue()
        recorded = Recorded(engine)
        await venue.place(
            PlaceRequest("stranger", "BTC-USD", Side.SELL, OrderType.LIMIT, Decimal(1), Decimal(99))
        )
        reconciler = _reconciler(engine, venue, recorded)
        await reconciler.run("start")
        return recorded, reconciler

    recorded, reconciler = asyncio.run(scenario())

    (halted,) = recorded.halted
    assert halted.kind is DiscrepancyKind.UNKNOWN_VENUE_ORDER
    assert halted.account_id is None
    assert reconciler.discrepancies.by_kind == {"UNKNOWN_VENUE_ORDER": 1}
    assert core.risk_book.trading_state() is TradingState.HALTED


def test_run_when_the_venue_does_not_answer_then_applies_nothing_and_says_why(
    core: EngineCore,
) -> None:
    async def scenario() -> ReconcileReport:
        engine = Engine(core)
        venue = FaultyVenue(calls=[Fault.NONE, Fault.SERVER_ERROR])
        order_id = await _placed_at_venue(core, venue)
        venue.trade(order_id, Decimal("0.4"), 990.0)
        return await _reconciler(engine, venue, Recorded(engine)).run("timer")

    report = asyncio.run(scenario())

    assert report.failed == "VENUE_UNAVAILABLE"
    assert report.booked == 0


def test_settle_when_a_fill_is_beyond_the_accounts_funds_then_halts_it_and_tells_listeners(
    core: EngineCore,
) -> None:
    # Arrange: a BUY reserving ~100 USD, then a fill at a price far beyond every USD it has
    heard: list[Unbookable] = []
    core.on_unbookable(heard.append)
    order = core.place_order(place(quantity="1", price="100.10")).get(timeout=5)
    core.wait_idle()

    # Act
    core.apply_fill(fill(order.order_id, "1", "5000000")).get(timeout=5)
    core.wait_idle()

    # Assert
    (refused,) = heard
    assert refused.code == "INSUFFICIENT_FUNDS"
    assert refused.account_id == "a1"
    assert core.risk_book.trading_state("a1") is TradingState.HALTED
    assert core.get_order(order.order_id).get(timeout=5).status is OrderStatus.SETTLED


def test_unbookable_when_recorded_then_a_discrepancy_halts_the_account(core: EngineCore) -> None:
    async def scenario() -> Recorded:
        recorded = Recorded(Engine(core))
        refused = Unbookable("a1", "o-1", "x-1", "INSUFFICIENT_FUNDS", "needs more")
        await Discrepancies(recorded).unbookable(refused, 1000.0)
        return recorded

    recorded = asyncio.run(scenario())

    (halted,) = recorded.halted
    assert halted.kind is DiscrepancyKind.UNBOOKABLE_FILL
    assert (halted.account_id, halted.order_id) == ("a1", "o-1")
    assert "INSUFFICIENT_FUNDS" in halted.detail


def test_place_in_doubt_when_the_place_went_in_doubt_then_when_else_none() -> None:
    # Arrange: an accepted order; its place, or its cancel, went in doubt
    placed = new_order_placed(
        "o-1", 1, "place-o-1", 999.0, "cl-o-1", "a1", "BTC-USD", Side.BUY, OrderType.LIMIT,
        Decimal(1), Decimal("100.10"), TimeInForce.GTC,
    )  # fmt: skip
    accepted = new_order_accepted("o-1", 2, "place:o-1", 999.0, Decimal("100.10"))
    order = apply(apply(None, placed), accepted)
    doubt = new_order_in_doubt("o-1", 3, "doubt", 1005.0, DoubtedRequest.PLACE, "VENUE_TIMEOUT")
    cancel_doubt = dataclasses.replace(doubt, request=DoubtedRequest.CANCEL)

    # Act
    when = place_in_doubt(apply(order, doubt), [placed, accepted, doubt])
    cancel_only = place_in_doubt(apply(order, cancel_doubt), [placed, accepted, cancel_doubt])
    not_in_doubt = place_in_doubt(order, [placed, accepted])

    # Assert
    assert when == 1005.0
    assert cancel_only is None
    assert not_in_doubt is None


def test_run_when_a_discrepancy_stays_then_it_halts_once_and_every_report_lists_it(
    core: EngineCore,
) -> None:
    async def scenario() -> tuple[Recorded, ReconcileReport, Reconciler]:
        engine = Engine(core)
        venue = FaultyVenue()
        recorded = Recorded(engine)
        await venue.place(
            PlaceRequest("stranger", "BTC-USD", Side.SELL, OrderType.LIMIT, Decimal(1), Decimal(99))
        )
        reconciler = _reconciler(engine, venue, recorded)
        await reconciler.run("start")
        second = await reconciler.run("timer")
        return recorded, second, reconciler

    recorded, second, reconciler = asyncio.run(scenario())

    assert len(recorded.halted) == 1
    assert [d.kind for d in second.discrepancies] == [DiscrepancyKind.UNKNOWN_VENUE_ORDER]
    assert reconciler.discrepancies.by_kind == {"UNKNOWN_VENUE_ORDER": 1}


@pytest.mark.parametrize("quantity", [Decimal("0.4"), Decimal(1)])  # open there, or filled
def test_run_when_an_order_belongs_to_an_account_another_replica_owns_then_leaves_it(
    core: EngineCore, quantity: Decimal
) -> None:
    async def scenario() -> tuple[ReconcileReport, Recorded, Decimal]:
        # Arrange: a2's order at the venue traded, its report lost; this replica owns a1 only
        engine = Engine(core)
        venue = FaultyVenue(report_faults=[Fault.DROP])
        recorded = Recorded(engine)
        order = core.place_order(place(account="a2", quantity="1", price="100.10")).get(timeout=5)
        core.wait_idle()
        await venue.place(
            PlaceRequest(
                order.order_id, "BTC-USD", Side.BUY, OrderType.LIMIT, Decimal(1), Decimal("100.10")
            )
        )
        venue.trade(order.order_id, quantity, 990.0)
        venue.reports()
        reconciler = _reconciler(engine, venue, recorded)
        reconciler.owns = lambda account: account == "a1"

        # Act
        report = await reconciler.run("timer")
        after = await engine.get_order(order.order_id)
        assert after is not None
        return report, recorded, after.filled_quantity

    report, recorded, filled = asyncio.run(scenario())

    # Assert: the replica that owns a2 books it; this one neither books nor halts
    assert (report.booked, report.discrepancies) == (0, ())
    assert recorded.halted == []
    assert filled == 0


# -- in-doubt orders resolved by reconciliation in the running engine -------------------------


@dataclass
class Halts(Halt):
    """The discrepancies reconciliation halted for (none expected here)."""

    halted: list[Discrepancy] = field(default_factory=list)

    async def halt(self, discrepancy: Discrepancy, at: float) -> None:
        self.halted.append(discrepancy)


async def _engine_on_gateway(
    venue: FaultyVenue, query_delay_s: float = 3600.0
) -> tuple[Engine, VenueGateway]:
    """An engine trading through the gateway on ``venue``, whose own query of a doubt waits
    ``query_delay_s`` (an hour: only reconciliation can resolve one within the test)."""

    async def publish(fills: Sequence[ApplyFill]) -> None:
        engine.submit(list(fills))

    gateway = VenueGateway(venue, publish, query_delay_s=query_delay_s, poll_s=0.05)
    core = EngineCore(
        Settings(simulated_feed=False),
        repository=MemoryOrderRepository(),
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        gateway=gateway,
    )
    engine = Engine(core)
    engine.start()
    gateway.start()
    await engine.open_account("a1", FUNDS)
    engine.on_tick(tick(ts=time.time()))
    return engine, gateway


async def _status_becomes(engine: Engine, order_id: str, status: OrderStatus) -> Order:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        order = await engine.get_order(order_id)
        if order is not None and order.status is status:
            return order
        await asyncio.sleep(0.02)
    raise AssertionError(f"{order_id} never became {status}: {order}")


def _doubt_reconciler(engine: Engine, venue: FaultyVenue, clock: Callable[[], float]) -> Reconciler:
    return Reconciler(
        engine=engine,
        venue=venue,
        resolver=EngineResolver(engine),
        discrepancies=Discrepancies(Halts()),
        in_doubt=place_in_doubt,
        symbols=("BTC-USD",),
        owns=lambda _account: True,
        submit_window_s=30.0,
        lookback_s=3600.0,
        clock=clock,
    )


def test_run_when_a_place_answer_was_lost_and_the_venue_holds_it_then_accepted_once() -> None:
    async def scenario() -> tuple[ReconcileReport, Order, list[type[object]], int]:
        # Arrange: the venue takes the order and its answer is lost; the gateway's query waits
        venue = FaultyVenue(calls=[Fault.DROP_ACK])
        engine, gateway = await _engine_on_gateway(venue)
        try:
            placed = await engine.place_order(place(quantity="0.5", price="99.00"))
            await _status_becomes(engine, placed.order_id, OrderStatus.IN_DOUBT)
            reconciler = _doubt_reconciler(engine, venue, time.time)

            # Act
            report = await reconciler.run("timer")
            again = await reconciler.run("timer")  # the word is taken once
            order = await _status_becomes(engine, placed.order_id, OrderStatus.ACCEPTED)
            events = await engine.order_events(placed.order_id)
            return report, order, [type(e) for e in events], again.resolved
        finally:
            await gateway.stop()
            engine.stop()

    report, order, kinds, resolved_again = asyncio.run(scenario())

    # Assert
    assert (report.resolved, report.discrepancies) == (1, ())
    assert resolved_again == 0
    assert order.reject_reason is None
    assert kinds[-2:] == [OrderInDoubt, OrderDoubtResolved]


def test_run_when_the_venue_never_got_the_place_then_rejected_only_after_the_window() -> None:
    async def scenario() -> tuple[ReconcileReport, ReconcileReport, Order, Decimal]:
        # Arrange: the place never reached the venue and its answer is a timeout
        venue = FaultyVenue(calls=[Fault.TIMEOUT])
        engine, gateway = await _engine_on_gateway(venue)
        later = [0.0]
        try:
            placed = await engine.place_order(place(quantity="0.5", price="99.00"))
            await _status_becomes(engine, placed.order_id, OrderStatus.IN_DOUBT)
            reconciler = _doubt_reconciler(engine, venue, lambda: time.time() + later[0])

            # Act: within the submit window, then after it
            within = await reconciler.run("timer")
            still = await _status_becomes(engine, placed.order_id, OrderStatus.IN_DOUBT)
            assert still.reject_reason is None
            later[0] = 60.0
            after = await reconciler.run("timer")
            order = await _status_becomes(engine, placed.order_id, OrderStatus.REJECTED)
            account = await engine.account("a1")
            return within, after, order, account.balances["USD"].reserved
        finally:
            await gateway.stop()
            engine.stop()

    within, after, order, reserved = asyncio.run(scenario())

    # Assert
    assert (within.resolved, within.pending) == (0, 1)
    assert (after.resolved, after.discrepancies) == (1, ())
    assert order.reject_reason is OrderCheckReason.VENUE_ORDER_NOT_FOUND
    assert reserved == 0


def test_resolve_doubt_when_the_order_is_not_in_doubt_or_unknown_then_false_and_unchanged(
    core: EngineCore,
) -> None:
    # Arrange: an order accepted and working (not in doubt)
    order = core.place_order(place(quantity="0.5", price="99.00")).get(timeout=5)
    core.wait_idle()
    before = core.get_order(order.order_id).get(timeout=5)

    # Act
    working = core.resolve_doubt(order.order_id, VenueWord.NOT_FOUND, Decimal(0)).get(timeout=5)
    unknown = core.resolve_doubt("no-such-order", VenueWord.OPEN, Decimal(0)).get(timeout=5)
    core.wait_idle()

    # Assert
    assert (working, unknown) == (False, False)
    assert core.get_order(order.order_id).get(timeout=5) == before


def test_run_when_reconciliation_answers_before_the_gateways_query_then_the_word_is_taken_once() -> (
    None
):
    async def scenario() -> tuple[Order, list[type[object]], object, int]:
        # Arrange: the place's answer is lost; the gateway's query answers half a second later
        venue = FaultyVenue(calls=[Fault.DROP_ACK])
        engine, gateway = await _engine_on_gateway(venue, query_delay_s=0.5)
        try:
            placed = await engine.place_order(place(quantity="0.5", price="99.00"))
            await _status_becomes(engine, placed.order_id, OrderStatus.IN_DOUBT)
            reconciler = _doubt_reconciler(engine, venue, time.time)

            # Act: reconciliation first, then the gateway's answer arrives
            report = await reconciler.run("timer")
            await asyncio.sleep(1.0)
            await engine.idle()
            order = await _status_becomes(engine, placed.order_id, OrderStatus.ACCEPTED)
            events = await engine.order_events(placed.order_id)
            return order, [type(e) for e in events], engine.failure, report.resolved
        finally:
            await gateway.stop()
            engine.stop()

    order, kinds, failure, resolved = asyncio.run(scenario())

    # Assert: one resolution on record, and the late word changed nothing (no actor failed)
    assert resolved == 1
    assert failure is None
    assert order.reject_reason is None
    assert kinds.count(OrderDoubtResolved) == 1
