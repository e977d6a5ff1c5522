"""Reconciliation through the ccxt adapter on a fake Binance: real ccxt over real HTTP on
127.0.0.1, Binance's own shapes (its trades name only the exchange's order id).

The engine here has no venue of its own (its orders' fills come from outside), so what the
exchange did is known to it only through reconciliation, as after lost execution reports.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from oms.config import Settings
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.events import OrderFilled
from oms.domain.instruments import Instrument
from oms.domain.limits import RiskLimits, TradingState
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.engine.reconciliation import Discrepancies, Halt, Reconciler, Resolver
from oms.marketdata import BookLevel, Tick
from oms.store.memory import MemoryOrderRepository
from oms.venue.ccxt_venue import CcxtSettings, CcxtVenue, build_exchange
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
