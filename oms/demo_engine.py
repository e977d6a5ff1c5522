"""The engine part of ``oms demo``: a few thousand orders through the order engine, in process.

Accounts are opened with starting balances, the simulated feed moves the market, a seeded mix of
MARKET and LIMIT orders goes through risk, the venue and settlement, resting orders left at the
end are cancelled, and the demo prints the final states, balances, positions and the proof that
nothing was created or destroyed (per-asset totals over every account, the venue and fees).
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from dataclasses import replace
from decimal import Decimal

from oms.config import Settings
from oms.domain.commands import CancelOrder, PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.engine import Engine
from oms.store.ports import OrderQuery

ACCOUNTS = {
    "alice": {
        "USD": Decimal(5_000_000),
        "BTC": Decimal(20),
        "ETH": Decimal(300),
        "SOL": Decimal(5_000),
    },
    "bob": {
        "USD": Decimal(2_000_000),
        "BTC": Decimal(10),
        "ETH": Decimal(200),
        "SOL": Decimal(2_000),
    },
    # carol is small on purpose: some of her orders are rejected for buying power
    "carol": {"USD": Decimal(150_000), "BTC": Decimal(2), "ETH": Decimal(20), "SOL": Decimal(400)},
}
SIZES = {"BTC-USD": ("0.001", "0.05"), "ETH-USD": ("0.01", "0.5"), "SOL-USD": ("0.1", "20")}
TIMEOUT_S = 30.0


def _orders(engine: Engine, count: int, seed: int) -> list[PlaceOrder]:
    rng = random.Random(seed)
    orders = []
    for n in range(count):
        symbol = rng.choice(list(engine.instruments))
        instrument = engine.instruments[symbol]
        low, high = (Decimal(v) for v in SIZES[symbol])
        lots = rng.randint(1, int((high - low) / instrument.lot_size))
        quantity = low + lots * instrument.lot_size
        side = rng.choice((Side.BUY, Side.SELL))
        kind = OrderType.MARKET if rng.random() < 0.4 else OrderType.LIMIT
        price = None
        tif = rng.choice((TimeInForce.IOC, TimeInForce.FOK))
        if kind is OrderType.LIMIT:
            book = engine.order_book(symbol).get(timeout=TIMEOUT_S)
            mid = book.last_price if book is not None and book.last_price else Decimal(100)
            offset = Decimal(rng.uniform(-0.004, 0.004)).quantize(Decimal("0.0001"))
            price = (mid * (1 + offset)).quantize(instrument.tick_size)
            tif = rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC))
        order_id = uuid.uuid4().hex
        orders.append(
            PlaceOrder(
                command_id=f"place:{order_id}", order_id=order_id,
                client_order_id=f"demo-{n}", account_id=rng.choice(list(ACCOUNTS)),
                symbol=symbol, side=side, type=kind, quantity=quantity, price=price,
                time_in_force=tif, created_at=time.time(),
            )
        )  # fmt: skip
    return orders


def run_engine_demo(settings: Settings, count: int = 3000) -> bool:
    """Drive ``count`` orders through an in-process engine; True when totals are conserved."""
    engine = Engine(replace(settings, simulated_feed=True))
    engine.start()
    try:
        for account_id, balances in ACCOUNTS.items():
            engine.open_account(account_id, balances).get(timeout=TIMEOUT_S)
        engine.advance_market()
        engine.wait_idle()
        before = engine.totals().get(timeout=TIMEOUT_S)
        started = time.perf_counter()
        orders = _orders(engine, count, settings.feed_seed)
        for chunk in range(0, len(orders), 250):
            engine.submit(orders[chunk : chunk + 250])
            engine.advance_market()  # the market moves while orders arrive: resting ones fill
        for _ in range(20):
            engine.advance_market()
        engine.wait_idle(TIMEOUT_S)
        resting = engine.list_orders(OrderQuery(limit=count)).get(timeout=TIMEOUT_S)
        for order in resting:
            if not order.status.is_terminal:
                engine.cancel_order(
                    CancelOrder(
                        f"cancel:{order.order_id}", order.order_id, order.account_id, time.time()
                    )
                )
        engine.wait_idle(TIMEOUT_S)
        elapsed = time.perf_counter() - started
        final = engine.list_orders(OrderQuery(limit=count)).get(timeout=TIMEOUT_S)
        statuses = Counter(order.status.value for order in final)
        print(
            f"engine: {len(final)} orders in {elapsed:.2f}s, final states {dict(sorted(statuses.items()))}"
        )
        reasons = Counter(
            order.reject_reason.split(":")[0] for order in final if order.reject_reason
        )
        if reasons:
            print(f"engine: reject reasons {dict(reasons.most_common())}")
        for account_id in ACCOUNTS:
            snap = engine.account(account_id).get(timeout=TIMEOUT_S)
            held = ", ".join(
                f"{asset} {b.available.normalize():f}"
                + (f" (+{b.reserved:f} reserved)" if b.reserved else "")
                for asset, b in sorted(snap.balances.items())
            )
            positions = ", ".join(
                f"{symbol} {p.quantity.normalize():f}"
                for symbol, p in sorted(snap.positions.items())
                if p.quantity
            )
            print(f"  {account_id:<6} balances: {held}")
            print(
                f"  {'':<6} positions: {positions or 'flat'}; realized PnL {snap.realized_pnl:.2f} USD"
            )
        sample = next((o for o in final if o.status.value == "SETTLED"), None)
        if sample is not None:
            history = engine.order_events(sample.order_id).get(timeout=TIMEOUT_S)
            steps = " -> ".join(f"{type(e).__name__}#{e.sequence}" for e in history)
            print(f"engine: history of one settled order {sample.order_id[:8]}: {steps}")
        after = engine.totals().get(timeout=TIMEOUT_S)
        conserved = after == before
        print(f"engine: per-asset totals over all accounts, venue and fees conserved: {conserved}")
        return conserved
    finally:
        engine.stop()
