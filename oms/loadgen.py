"""``oms loadgen``: place N orders on a running ``oms serve``, over REST or straight onto Kafka.

It makes its own admin API key (``oms.store.api_keys.create_key``, straight in MongoDB, as
``oms keys create`` does) unless it is handed one, opens its own accounts (over REST), places a seeded mix of MARKET and LIMIT orders, waits
until every order is terminal (cancelling, after a grace period, the limit orders the market has
not reached), and prints a summary: rates, final states, and each account's balances.
Every request goes to the address it is given, which ``oms`` only ever sets to 127.0.0.1.

It survives the server dying (``oms.load_target``): every call is bounded, a failed one is
counted by kind, and an order whose POST got no answer is sent again with the same
``client_order_id`` (the API answers the order it already has, or places it): its outcome is
unknown only if the server never answered again. Once the server has answered nothing for
``give_up_s`` the run stops asking, waits up to ``cleanup_wait_s`` for it to come back to cancel
what it left resting (and look up the orders whose outcome it never learnt), and reports.
``Summary.ok`` is False (``oms loadgen`` exits 1) when the server was lost or any order is
unaccounted for.
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
from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError

from oms.config import Settings
from oms.domain.access import Role
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument
from oms.domain.order_ids import client_order_id_order
from oms.load_target import Answer, Failure, Target
from oms.store.api_keys import create_key
from oms.stream.command_bus import KafkaCommandBus
from oms.stream.names import topic_names

TERMINAL = frozenset({"SETTLED", "CANCELLED", "REJECTED"})
SIZES = {"BTC-USD": ("0.001", "0.02"), "ETH-USD": ("0.01", "0.3"), "SOL-USD": ("0.1", "10")}
FUNDS = {"USD": "5000000", "BTC": "50", "ETH": "500", "SOL": "10000"}
REST_BATCH = 500  # Kafka sends are batched like this too
REQUEST_TIMEOUT_S = 10.0  # any one call; connecting alone gets CONNECT_TIMEOUT_S
CONNECT_TIMEOUT_S = 3.0
GIVE_UP_S = 15.0  # no answer at all for this long: the server is gone
CLEANUP_WAIT_S = 15.0  # then wait this long for it to come back, to cancel what rests
RETRY_PAUSES_S = (0.1, 0.25, 0.5, 1.0)  # between attempts of one POST, the last one repeated
LIST_PAGES = 20  # at most this many pages of 500 per account when looking up unknown outcomes


class LoadError(RuntimeError):
    """The run cannot start (no server, no prices): nothing was placed."""

    code = "LOADGEN_FAILED"


@dataclass
class Summary:
    """What one run did and saw."""

    via: str
    sent: int = 0  # orders for which at least one request went out
    placed: int = 0  # orders the server took (202, or produced onto Kafka)
    refused: int = 0  # orders the server answered with something else than 202
    not_sent: int = 0  # orders never sent (the server was gone, or refused every connection)
    unknown: int = 0  # orders sent without an answer that says what became of them
    place_s: float = 0.0
    settle_s: float = 0.0
    states: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unaccounted: int = 0  # placed orders whose terminal state was never seen, plus unknown
    cancelled_at_cleanup: int = 0
    server_lost: bool = False
    accounts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The server stayed, and every order sent ended in a state this run saw."""
        return not self.server_lost and self.unaccounted == 0 and self.not_sent == 0

    def lines(self) -> list[str]:
        """``name: value`` lines, as every benchmark prints them."""
        rate = self.placed / self.place_s if self.place_s else 0.0
        done = self.placed / (self.place_s + self.settle_s) if self.placed else 0.0
        verdict = "ok" if self.ok else "FAILED"
        if self.server_lost:
            verdict += " (the server stopped answering)"
        return [
            f"via: {self.via}",
            f"orders_sent: {self.sent}",
            f"orders_placed: {self.placed}",
            f"orders_refused: {self.refused}",
            f"orders_not_sent: {self.not_sent}",
            f"outcome_unknown: {self.unknown}",
            *(f"errors_{kind}: {count}" for kind, count in sorted(self.errors.items())),
            f"place_s: {self.place_s:.2f}",
            f"placed_per_s: {rate:.1f}",
            f"all_terminal_s: {self.place_s + self.settle_s:.2f}",
            f"terminal_per_s: {done:.1f}",
            *(f"final_{state.lower()}: {count}" for state, count in sorted(self.states.items())),
            f"cancelled_at_cleanup: {self.cancelled_at_cleanup}",
            f"unaccounted: {self.unaccounted}",
            f"server_lost: {'yes' if self.server_lost else 'no'}",
            f"result: {verdict}",
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


@dataclass
class _Run:
    """One run's view of its orders: what the server answered and what it was last seen as."""

    target: Target
    summary: Summary
    placed: dict[str, str] = field(default_factory=dict)  # client order id -> order id (202)
    states: dict[str, str] = field(default_factory=dict)  # order id -> last status seen
    unknown: list[PlaceOrder] = field(default_factory=list)  # sent, never answered

    def pending(self) -> list[str]:
        """Placed orders not yet seen terminal."""
        return [oid for oid in self.placed.values() if self.states.get(oid) not in TERMINAL]


async def _answer(target: Target, method: str, path: str, **kwargs: Any) -> Answer:
    """A call that must be answered for the run to start; anything else is a ``LoadError``."""
    answer = await target.call(method, path, **kwargs)
    if isinstance(answer, Failure):
        raise LoadError(f"{method} {path}: no answer from {target.base} ({answer.kind})")
    return answer


async def open_accounts(target: Target, names: Sequence[str]) -> None:
    """Open each account with the same starting funds."""
    for name in names:
        answer = await _answer(
            target, "POST", "/api/accounts", json={"account_id": name, "balances": FUNDS}
        )
        if answer.status != 201:
            raise LoadError(f"POST /api/accounts -> {answer.status}: {answer.body}")


async def last_prices(target: Target) -> dict[str, Decimal]:
    """The last price of every instrument, waiting (10 s at most) until the feed has one."""
    deadline = time.monotonic() + 10
    prices: dict[str, Decimal] = {}
    while time.monotonic() < deadline:
        for symbol in SIZES:
            answer = await _answer(target, "GET", f"/api/market-data/prices/{symbol}")
            body = answer.body
            if answer.status == 200 and isinstance(body, dict) and body.get("last_price"):
                prices[symbol] = Decimal(body["last_price"])
        if len(prices) == len(SIZES):
            return prices
        await asyncio.sleep(0.2)
    raise LoadError(f"no prices from the market-data feed for {sorted(set(SIZES) - set(prices))}")


async def place_via_rest(run: _Run, orders: Sequence[PlaceOrder], concurrency: int) -> None:
    """POST every order (``concurrency`` in flight).

    An order whose POST got no answer is sent again, same body and ``client_order_id`` (the
    API answers the order it already has, or places it), until answered or the server is gone;
    then it is ``unknown`` if a request may have reached the server, else ``not_sent``.
    """
    progress = Progress("placing", len(orders))
    gate = asyncio.Semaphore(concurrency)
    summary = run.summary
    target = run.target

    async def one(order: PlaceOrder) -> None:
        async with gate:
            delivered = False  # answered, or a request may have reached the server
            pauses = iter(RETRY_PAUSES_S)
            while not target.gone:
                answer = await target.call("POST", "/api/orders", json=order_body(order))
                if isinstance(answer, Answer):
                    _took(run, order, answer)
                    delivered = True
                    break
                delivered = delivered or answer.maybe_delivered
                await asyncio.sleep(next(pauses, RETRY_PAUSES_S[-1]))
            else:
                if delivered:
                    summary.unknown += 1
                    run.unknown.append(order)
                else:
                    summary.not_sent += 1
            # Sent or not sent, never both: an attempt refused before any byte left is not sent.
            summary.sent += delivered
        progress.advance()

    await asyncio.gather(*(one(order) for order in orders))


def _took(run: _Run, order: PlaceOrder, answer: Answer) -> None:
    """Count one answered POST."""
    body = answer.body
    if answer.status == 202 and isinstance(body, dict) and isinstance(body.get("order_id"), str):
        run.summary.placed += 1
        run.placed[order.client_order_id] = body["order_id"]
    else:
        run.summary.refused += 1
        run.summary.errors[f"http_{answer.status}"] += 1


async def place_via_kafka(settings: Settings, run: _Run, orders: Sequence[PlaceOrder]) -> None:
    """Produce every order straight onto the ``orders`` topic (acks=all), in batches; a batch
    Kafka does not acknowledge in time stops the run's producing (its orders: unknown)."""
    progress = Progress("producing", len(orders))
    summary = run.summary
    bus = KafkaCommandBus(settings, topic_names(settings))
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            await bus.start()
    except (KafkaError, TimeoutError) as error:
        summary.errors[f"kafka_{type(error).__name__}"] += 1
        summary.not_sent += len(orders)
        await bus.stop()
        return
    try:
        for start in range(0, len(orders), REST_BATCH):
            batch = orders[start : start + REST_BATCH]
            summary.sent += len(batch)
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    await bus.send(batch)
            except (KafkaError, TimeoutError) as error:
                summary.errors[f"kafka_{type(error).__name__}"] += 1
                summary.unknown += len(batch)
                run.unknown.extend(batch)
                summary.not_sent += len(orders) - start - len(batch)
                return
            summary.placed += len(batch)
            run.placed.update((order.client_order_id, order.order_id) for order in batch)
            progress.advance(len(batch))
    finally:
        await bus.stop()


async def wait_terminal(run: _Run, grace_s: float, timeout_s: float) -> None:
    """Poll until every placed order is terminal, ``timeout_s`` passes or the server is gone;
    cancel what still rests after ``grace_s``."""
    target = run.target
    progress = Progress("settling", len(run.placed))
    started = time.monotonic()
    cancelled = False
    while not target.gone:
        for order_id in run.pending():
            answer = await target.call("GET", f"/api/orders/{order_id}")
            if isinstance(answer, Failure):
                break  # the server is away: try again next round, until it is gone
            body = answer.body
            if answer.status == 200 and isinstance(body, dict):
                run.states[order_id] = str(body.get("status"))
                if run.states[order_id] in TERMINAL:
                    progress.advance()
        pending = run.pending()
        waited = time.monotonic() - started
        if not pending or waited > timeout_s:
            return
        if waited > grace_s and not cancelled:
            await _cancel(run, pending)
            cancelled = True
        await asyncio.sleep(0.2)


async def _cancel(run: _Run, order_ids: Sequence[str]) -> int:
    """Ask to cancel each order (a terminal one answers 409); how many were asked."""
    asked = 0
    for order_id in order_ids:
        answer = await run.target.call("DELETE", f"/api/orders/{order_id}")
        if isinstance(answer, Failure):
            break
        asked += answer.status == 202
    return asked


async def _look_up_unknown(run: _Run, accounts: Sequence[str]) -> None:
    """Find the orders whose POST was never answered among the accounts' orders (by
    ``client_order_id``): those found were placed, the rest stay unknown."""
    wanted = {order.client_order_id for order in run.unknown}
    for account in accounts:
        cursor: str | None = None
        for _ in range(LIST_PAGES):
            path = f"/api/orders?account_id={account}&limit=500"
            answer = await run.target.call("GET", path + (f"&cursor={cursor}" if cursor else ""))
            if not isinstance(answer, Answer) or not isinstance(answer.body, dict):
                return
            for item in answer.body.get("items", []):
                if item.get("client_order_id") in wanted:
                    run.placed[item["client_order_id"]] = item["order_id"]
            cursor = answer.body.get("next_cursor")
            if not cursor:
                break
    found = [o for o in run.unknown if o.client_order_id in run.placed]
    run.unknown = [o for o in run.unknown if o.client_order_id not in run.placed]
    run.summary.unknown -= len(found)
    run.summary.placed += len(found)


async def clean_up(run: _Run, accounts: Sequence[str], wait_s: float) -> None:
    """If orders still rest or were never answered: once the server answers again (waiting
    ``wait_s`` at most), look up the unanswered, cancel what rests and see where they end."""
    if not run.pending() and not run.unknown:
        return
    if not await run.target.wait_back(wait_s):
        return
    if run.unknown:
        await _look_up_unknown(run, accounts)
    run.summary.cancelled_at_cleanup = await _cancel(run, run.pending())
    await wait_terminal(run, grace_s=float("inf"), timeout_s=wait_s)


def _account(run: _Run) -> None:
    """Final states, what is unaccounted for, whether the server was lost."""
    summary = run.summary
    summary.states = Counter(
        run.states[oid] for oid in run.placed.values() if run.states.get(oid) in TERMINAL
    )
    summary.unaccounted = len(run.pending()) + len(run.unknown)
    summary.server_lost = run.target.lost


def own_key(settings: Settings, name: str) -> str:
    """A new admin key for a tool (it opens accounts, then trades them), stored in MongoDB."""
    try:
        return create_key(settings, Role.ADMIN, name=name).key
    except PyMongoError as exc:
        raise LoadError(f"cannot make an API key in MongoDB ({exc}); pass --key") from exc


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
    give_up_s: float = GIVE_UP_S,
    cleanup_wait_s: float = CLEANUP_WAIT_S,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    key: str | None = None,
) -> Summary:
    """Open accounts, place ``orders`` orders ``via`` rest or kafka, wait until all are terminal.

    Raises ``LoadError`` only when the run cannot start; once orders are placed, whatever the
    server does, it returns the summary of what it saw (``Summary.ok`` says if all went well).
    ``key`` is the API key (or JWT) it sends; None makes an admin key in the settings' MongoDB.
    """
    base = base or f"http://{settings.http_host}:{settings.http_port}"
    run_id = uuid.uuid4().hex[:6]
    names = [f"lg-{run_id}-{n}" for n in range(accounts)]
    summary = Summary(via)
    timeout = aiohttp.ClientTimeout(total=request_timeout_s, connect=CONNECT_TIMEOUT_S)
    if key is None:
        key = await asyncio.to_thread(own_key, settings, "oms loadgen")
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
        target = Target(http, base, give_up_s=give_up_s)
        run = _Run(target, summary)
        await open_accounts(target, names)
        commands = make_orders(orders, names, await last_prices(target), seed)
        started = time.monotonic()
        if via == "rest":
            await place_via_rest(run, commands, concurrency)
        else:
            await place_via_kafka(settings, run, commands)
        summary.place_s = time.monotonic() - started
        await wait_terminal(run, grace_s, timeout_s)
        summary.settle_s = time.monotonic() - started - summary.place_s
        await clean_up(run, names, cleanup_wait_s)
        _account(run)
        summary.errors = target.errors + summary.errors
        for name in names if not target.gone else ():
            answer = await target.call("GET", f"/api/accounts/{name}")
            if isinstance(answer, Answer) and answer.status == 200:
                summary.accounts[name] = answer.body
    return summary
