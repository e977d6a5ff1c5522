"""Reconciliation through the ccxt adapter on a fake Binance: real ccxt over real HTTP on
127.0.0.1, Binance's own shapes (its trades name only the exchange's order id).

The engine here has no venue of its own (its orders' fills come from outside), so what the
exchange did is known to it only through reconciliation, as after lost execution reports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from oms.config import Settings
from oms.domain.commands import ApplyFill, PlaceOrder
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.events import OrderDoubtResolved, OrderFilled, OrderInDoubt
from oms.domain.instruments import Instrument
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.orders import Order
from oms.domain.reasons import OrderCheckReason
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.engine.reconciliation import (
    Discrepancies,
    EngineResolver,
    Halt,
    Reconciler,
    Resolver,
    place_in_doubt,
)
from oms.marketdata import BookLevel, Tick
from oms.store.memory import MemoryOrderRepository
from oms.venue.ccxt_venue import CcxtSettings, CcxtVenue, build_exchange
from oms.venue.gateway import VenueGateway
from oms.venue.port import PlaceRequest
from oms.venue.reconcile import Discrepancy, DiscrepancyKind, Resolve
from oms.venue.trades import trade_fill_id
from tests.fake_binance import FakeBinance

pytestmark = pytest.mark.integration

SYMBOL = "BTC-USDT"
FUNDS = {"USDT": Decimal(1_000_000), "BTC": Decimal(10)}


@dataclass
class Recorded(Resolver, Halt):
    """What reconciliation resolved and halted; the halt applied to the engine."""

    engine: Engine
    resolved: list[Resolve] = field(default_factory=list)
    halted: list[Discrepancy] = field(default_factory=list)

    async def resolve(self, resolve: Resolve) -> None:
        self.resolved.append(resolve)

    async def halt(self, discrepancy: Discrepancy, at: float) -> None:
        self.halted.append(discrepancy)
        await self.engine.set_kill_switch(TradingState.HALTED, discrepancy.account_id)


@dataclass
class Rig:
    """The fake exchange, its ccxt port, the engine and a reconciler over both."""

    fake: FakeBinance
    port: CcxtVenue
    engine: Engine
    recorded: Recorded
    reconciler: Reconciler


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    fake = FakeBinance(prices={"BTCUSDT": Decimal("100.00")}, hang_s=3.0)
    await fake.start()
    port = CcxtVenue(
        build_exchange(CcxtSettings("binance", "key", "secret", url=fake.url, timeout_s=0.5))
    )
    await port.open()
    rules = (await port.instrument_rules())[SYMBOL]
    core = EngineCore(
        Settings(simulated_feed=False, symbols=(SYMBOL,)),
        repository=MemoryOrderRepository(),
        instruments=(Instrument(SYMBOL, "BTC", "USDT", rules.tick_size, rules.lot_size),),
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        simulated_venue=False,
    )
    engine = Engine(core)
    engine.start()
    await engine.open_account("a1", FUNDS)
    bid, ask = Decimal("100.00"), Decimal("100.10")
    engine.on_tick(
        Tick(SYMBOL, bid, bid, ask, (BookLevel(bid, Decimal(5)),), (BookLevel(ask, Decimal(5)),),
             time.time())
    )  # fmt: skip
    recorded = Recorded(engine)
    reconciler = Reconciler(
        engine=engine,
        venue=port,
        resolver=recorded,
        discrepancies=Discrepancies(recorded),
        in_doubt=lambda _order, _events: None,
        symbols=(SYMBOL,),
        owns=lambda _account: True,
        submit_window_s=30.0,
        lookback_s=3600.0,
    )
    try:
        yield Rig(fake, port, engine, recorded, reconciler)
    finally:
        engine.stop()
        await port.close()
        await fake.stop()


async def _placed(rig: Rig, order_id: str, price: str) -> None:
    """Accepted here, then placed at the exchange under our order id."""
    await rig.engine.place_order(
        PlaceOrder(
            f"place-{order_id}",
            order_id,
            f"cl-{order_id}",
            "a1",
            SYMBOL,
            Side.BUY,
            OrderType.LIMIT,
            Decimal("0.5"),
            Decimal(price),
            TimeInForce.GTC,
            time.time(),
        )
    )
    await rig.engine.idle()
    await rig.port.place(
        PlaceRequest(order_id, SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("0.5"), Decimal(price))
    )


async def test_run_when_the_exchange_filled_an_order_unreported_then_books_it_once(
    rig: Rig,
) -> None:
    # Arrange: the exchange fills the order; no report reaches the engine
    await _placed(rig, "o-1", "100.00")
    rig.fake.trade_at("BTCUSDT", Decimal("99.50"))

    # Act
    first = await rig.reconciler.run("start")
    second = await rig.reconciler.run("timer")
    order = await rig.engine.get_order("o-1")
    events = await rig.engine.order_events("o-1")

    # Assert
    assert (first.booked, first.discrepancies) == (1, ())
    assert (second.booked, second.discrepancies) == (0, ())
    assert order is not None
    assert order.status is OrderStatus.SETTLED
    assert order.filled_quantity == Decimal("0.5")
    (trade,) = rig.fake.trades
    assert {e.command_id for e in events if isinstance(e, OrderFilled)} == {
        trade_fill_id("o-1", str(trade["id"]))
    }
    assert rig.recorded.halted == []


async def test_run_when_the_exchange_holds_an_order_nobody_placed_then_halts_everything(
    rig: Rig,
) -> None:
    await rig.port.place(
        PlaceRequest("stranger", SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("0.1"), Decimal(90))
    )

    report = await rig.reconciler.run("start")

    assert [d.kind for d in report.discrepancies] == [DiscrepancyKind.UNKNOWN_VENUE_ORDER]
    assert report.discrepancies[0].account_id is None
    assert rig.engine.core.risk_book.trading_state() is TradingState.HALTED


async def test_run_when_the_exchange_does_not_answer_then_applies_nothing(rig: Rig) -> None:
    await _placed(rig, "o-2", "100.00")
    rig.fake.trade_at("BTCUSDT", Decimal("99.50"))
    rig.fake.fail_next("GET", "/api/v3/openOrders", 503, {"code": -1001, "msg": "Internal error"})

    report = await rig.reconciler.run("timer")
    order = await rig.engine.get_order("o-2")

    assert report.failed is not None
    assert report.booked == 0
    assert order is not None
    assert order.filled_quantity == 0


# -- in-doubt orders: the gateway's own query is out of the way, reconciliation resolves ------


async def _engine_on_gateway(port: CcxtVenue) -> tuple[Engine, VenueGateway]:
    """An engine trading through the gateway on ``port``, whose own query of a doubt waits an
    hour: within the test, only reconciliation can resolve one."""
    rules = (await port.instrument_rules())[SYMBOL]
    engines: list[Engine] = []

    async def publish(fills: Sequence[ApplyFill]) -> None:
        engines[0].submit(list(fills))

    gateway = VenueGateway(port, publish, query_delay_s=3600.0, poll_s=0.1)
    core = EngineCore(
        Settings(simulated_feed=False, symbols=(SYMBOL,)),
        repository=MemoryOrderRepository(),
        instruments=(Instrument(SYMBOL, "BTC", "USDT", rules.tick_size, rules.lot_size),),
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        gateway=gateway,
    )
    engine = Engine(core)
    engines.append(engine)
    engine.start()
    gateway.start()
    await engine.open_account("a1", FUNDS)
    bid, ask = Decimal("100.00"), Decimal("100.10")
    engine.on_tick(
        Tick(SYMBOL, bid, bid, ask, (BookLevel(bid, Decimal(5)),), (BookLevel(ask, Decimal(5)),),
             time.time())
    )  # fmt: skip
    return engine, gateway


def _resolving(engine: Engine, port: CcxtVenue, clock: Callable[[], float]) -> Reconciler:
    """The service's reconciler: the engine takes the venue's word on an in-doubt order."""
    return Reconciler(
        engine=engine,
        venue=port,
        resolver=EngineResolver(engine),
        discrepancies=Discrepancies(Recorded(engine)),
        in_doubt=place_in_doubt,
        symbols=(SYMBOL,),
        owns=lambda _account: True,
        submit_window_s=30.0,
        lookback_s=3600.0,
        clock=clock,
    )


async def _becomes(engine: Engine, order_id: str, status: OrderStatus) -> Order:
    deadline = time.monotonic() + 10
    order = None
    while time.monotonic() < deadline:
        order = await engine.get_order(order_id)
        if order is not None and order.status is status:
            return order
        await asyncio.sleep(0.05)
    raise AssertionError(f"{order_id} is {order.status if order else None}, not {status}")


def _limit(order_id: str) -> PlaceOrder:
    return PlaceOrder(
        f"place-{order_id}", order_id, f"cl-{order_id}", "a1", SYMBOL, Side.BUY,
        OrderType.LIMIT, Decimal("0.5"), Decimal("99.00"), TimeInForce.GTC, time.time(),
    )  # fmt: skip


async def test_run_when_a_place_answer_was_dropped_and_the_exchange_holds_it_then_accepted(
    rig: Rig,
) -> None:
    # Arrange: the exchange takes the order, its answer never comes; the gateway's query waits
    engine, gateway = await _engine_on_gateway(rig.port)
    try:
        rig.fake.hang_next_place = True
        await engine.place_order(_limit("OMSR1"))
        await _becomes(engine, "OMSR1", OrderStatus.IN_DOUBT)
        reconciler = _resolving(engine, rig.port, time.time)

        # Act
        report = await reconciler.run("timer")
        order = await _becomes(engine, "OMSR1", OrderStatus.ACCEPTED)
        again = await reconciler.run("timer")
        events = await engine.order_events("OMSR1")
    finally:
        await gateway.stop()
        engine.stop()

    # Assert: sent once, resolved on the exchange's word, never rejected, taken once
    posts = [method for method, path in rig.fake.requests if path == "/api/v3/order"]
    assert posts.count("POST") == 1
    assert (report.resolved, report.discrepancies) == (1, ())
    assert (again.resolved, again.discrepancies) == (0, ())
    assert order.reject_reason is None
    assert [type(e) for e in events][-2:] == [OrderInDoubt, OrderDoubtResolved]


async def test_run_when_the_exchange_never_got_the_place_then_rejected_only_after_the_window(
    rig: Rig,
) -> None:
    # Arrange: the place fails at the exchange with no word on it; the gateway's query waits
    engine, gateway = await _engine_on_gateway(rig.port)
    later = [0.0]
    try:
        rig.fake.fail_next("POST", "/api/v3/order", 503, {"code": -1001, "msg": "Internal error"})
        await engine.place_order(_limit("OMSR2"))
        await _becomes(engine, "OMSR2", OrderStatus.IN_DOUBT)
        reconciler = _resolving(engine, rig.port, lambda: time.time() + later[0])

        # Act: within the submit window, then once it has passed
        within = await reconciler.run("timer")
        held = await _becomes(engine, "OMSR2", OrderStatus.IN_DOUBT)
        later[0] = 60.0
        after = await reconciler.run("timer")
        order = await _becomes(engine, "OMSR2", OrderStatus.REJECTED)
        account = await engine.account("a1")
    finally:
        await gateway.stop()
        engine.stop()

    # Assert
    assert (within.resolved, within.pending, held.reject_reason) == (0, 1, None)
    assert (after.resolved, after.discrepancies) == (1, ())
    assert order.reject_reason is OrderCheckReason.VENUE_ORDER_NOT_FOUND
    assert account.balances["USDT"].reserved == 0
