"""The engine trading through the venue gateway and the ccxt adapter on a fake Binance.

Real ccxt over real HTTP to the fake exchange on 127.0.0.1; the engine on its dispatcher thread,
the gateway on this test's loop. The fills the gateway reads from the venue come back into the
engine as ``ApplyFill`` commands (what the ``executions`` topic carries in ``oms serve``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import pytest

from oms.config import Settings
from oms.domain.commands import AmendOrder, ApplyFill, CancelOrder, PlaceOrder
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.events import AmendRejected, OrderInDoubt
from oms.domain.instruments import Instrument
from oms.domain.limits import RiskLimits
from oms.domain.orders import Order
from oms.domain.reasons import OrderCheckReason
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.engine.ports import AccountRecord, OrderQuery, executions_of
from oms.marketdata import BookLevel, Tick
from oms.store.memory import MemoryOrderRepository
from oms.venue.ccxt_venue import CcxtSettings, CcxtVenue, build_exchange
from oms.venue.gateway import VenueGateway
from tests.fake_binance import FakeBinance

pytestmark = pytest.mark.integration

SYMBOL = "BTC-USDT"
FUNDS = {"USDT": Decimal(1_000_000), "BTC": Decimal(10)}


@dataclass
class Rig:
    """The fake exchange, the engine and its gateway."""

    fake: FakeBinance
    engine: Engine
    gateway: VenueGateway


async def _engine_on(
    port: CcxtVenue, repository: MemoryOrderRepository, *, query_delay_s: float
) -> tuple[Engine, VenueGateway]:
    """A started engine trading through ``port``, its fills routed straight back into it."""
    rules = (await port.instrument_rules())[SYMBOL]
    instrument = Instrument(SYMBOL, "BTC", "USDT", rules.tick_size, rules.lot_size)
    engines: list[Engine] = []

    async def publish(fills: Sequence[ApplyFill]) -> None:
        engines[0].submit(list(fills))

    gateway = VenueGateway(port, publish, query_delay_s=query_delay_s, poll_s=0.1)
    core = EngineCore(
        Settings(simulated_feed=False, symbols=(SYMBOL,)),
        repository=repository,
        instruments=(instrument,),
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        gateway=gateway,
    )
    engine = Engine(core)
    engines.append(engine)
    engine.start()
    gateway.start()
    return engine, gateway


def _tick(engine: Engine) -> None:
    bid, ask = Decimal("100.00"), Decimal("100.10")
    bids, asks = (BookLevel(bid, Decimal(5)),), (BookLevel(ask, Decimal(5)),)
    engine.on_tick(Tick(SYMBOL, bid, bid, ask, bids, asks, time.time()))


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    exchange = FakeBinance(prices={"BTCUSDT": Decimal("100.00")}, hang_s=3.0)
    await exchange.start()
    yield exchange
    await exchange.stop()


@pytest.fixture
async def port(fake: FakeBinance) -> AsyncIterator[CcxtVenue]:
    adapter = CcxtVenue(
        build_exchange(CcxtSettings("binance", "key", "secret", url=fake.url, timeout_s=0.5))
    )
    await adapter.open()
    yield adapter
    await adapter.close()


@pytest.fixture
async def rig(fake: FakeBinance, port: CcxtVenue) -> AsyncIterator[Rig]:
    engine, gateway = await _engine_on(port, MemoryOrderRepository(), query_delay_s=0.3)
    await engine.open_account("a1", FUNDS)
    _tick(engine)
    try:
        yield Rig(fake, engine, gateway)
    finally:
        await gateway.stop()
        engine.stop()


def _limit(order_id: str, price: str, quantity: str = "0.5") -> PlaceOrder:
    return PlaceOrder(
        f"place-{order_id}", order_id, f"cl-{order_id}", "a1", SYMBOL, Side.BUY,
        OrderType.LIMIT, Decimal(quantity), Decimal(price), TimeInForce.GTC, time.time(),
    )  # fmt: skip


async def _until(engine: Engine, order_id: str, status: OrderStatus) -> Order:
    """The order once it reaches ``status`` (fails after 10 s)."""
    deadline = time.monotonic() + 10
    order = None
    while time.monotonic() < deadline:
        order = await engine.get_order(order_id)
        if order is not None and order.status is status:
            return order
        await asyncio.sleep(0.05)
    raise AssertionError(f"{order_id} is {order.status if order else None}, not {status}")


async def test_place_when_it_crosses_at_the_venue_then_filled_there_and_settled(rig: Rig) -> None:
    await rig.engine.place_order(_limit("OMSA1", "100.10"))

    order = await _until(rig.engine, "OMSA1", OrderStatus.SETTLED)

    assert rig.fake.order("OMSA1").status == "FILLED"
    assert order.filled_quantity == Decimal("0.5")
    assert order.average_fill_price == Decimal("100.10")


async def test_place_when_its_answer_never_comes_then_in_doubt_then_resolved_by_the_query(
    rig: Rig,
) -> None:
    # Arrange: the venue takes the order, but its answer is held past the client's timeout.
    rig.fake.hang_next_place = True

    # Act
    await rig.engine.place_order(_limit("OMSB1", "99.00"))
    await _until(rig.engine, "OMSB1", OrderStatus.IN_DOUBT)
    resolved = await _until(rig.engine, "OMSB1", OrderStatus.ACCEPTED)
    rig.fake.trade_at("BTCUSDT", Decimal("98.00"))
    settled = await _until(rig.engine, "OMSB1", OrderStatus.SETTLED)

    # Assert: sent once, never rejected, in doubt on record, then filled there.
    posts = [method for method, path in rig.fake.requests if path == "/api/v3/order"]
    assert posts.count("POST") == 1
    assert resolved.reject_reason is None
    events = await rig.engine.order_events("OMSB1")
    doubts = [e for e in events if isinstance(e, OrderInDoubt)]
    assert [d.reason for d in doubts] == ["VENUE_TIMEOUT"]
    assert settled.filled_quantity == Decimal("0.5")


async def test_place_when_the_venue_never_got_it_then_rejected_only_on_its_word(rig: Rig) -> None:
    rig.fake.fail_next("POST", "/api/v3/order", 503, {"code": -1001, "msg": "Internal error"})

    await rig.engine.place_order(_limit("OMSC1", "99.00"))
    order = await _until(rig.engine, "OMSC1", OrderStatus.REJECTED)

    assert order.reject_reason is OrderCheckReason.VENUE_ORDER_NOT_FOUND
    assert ("GET", "/api/v3/order") in rig.fake.requests  # the query said so
    account = await rig.engine.account("a1")
    assert account.balances["USDT"].reserved == 0


async def test_place_when_balance_is_short_at_the_venue_then_rejected_with_its_reason(
    rig: Rig,
) -> None:
    rig.fake.balances["USDT"] = Decimal(1)

    await rig.engine.place_order(_limit("OMSD1", "99.00"))
    order = await _until(rig.engine, "OMSD1", OrderStatus.REJECTED)

    assert order.reject_reason is OrderCheckReason.VENUE_INSUFFICIENT_FUNDS


async def test_cancel_when_resting_at_the_venue_then_cancelled_there_and_here(rig: Rig) -> None:
    await rig.engine.place_order(_limit("OMSE1", "95.00"))
    await _until(rig.engine, "OMSE1", OrderStatus.ACCEPTED)

    await rig.engine.cancel_order(CancelOrder("cancel-OMSE1", "OMSE1", "a1", time.time()))
    order = await _until(rig.engine, "OMSE1", OrderStatus.CANCELLED)

    assert rig.fake.order("OMSE1").status == "CANCELED"
    assert order.filled_quantity == 0


async def test_restart_when_an_order_is_in_doubt_then_it_comes_back_in_doubt_and_is_queried(
    fake: FakeBinance, port: CcxtVenue
) -> None:
    # Arrange: a first engine whose place got no answer, stopped before its query is due.
    repository = MemoryOrderRepository()
    first, first_gateway = await _engine_on(port, repository, query_delay_s=60)
    await first.open_account("a1", FUNDS)
    _tick(first)
    fake.hang_next_place = True
    await first.place_order(_limit("OMSF1", "99.00"))
    await _until(first, "OMSF1", OrderStatus.IN_DOUBT)
    await first.durable()
    await first_gateway.stop()
    first.stop()
    open_orders, executions = [], []
    for order in repository.query(OrderQuery(limit=100)):
        stored = repository.load(order.order_id)
        assert stored is not None
        executions.extend(executions_of(stored))
        if not order.is_terminal:
            open_orders.append(stored)

    # Act: a second engine recovers from the store.
    second, second_gateway = await _engine_on(port, repository, query_delay_s=0.3)
    try:
        await second.recover(open_orders, [AccountRecord("a1", FUNDS)], executions)
        resolved = await _until(second, "OMSF1", OrderStatus.ACCEPTED)
    finally:
        await second_gateway.stop()
        second.stop()

    # Assert: restored in doubt, asked (never placed again), resolved by the venue's word.
    assert [o.order.status for o in open_orders] == [OrderStatus.IN_DOUBT]
    posts = [method for method, path in fake.requests if path == "/api/v3/order"]
    assert posts.count("POST") == 1
    assert resolved.reject_reason is None


async def test_amend_when_the_venue_has_no_amend_then_rejected_and_the_order_unchanged(
    rig: Rig,
) -> None:
    await rig.engine.place_order(_limit("OMSG1", "95.00"))
    await _until(rig.engine, "OMSG1", OrderStatus.ACCEPTED)
    for _ in range(100):  # at the venue (an amend while it arrives there is refused) ...
        if "OMSG1" in rig.fake.orders:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # ... and its answer back

    amend = AmendOrder("amend-OMSG1", "OMSG1", "a1", time.time(), None, Decimal("96.00"))
    await rig.engine.amend_order(amend)
    # The answer is the order as it stands: risk, then the venue, decide after it.
    await rig.engine.idle()
    await rig.engine.durable()
    events = await rig.engine.order_events("OMSG1")

    refusals = [e for e in events if isinstance(e, AmendRejected)]
    assert [r.reason for r in refusals] == [OrderCheckReason.VENUE_AMEND_UNSUPPORTED]
    order = await rig.engine.get_order("OMSG1")
    assert order is not None
    assert order.price == Decimal("95.00")
    assert rig.fake.order("OMSG1").price == Decimal("95.00")
    assert ("DELETE", "/api/v3/order") not in rig.fake.requests  # never a cancel-replace
