"""The reconciliation driver over an engine without the simulated venue and the fault-injecting
venue; and a fill the ledger refuses, decided as a discrepancy."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from oms.actors.supervisor import Unbookable
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.events import (
    DoubtedRequest,
    new_order_accepted,
    new_order_in_doubt,
    new_order_placed,
)
from oms.domain.limits import TradingState
from oms.domain.orders import apply
from oms.engine.application import Engine
from oms.engine.core import EngineCore
from oms.engine.reconciliation import (
    Discrepancies,
    Halt,
    Reconciler,
    ReconcileReport,
    Resolver,
    place_in_doubt,
)
from oms.venue.faulty import Fault, FaultyVenue
from oms.venue.port import PlaceRequest
from oms.venue.reconcile import Discrepancy, DiscrepancyKind, Resolve
from tests.unit.engine_helpers import fill, make_engine, place, tick


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
