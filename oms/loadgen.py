"""``oms loadgen``: place N orders on a running ``oms serve``, over REST or straight onto Kafka.

It opens its own accounts (over REST), places a seeded mix of MARKET and LIMIT orders, waits
until every order is terminal (cancelling, after a grace period, the limit orders the market has
not reached), and prints a summary: rates, final states, and each account's balances.
Every request goes to the address it is given, which ``oms`` only ever sets to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp

from oms.config import Settings
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument
from oms.domain.order_ids import client_order_id_order
from oms.stream.names import topic_names
from oms.stream.producer import KafkaCommandBus

TERMINAL = frozenset({"SETTLED", "CANCELLED", "REJECTED"})
SIZES = {"BTC-USD": ("0.001", "0.02"), "ETH-USD": ("0.01", "0.3"), "SOL-USD": ("0.1", "10")}
FUNDS = {"USD": "5000000", "BTC": "50", "ETH": "500", "SOL": "10000"}
REST_BATCH = 500  # Kafka sends are batched like this too


class LoadError(RuntimeError):
    """The server answered something the load generator cannot go on with."""

    code = "LOADGEN_FAILED"


@dataclass
class Summary:
    """What one run did."""

    via: str
    placed: int = 0
    refused: int = 0
    place_s: float = 0.0
    settle_s: float = 0.0
    states: Counter[str] = field(default_factory=Counter)
    accounts: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """``name: value`` lines, as every benchmark prints them."""
        rate = self.placed / self.place_s if self.place_s else 0.0
        done = self.placed / (self.place_s + self.settle_s) if self.placed else 0.0
        return [
            f"via: {self.via}",
            f"orders_placed: {self.placed}",
            f"orders_refused: {self.refused}",
            f"place_s: {self.place_s:.2f}",
            f"placed_per_s: {rate:.1f}",
            f"all_terminal_s: {self.place_s + self.settle_s:.2f}",
            f"terminal_per_s: {done:.1f}",
            *(f"final_{state.lower()}: {count}" for state, count in sorted(self.states.items())),
        ]


class Progress:
    """A one-line progress bar on standard error."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self._shown = label, total, 0, -1

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more; redraw in place on a terminal, a line per quarter elsewhere (logs)."""
        self.done += n
        tty = sys.stderr.isatty()
        percent = 100 * self.done // max(1, self.total)
        step = percent if tty else percent // 25 * 25
        if step == self._shown:
            return
        self._shown = step
        bar = "#" * (percent // 4)
        line = f"{self.label:<10} [{bar:<25}] {self.done}/{self.total}"
        sys.stderr.write(f"\r{line}" if tty else f"{line}\n")
        if tty and self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def make_orders(
    count: int, accounts: Sequence[str], prices: dict[str, Decimal], seed: int
) -> list[PlaceOrder]:
    """A seeded mix: 40% MARKET (IOC/FOK), 60% LIMIT near the market (GTC/IOC), both sides."""
    rng = random.Random(seed)
    instruments: dict[str, Instrument] = {i.symbol: i for i in DEFAULT_INSTRUMENTS}
    orders = []
    for n in range(count):
        symbol = rng.choice(sorted(prices))
        instrument = instruments[symbol]
        low, high = (Decimal(v) for v in SIZES[symbol])
        quantity = (
            low + rng.randint(0, int((high - low) / instrument.lot_size)) * instrument.lot_size
        )
        kind = OrderType.MARKET if rng.random() < 0.4 else OrderType.LIMIT
        price = None
        tif = rng.choice((TimeInForce.IOC, TimeInForce.FOK))
        if kind is OrderType.LIMIT:
            offset = Decimal(str(round(rng.uniform(-0.002, 0.002), 5)))
            price = (prices[symbol] * (1 + offset)).quantize(instrument.tick_size)
            tif = rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC))
        # The id REST derives from the client order id: the same order by either path.
        account_id, client_order_id = accounts[n % len(accounts)], f"lg-{n}"
        order_id = client_order_id_order(account_id, client_order_id)
        orders.append(
            PlaceOrder(
                command_id=f"place:{order_id}", order_id=order_id,
                client_order_id=client_order_id, account_id=account_id,
                symbol=symbol, side=rng.choice((Side.BUY, Side.SELL)), type=kind,
                quantity=quantity, price=price, time_in_force=tif, created_at=time.time(),
            )
        )  # fmt: skip
    return orders


def order_body(order: PlaceOrder) -> dict[str, Any]:
    """The REST body of an order (amounts as decimal strings)."""
    body: dict[str, Any] = {
        "account_id": order.account_id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "quantity": str(order.quantity),
        "time_in_force": order.time_in_force.value,
    }
    if order.price is not None:
        body["price"] = str(order.price)
    return body


async def _json(response: aiohttp.ClientResponse, *expected: int) -> Any:
    body = await response.json(content_type=None)
    if response.status not in expected:
        raise LoadError(f"{response.method} {response.url.path} -> {response.status}: {body}")
    return body


async def open_accounts(http: aiohttp.ClientSession, base: str, names: Sequence[str]) -> None:
    """Open each account with the same starting funds."""
    for name in names:
        response = await http.post(
            f"{base}/api/accounts", json={"account_id": name, "balances": FUNDS}
        )
        await _json(response, 201)


async def last_prices(http: aiohttp.ClientSession, base: str) -> dict[str, Decimal]:
    """The last price of every instrument, waiting (10 s at most) until the feed has one."""
    deadline = time.monotonic() + 10
    prices: dict[str, Decimal] = {}
    while time.monotonic() < deadline:
        for symbol in SIZES:
            response = await http.get(f"{base}/api/market-data/prices/{symbol}")
            if response.status == 200:
                body = await response.json()
                if body.get("last_price"):
                    prices[symbol] = Decimal(body["last_price"])
        if len(prices) == len(SIZES):
            return prices
        await asyncio.sleep(0.2)
    raise LoadError(f"no prices from the market-data feed for {sorted(set(SIZES) - set(prices))}")


async def place_via_rest(
    http: aiohttp.ClientSession, base: str, orders: Sequence[PlaceOrder], concurrency: int
) -> tuple[list[str], int]:
    """POST every order (``concurrency`` in flight); the ids answered, and how many refused."""
    progress = Progress("placing", len(orders))
    gate = asyncio.Semaphore(concurrency)
    ids: list[str] = []
    refused = 0

    async def one(order: PlaceOrder) -> None:
        nonlocal refused
        async with gate:
            response = await http.post(f"{base}/api/orders", json=order_body(order))
            body = await response.json(content_type=None)
        if response.status == 202:
            ids.append(body["order_id"])
        else:
            refused += 1
        progress.advance()

    await asyncio.gather(*(one(order) for order in orders))
    return ids, refused


async def place_via_kafka(settings: Settings, orders: Sequence[PlaceOrder]) -> list[str]:
    """Produce every order straight onto the ``orders`` topic (acks=all), in batches."""
    progress = Progress("producing", len(orders))
    bus = KafkaCommandBus(settings, topic_names(settings))
    await bus.start()
    try:
        for start in range(0, len(orders), REST_BATCH):
            batch = orders[start : start + REST_BATCH]
            await bus.send(batch)
            progress.advance(len(batch))
    finally:
        await bus.stop()
    return [order.order_id for order in orders]


async def wait_terminal(
    http: aiohttp.ClientSession, base: str, ids: Sequence[str], grace_s: float, timeout_s: float
) -> Counter[str]:
    """Poll until every order is terminal; cancel what still rests after ``grace_s``."""
    progress = Progress("settling", len(ids))
    states: dict[str, str] = {}
    started = time.monotonic()
    cancelled = False
    while True:
        pending = [order_id for order_id in ids if states.get(order_id) not in TERMINAL]
        for order_id in pending:
            response = await http.get(f"{base}/api/orders/{order_id}")
            if response.status == 200:
                status = (await response.json())["status"]
                if status in TERMINAL:
                    progress.advance()
                states[order_id] = status
        if all(states.get(order_id) in TERMINAL for order_id in ids):
            return Counter(states.values())
        waited = time.monotonic() - started
        if waited > timeout_s:
            raise LoadError(f"{len(pending)} orders not terminal after {timeout_s:.0f}s")
        if waited > grace_s and not cancelled:
            for order_id in pending:
                await http.delete(f"{base}/api/orders/{order_id}")
            cancelled = True
        await asyncio.sleep(0.2)


async def run_loadgen(
    settings: Settings,
    orders: int,
    via: str,
    *,
    base: str | None = None,
    accounts: int = 4,
    concurrency: int = 64,
    seed: int = 7,
    grace_s: float = 3.0,
    timeout_s: float = 120.0,
) -> Summary:
    """Open accounts, place ``orders`` orders ``via`` rest or kafka, wait until all are terminal."""
    base = base or f"http://{settings.http_host}:{settings.http_port}"
    run = uuid.uuid4().hex[:6]
    names = [f"lg-{run}-{n}" for n in range(accounts)]
    summary = Summary(via)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        await open_accounts(http, base, names)
        commands = make_orders(orders, names, await last_prices(http, base), seed)
        started = time.monotonic()
        if via == "rest":
            ids, summary.refused = await place_via_rest(http, base, commands, concurrency)
        else:
            ids = await place_via_kafka(settings, commands)
        summary.placed = len(ids)
        summary.place_s = time.monotonic() - started
        summary.states = await wait_terminal(http, base, ids, grace_s, timeout_s)
        summary.settle_s = time.monotonic() - started - summary.place_s
        for name in names:
            summary.accounts[name] = await _json(await http.get(f"{base}/api/accounts/{name}"), 200)
    return summary
