"""Builders shared by the engine and actor tests: a started engine, ticks, orders."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

from oms.config import Settings
from oms.domain.commands import AmendOrder, ApplyFill, CancelOrder, PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.limits import RiskLimits
from oms.engine.core import EngineCore
from oms.marketdata import BookLevel, Tick
from oms.store.memory import MemoryOrderRepository

FUNDS = {"USD": Decimal(1_000_000), "BTC": Decimal(10), "ETH": Decimal(100), "SOL": Decimal(1000)}
_ids = itertools.count(1)


def make_engine(
    *,
    max_live: int = 1000,
    simulated_venue: bool = True,
    limits: RiskLimits | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> EngineCore:
    """A started engine with a fixed clock and the accounts a1, a2 opened; with ``loop`` its
    dispatcher runs in turns of that loop (call it there)."""
    engine = EngineCore(
        Settings(max_live_order_actors=max_live, simulated_feed=False),
        repository=MemoryOrderRepository(),
        default_limits=limits or RiskLimits(price_collar=Decimal("0.10")),
        clock=lambda: 1000.0,
        simulated_venue=simulated_venue,
    )
    engine.start(loop)
    opened = [engine.open_account(account, FUNDS) for account in ("a1", "a2")]
    if loop is not None:
        engine.wait_idle()  # on the loop nothing may block on the engine: its turns run here
    for opening in opened:
        opening.get(timeout=5)
    return engine


def tick(
    symbol: str = "BTC-USD",
    bid: str = "100.00",
    ask: str = "100.10",
    size: str = "1",
    ts: float = 1000.0,
) -> Tick:
    """A one-level book: ``size`` at ``bid`` and at ``ask``; last price at the bid."""
    b, a, q = Decimal(bid), Decimal(ask), Decimal(size)
    return Tick(symbol, b, b, a, (BookLevel(b, q),), (BookLevel(a, q),), ts)


def place(
    *,
    account: str = "a1",
    side: Side = Side.BUY,
    kind: OrderType = OrderType.LIMIT,
    quantity: str = "0.5",
    price: str | None = "100.10",
    tif: TimeInForce = TimeInForce.GTC,
    symbol: str = "BTC-USD",
    order_id: str | None = None,
) -> PlaceOrder:
    """A PlaceOrder with fresh ids."""
    n = next(_ids)
    return PlaceOrder(
        f"place-{n}",
        order_id or f"o-{n}",
        f"cl-{n}",
        account,
        symbol,
        side,
        kind,
        Decimal(quantity),
        None if price is None else Decimal(price),
        tif,
        1000.0,
    )


def cancel(order_id: str, account: str = "a1") -> CancelOrder:
    """A CancelOrder with a fresh id."""
    return CancelOrder(f"cancel-{next(_ids)}", order_id, account, 1000.0)


def amend(
    order_id: str, *, quantity: str | None = None, price: str | None = None, account: str = "a1"
) -> AmendOrder:
    """An AmendOrder with a fresh id."""
    return AmendOrder(
        f"amend-{next(_ids)}",
        order_id,
        account,
        1000.0,
        None if quantity is None else Decimal(quantity),
        None if price is None else Decimal(price),
    )


def fill(order_id: str, quantity: str, price: str, account: str = "a1") -> ApplyFill:
    """An external execution with a fresh id."""
    return ApplyFill(
        f"x-{next(_ids)}",
        order_id,
        account,
        Decimal(quantity),
        Decimal(price),
        Decimal("0.01"),
        1000.0,
    )
