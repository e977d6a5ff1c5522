"""The fault-injection harness: a replica kept alive as an orchestrator would, a paced load that
records every answer, and the checks that compare the client's view with MongoDB and
``order-events``.

One scenario: open a few accounts, place orders at a steady pace over REST (every POST with an
``Idempotency-Key``, retried with the same key until it gets a definite answer) and straight on
Kafka, inject one fault part-way through, keep the load going through it, then cancel whatever
still rests and compare:

- every order that got a 202 (or whose record Kafka acknowledged) is in MongoDB, terminal, once;
- no key produced two orders, and MongoDB holds no order the client never asked for;
- every such order's events are on ``order-events`` exactly once each, its terminal one included;
- per asset, the accounts plus what their fills moved to the venue and to fees equal the opening
  balances, and nothing stays reserved;
- no answer was a 500, and no POST waited longer than the bound;
- the replica wrote a bounded number of log lines during the outage.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber, ProducerFenced
from pymongo import MongoClient

from oms.config import Settings
from oms.domain.order_ids import client_order_id_order
from oms.store.documents import OrderDocument, stored_order
from oms.stream.names import topic_names
from tests.credentials import admin_for, authenticated_session
from tests.faults.servers import PrivateServers, free_port

FUNDS = {"USD": "10000000", "BTC": "100", "ETH": "1000"}
SYMBOLS = {"BTC-USD": ("BTC", "USD"), "ETH-USD": ("ETH", "USD")}
PRICE_STEP = {"BTC-USD": Decimal("0.01"), "ETH-USD": Decimal("0.01")}
QUANTITY = {"BTC-USD": ("0.001", "0.002", "0.005"), "ETH-USD": ("0.01", "0.02", "0.05")}
TERMINAL_EVENTS = frozenset({"OrderSettled", "OrderCancelled", "OrderRejected"})
TERMINAL_STATUSES = frozenset({"SETTLED", "CANCELLED", "REJECTED"})
READY_TIMEOUT_S = 90.0
POST_BOUND_S = 5.0  # no single POST may wait longer than this, whatever is down
RETRY_FOR_S = 60.0  # a client keeps retrying one order this long before giving up
SETTLE_DEADLINE_S = 90.0


# -- the replica, kept alive as an orchestrator would ---------------------------------------------


class Replica:
    """One ``oms serve`` with fixed settings; restarted when it exits on its own (as Kubernetes
    would restart a container whose process ended), stopped or killed on purpose by the test."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.base = f"http://127.0.0.1:{env['OMS_HTTP_PORT']}"
        self.settings = Settings.from_env(env)
        self.process: subprocess.Popen[bytes] | None = None
        self.key: str | None = None  # an admin key in its database, made at the first start
        self.exits: list[int] = []  # exit statuses of processes that ended on their own
        self._watch: asyncio.Task[None] | None = None
        self._wanted = False

    def spawn(self, extra: dict[str, str] | None = None) -> None:
        """Start the process (not waiting for it)."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "oms.cli", "serve"],
                env={**self.env, **(extra or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    async def start(self, extra: dict[str, str] | None = None) -> None:
        """Start it, wait until ``/ready``, and restart it whenever it exits on its own."""
        self._wanted = True
        if self.key is None:
            self.key = await asyncio.to_thread(admin_for, self.base, self.settings)
        self.spawn(extra)
        await self.ready()
        if self._watch is None:
            self._watch = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        while self._wanted:
            process = self.process
            if process is not None and process.poll() is not None and self._wanted:
                self.exits.append(process.returncode)
                self.spawn()  # without the extra settings: a restart is a plain start
            await asyncio.sleep(0.2)

    async def ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until ``/ready`` answers 200."""
        deadline = time.monotonic() + timeout_s
        async with authenticated_session(timeout=aiohttp.ClientTimeout(total=3)) as http:
            while True:
                try:
                    async with http.get(f"{self.base}/ready") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"oms serve not ready after {timeout_s}s; see {self.log}")
                await asyncio.sleep(0.2)

    async def kill(self, restart: bool = True) -> None:
        """SIGKILL it; the supervision starts it again (unless ``restart`` is False: a node lost
        for good, whose partitions the other replicas must take)."""
        if not restart:
            await self._unsupervise()
        process = self.process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)

    async def _unsupervise(self) -> None:
        self._wanted = False
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None

    async def stop(self) -> float:
        """SIGTERM it and stop supervising; how long it took to exit."""
        await self._unsupervise()
        process = self.process
        if process is None or process.poll() is not None:
            return 0.0
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 60)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 10)
        return time.monotonic() - started

    def log_lines(self) -> int:
        """How many lines the replica's log holds now, its access log left out: one line per
        request is the load's size, not the outage's (which is what the bound is about)."""
        with self.log.open("rb") as log:
            return sum(1 for line in log if b" oms.access " not in line)


def replica_env(servers: PrivateServers, run: str) -> dict[str, str]:
    """Settings of one scenario's replica on the private servers: its own topics and database."""
    return {
        **os.environ,
        **servers.env(),
        "OMS_HTTP_HOST": "127.0.0.1",
        "OMS_HTTP_PORT": str(free_port()),
        "OMS_TOPIC_SUFFIX": f"faults-{run}",
        "OMS_KAFKA_GROUP_ID": f"oms-faults-{run}",
        "OMS_MONGO_DATABASE": f"oms_faults_{run}",
        "OMS_ORDERS_PARTITIONS": "2",
        "OMS_EXECUTIONS_PARTITIONS": "2",
        "OMS_PRICES_PARTITIONS": "1",
        "OMS_EVENTS_PARTITIONS": "2",
        "OMS_SYMBOLS": ",".join(SYMBOLS),
        # An orchestrator's grace period is 30 s; a replica that cannot stop cleanly in 15 s exits.
        "OMS_SHUTDOWN_TIMEOUT_S": "15",
    }


# -- what the client saw ---------------------------------------------------------------------------


@dataclass
class Attempt:
    """One try of one request: its answer (an HTTP status, or the error's name) and its time."""

    answer: int | str
    seconds: float


@dataclass
class Intent:
    """One order the client meant to place, and everything it saw while placing it."""

    key: str
    body: dict[str, str]
    via: str  # "rest" or "kafka"
    attempts: list[Attempt] = field(default_factory=list)
    order_ids: set[str] = field(default_factory=set)  # every id a 202 named
    accepted: bool = False  # a 202, or Kafka acknowledged the record

    @property
    def definite(self) -> bool:
        """A 202 or a refusal the client should not retry (a 4xx other than 408/429)."""
        return self.accepted or any(
            isinstance(a.answer, int) and 400 <= a.answer < 500 and a.answer not in (408, 429)
            for a in self.attempts
        )


@dataclass
class Load:
    """A paced load over REST and Kafka; every intent it made, with what it saw."""

    base: str
    settings: Settings
    accounts: list[str]
    prices: dict[str, Decimal]
    retries: bool = True
    rest_per_s: float = 40.0
    kafka_per_s: float = 20.0
    intents: list[Intent] = field(default_factory=list)
    history: int = 0  # how many intents were placed before the replica's clean restart
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    def body(self) -> dict[str, str]:
        """A valid order: MARKET, IOC LIMIT through the market, or GTC LIMIT near it."""
        rng = self.rng
        symbol = rng.choice(list(SYMBOLS))
        side = rng.choice(("BUY", "SELL"))
        body = {
            "account_id": rng.choice(self.accounts),
            "symbol": symbol,
            "side": side,
            "quantity": rng.choice(QUANTITY[symbol]),
        }
        kind = rng.random()
        if kind < 0.4:
            body.update(type="MARKET", time_in_force="IOC")
            return body
        away = Decimal(rng.choice(("0.0005", "0.001", "0.002")))
        through = kind < 0.6
        up = (side == "BUY") == through
        factor = 1 + away if up else 1 - away
        price = (self.prices[symbol] * factor).quantize(PRICE_STEP[symbol], ROUND_DOWN)
        body.update(type="LIMIT", price=str(price), time_in_force="IOC" if through else "GTC")
        return body

    async def run(self, seconds: float) -> None:
        """Place orders for ``seconds`` at the configured rates; return once every intent is
        definite (or has retried for ``RETRY_FOR_S``)."""
        # No connection limit: a POST's time is the server's, never a wait for a free connection
        # in this client (retries through an outage put a few hundred requests in flight).
        async with authenticated_session(
            timeout=aiohttp.ClientTimeout(total=POST_BOUND_S + 5),
            connector=aiohttp.TCPConnector(limit=0),
        ) as http:
            producer = Producer(self.settings.kafka_bootstrap)
            try:
                tasks: list[asyncio.Task[None]] = []
                started = time.monotonic()
                rest_n = kafka_n = 0
                while (elapsed := time.monotonic() - started) < seconds:
                    while rest_n < elapsed * self.rest_per_s:
                        rest_n += 1
                        tasks.append(asyncio.create_task(self._rest(http, self._intent("rest"))))
                    while kafka_n < elapsed * self.kafka_per_s:
                        kafka_n += 1
                        intent = self._intent("kafka")
                        tasks.append(asyncio.create_task(self._kafka(producer, intent)))
                    await asyncio.sleep(0.01)
                await asyncio.gather(*tasks)
            finally:
                await producer.stop()

    def _intent(self, via: str) -> Intent:
        intent = Intent(f"{via}-{len(self.intents)}-{uuid.uuid4().hex[:6]}", self.body(), via)
        self.intents.append(intent)
        return intent

    async def post_again(self, intents: list[Intent]) -> None:
        """POST these intents again with the same key and body, as a client that never saw
        their answers would; every order id answered is added to the intent."""
        async with authenticated_session(
            timeout=aiohttp.ClientTimeout(total=POST_BOUND_S + 5)
        ) as http:
            for intent in intents:
                intent.accepted = False
                await self._rest(http, intent)

    async def _rest(self, http: aiohttp.ClientSession, intent: Intent) -> None:
        deadline = time.monotonic() + RETRY_FOR_S
        headers = {"Idempotency-Key": intent.key}
        while True:
            started = time.monotonic()
            try:
                async with http.post(
                    f"{self.base}/api/orders", json=intent.body, headers=headers
                ) as response:
                    answer: int | str = response.status
                    if response.status == 202:
                        intent.order_ids.add((await response.json())["order_id"])
                        intent.accepted = True
                    else:
                        await response.read()
            except (aiohttp.ClientError, TimeoutError) as error:
                answer = type(error).__name__
            intent.attempts.append(Attempt(answer, time.monotonic() - started))
            if intent.definite or not self.retries or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.25)

    async def _kafka(self, producer: Producer, intent: Intent) -> None:
        names = topic_names(self.settings)
        body = intent.body
        order_id = client_order_id_order(body["account_id"], intent.key)  # as the decoder derives
        record = {
            "type": "PlaceOrder",
            "command_id": f"place:{order_id}",
            "order_id": order_id,
            "client_order_id": intent.key,
            "account_id": body["account_id"],
            "symbol": body["symbol"],
            "side": body["side"],
            "order_type": body["type"],
            "quantity": body["quantity"],
            "price": body.get("price"),
            "time_in_force": body["time_in_force"],
            "created_at": time.time(),
        }
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            started = time.monotonic()
            try:
                await producer.send(names.orders, body["account_id"].encode(), orjson.dumps(record))
            except (KafkaError, TimeoutError) as error:
                intent.attempts.append(Attempt(type(error).__name__, time.monotonic() - started))
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.25)
                continue
            intent.attempts.append(Attempt("acked", time.monotonic() - started))
            intent.order_ids.add(order_id)
            intent.accepted = True
            return


class Producer:
    """The load's Kafka producer, as a gateway would run it: idempotent, acks=all, and made
    anew when the broker's restart leaves it unable to go on (its sequence numbers refused)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect (again)."""
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    request_timeout_ms=5000,
                )
                await producer.start()
                self._producer = producer

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one record and wait for its acknowledgement."""
        await self.start()
        producer = self._producer
        assert producer is not None
        try:
            await producer.send_and_wait(topic, key=key, value=value)
        except (OutOfOrderSequenceNumber, ProducerFenced):
            async with self._lock:
                if self._producer is producer:
                    self._producer = None
                    await producer.stop()
            raise

    async def stop(self) -> None:
        """Disconnect."""
        if self._producer is not None:
            await self._producer.stop()


# -- the truth: MongoDB and order-events ----------------------------------------------------------


def stored_orders(settings: Settings) -> dict[str, dict[str, Any]]:
    """Per order id, its latest stored state: status, account, client order id, events."""
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    try:
        collection = client[settings.mongo_database][OrderDocument.Settings.name]
        latest: dict[str, dict[str, Any]] = {}
        for document in collection.find({}):
            held = latest.get(document["order_id"])
            if held is not None and (held["terminal"] or held["version"] >= document["version"]):
                continue
            latest[document["order_id"]] = document
        found: dict[str, dict[str, Any]] = {}
        for order_id, document in latest.items():
            stored = stored_order(document)
            found[order_id] = {
                "status": stored.order.status.value,
                "account_id": stored.order.account_id,
                "client_order_id": stored.order.client_order_id,
                "symbol": stored.order.symbol,
                "side": stored.order.side.value,
                "events": [(type(e).__name__, e.sequence) for e in stored.events],
                "fills": [
                    (e.quantity, e.price, e.fee)  # type: ignore[attr-defined]
                    for e in stored.events
                    if type(e).__name__ == "OrderFilled"
                ],
            }
        return found
    finally:
        client.close()


async def published_events(settings: Settings) -> Counter[tuple[str, int, str]]:
    """Every record on ``order-events`` so far, counted by (order id, sequence, type)."""
    topic = topic_names(settings).order_events
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + 10
        while not consumer.assignment():  # without a group, every partition once known
            assert time.monotonic() < deadline, f"no partitions of {topic}"
            await asyncio.sleep(0.1)
        assigned = list(consumer.assignment())
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        counted: Counter[tuple[str, int, str]] = Counter()
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    data = orjson.loads(message.value or b"{}")
                    counted[(data["order_id"], int(data["sequence"]), data["type"])] += 1
        return counted
    finally:
        await consumer.stop()


# -- driving a scenario to its end, and the checks ------------------------------------------------


async def open_accounts(base: str, count: int) -> list[str]:
    """Open ``count`` funded accounts (retrying while the replica starts)."""
    accounts = [f"fa-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for account in accounts:
            body = {"account_id": account, "balances": FUNDS}
            async with http.post(f"{base}/api/accounts", json=body) as response:
                assert response.status == 201, await response.text()
    return accounts


async def last_prices(base: str) -> dict[str, Decimal]:
    """Each symbol's last price, waiting for the feed's first ticks."""
    prices: dict[str, Decimal] = {}
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=5)) as http:
        deadline = time.monotonic() + 30
        while len(prices) < len(SYMBOLS):
            for symbol in SYMBOLS:
                async with http.get(f"{base}/api/market-data/prices/{symbol}") as response:
                    if response.status == 200 and (body := await response.json()).get("last_price"):
                        prices[symbol] = Decimal(body["last_price"])
            assert time.monotonic() < deadline, "no prices from the feed"
            await asyncio.sleep(0.2)
    return prices


async def settle(replica: Replica, accounts: list[str]) -> dict[str, dict[str, Any]]:
    """Cancel whatever rests until every stored order of ``accounts`` is terminal; the orders."""
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=10)) as http:
        while True:
            await replica.ready()
            stored = await asyncio.to_thread(stored_orders, replica.settings)
            mine = {k: v for k, v in stored.items() if v["account_id"] in accounts}
            open_ids = [k for k, v in mine.items() if v["status"] not in TERMINAL_STATUSES]
            if not open_ids:
                return mine
            assert time.monotonic() < deadline, f"{len(open_ids)} orders never ended"
            for order_id in open_ids:
                if mine[order_id]["status"] in ("ACCEPTED", "PARTIALLY_FILLED"):
                    try:
                        async with http.delete(f"{replica.base}/api/orders/{order_id}") as answer:
                            await answer.read()
                    except (aiohttp.ClientError, TimeoutError):
                        pass
            await asyncio.sleep(0.5)


async def balances(base: str, accounts: list[str]) -> tuple[dict[str, Decimal], Decimal]:
    """Per asset, the accounts' totals; and everything still reserved."""
    totals: dict[str, Decimal] = {}
    reserved = Decimal(0)
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for account in accounts:
            async with http.get(f"{base}/api/accounts/{account}") as response:
                assert response.status == 200, await response.text()
                for asset, balance in (await response.json())["balances"].items():
                    totals[asset] = totals.get(asset, Decimal(0)) + Decimal(balance["total"])
                    reserved += Decimal(balance["reserved"])
    return totals, reserved


def venue_and_fees_share(orders: dict[str, dict[str, Any]]) -> dict[str, Decimal]:
    """Per asset, what the fills moved out of the accounts (to the venue and to fees)."""
    share: dict[str, Decimal] = {}
    for order in orders.values():
        base, quote = SYMBOLS[order["symbol"]]
        buy = order["side"] == "BUY"
        for quantity, price, fee in order["fills"]:
            cost = quantity * price
            share[base] = share.get(base, Decimal(0)) + (-quantity if buy else quantity)
            share[quote] = share.get(quote, Decimal(0)) + (cost + fee if buy else -cost + fee)
    return share


@dataclass
class Report:
    """The figures a scenario ends with (printed, and asserted by ``check``)."""

    intents: int
    accepted: int
    lost: list[str]
    duplicated: list[str]
    unexpected: list[str]  # stored orders no intent can explain
    not_terminal: list[str]
    events_missing: list[tuple[str, int]]
    events_duplicated: list[tuple[str, int]]
    terminal_events_wrong: list[str]
    server_errors: int
    slowest_post_s: float
    reserved: Decimal
    conservation: dict[str, Decimal]  # per asset: now + share - opening (zero when conserved)
    answers: Counter[str]

    def lines(self) -> list[str]:
        """``name: value`` lines."""
        return [
            f"intents: {self.intents}",
            f"accepted: {self.accepted}",
            f"lost: {len(self.lost)}",
            f"duplicated: {len(self.duplicated)}",
            f"unexpected: {len(self.unexpected)}",
            f"not_terminal: {len(self.not_terminal)}",
            f"events_missing: {len(self.events_missing)}",
            f"events_duplicated: {len(self.events_duplicated)}",
            f"terminal_events_wrong: {len(self.terminal_events_wrong)}",
            f"server_errors: {self.server_errors}",
            f"slowest_post_s: {self.slowest_post_s:.2f}",
            f"reserved: {self.reserved}",
            f"conservation_off: {sum(abs(v) for v in self.conservation.values())}",
            f"answers: {dict(self.answers)}",
        ]


async def report(replica: Replica, load: Load) -> Report:
    """Settle everything, then compare what the client saw with MongoDB and ``order-events``."""
    orders = await settle(replica, load.accounts)
    by_client = Counter((o["account_id"], o["client_order_id"]) for o in orders.values())
    intents = load.intents
    accepted = [i for i in intents if i.accepted]
    lost = [i.key for i in accepted if not (i.order_ids & set(orders))]
    duplicated = [i.key for i in intents if len(i.order_ids & set(orders)) > 1]
    duplicated += [f"{a}/{c}" for (a, c), n in by_client.items() if n > 1]
    explained = {oid for i in intents for oid in i.order_ids}
    # An intent without a 202 may still have placed an order (the client never learnt the
    # outcome): at most one unexplained order per such intent is not an invention.
    unknown = sum(1 for i in intents if not i.accepted)
    unexplained = [oid for oid in orders if oid not in explained]
    unexpected = unexplained[unknown:]
    not_terminal = [oid for oid, o in orders.items() if o["status"] not in TERMINAL_STATUSES]
    published = await published_events(replica.settings)
    seen = Counter({(oid, seq): n for (oid, seq, _kind), n in published.items()})
    events_missing: list[tuple[str, int]] = []
    events_duplicated: list[tuple[str, int]] = []
    terminal_wrong: list[str] = []
    for oid, order in orders.items():
        for _kind, sequence in order["events"]:
            count = seen.get((oid, sequence), 0)
            if count == 0:
                events_missing.append((oid, sequence))
            elif count > 1:
                events_duplicated.append((oid, sequence))
        terminal = [k for k, _ in order["events"] if k in TERMINAL_EVENTS]
        published_terminal = sum(
            n for (o, _s, kind), n in published.items() if o == oid and kind in TERMINAL_EVENTS
        )
        if len(terminal) != 1 or published_terminal != 1:
            terminal_wrong.append(oid)
    answers: Counter[str] = Counter(str(a.answer) for i in intents for a in i.attempts)
    server_errors = sum(
        n for answer, n in answers.items() if answer.startswith("5") and answer != "503"
    )
    rest_attempts = sorted(
        (a for i in intents if i.via == "rest" for a in i.attempts), key=lambda a: a.seconds
    )
    slowest = rest_attempts[-1].seconds if rest_attempts else 0.0
    print(f"slowest_posts: {[(a.answer, round(a.seconds, 2)) for a in rest_attempts[-5:]]}")
    now, reserved = await balances(replica.base, load.accounts)
    share = venue_and_fees_share(orders)
    conservation = {
        asset: now.get(asset, Decimal(0)) + share.get(asset, Decimal(0))
        - len(load.accounts) * Decimal(amount)
        for asset, amount in FUNDS.items()
    }  # fmt: skip
    return Report(
        intents=len(intents),
        accepted=len(accepted),
        lost=lost,
        duplicated=duplicated,
        unexpected=unexpected,
        not_terminal=not_terminal,
        events_missing=events_missing,
        events_duplicated=events_duplicated,
        terminal_events_wrong=terminal_wrong,
        server_errors=server_errors,
        slowest_post_s=slowest,
        reserved=reserved,
        conservation=conservation,
        answers=answers,
    )


def check(result: Report) -> None:
    """The suite's promises, each its own assertion with the offending ids."""
    assert result.accepted > 0, "the load placed nothing"
    assert not result.lost, f"lost: {result.lost[:5]}"
    assert not result.duplicated, f"duplicated: {result.duplicated[:5]}"
    assert not result.unexpected, f"orders nobody asked for: {result.unexpected[:5]}"
    assert not result.not_terminal, f"not terminal: {result.not_terminal[:5]}"
    assert not result.events_missing, f"events never published: {result.events_missing[:5]}"
    assert not result.events_duplicated, f"events published twice: {result.events_duplicated[:5]}"
    assert not result.terminal_events_wrong, (
        f"terminal event not exactly once: {result.terminal_events_wrong[:5]}"
    )
    assert result.server_errors == 0, f"5xx answers: {result.answers}"
    assert result.slowest_post_s <= POST_BOUND_S, f"a POST waited {result.slowest_post_s:.1f}s"
    assert result.reserved == 0, f"still reserved: {result.reserved}"
    assert all(v == 0 for v in result.conservation.values()), result.conservation


@dataclass
class Context:
    """What a fault may use: the replica, the servers, and the load (its intents so far)."""

    replica: Replica
    servers: PrivateServers
    load: Load

    def old_orders(self) -> list[str]:
        """Order ids accepted before the replica's clean restart (finished, in MongoDB only)."""
        return [oid for i in self.load.intents[: self.load.history] for oid in i.order_ids]


Fault = Callable[[Context], Awaitable[None]]


async def scenario(
    replica: Replica,
    servers: PrivateServers,
    fault: Fault,
    *,
    seconds: float = 10.0,
    fault_at_s: float = 3.0,
    retries: bool = True,
    rest_per_s: float = 40.0,
    kafka_per_s: float = 20.0,
    start_extra: dict[str, str] | None = None,
    history_s: float = 0.0,
) -> tuple[Report, int]:
    """Run the load, inject ``fault`` at ``fault_at_s``, settle, stop the replica; the report
    and the log lines the replica wrote from the fault until the load ended.

    ``start_extra``: settings of the first process only (a restart is a plain start).
    ``history_s``: first place orders for that long, let them finish and restart the replica
    cleanly, so that they live in MongoDB only (what a read or a replay of them must fetch).
    """
    await replica.start(start_extra)
    accounts = await open_accounts(replica.base, 4)
    prices = await last_prices(replica.base)
    load = Load(
        replica.base,
        replica.settings,
        accounts,
        prices,
        retries=retries,
        rest_per_s=rest_per_s,
        kafka_per_s=kafka_per_s,
    )
    if history_s:
        await load.run(history_s)
        await settle(replica, accounts)
        load.history = len(load.intents)
        await replica.stop()
        await replica.start()
    running = asyncio.create_task(load.run(seconds))
    await asyncio.sleep(fault_at_s)
    lines_before = replica.log_lines()
    await fault(Context(replica, servers, load))
    await running
    lines_during = replica.log_lines() - lines_before
    try:
        await replica.ready()
        result = await report(replica, load)
    finally:
        await replica.stop()
    for line in [*result.lines(), f"log_lines_during_fault: {lines_during}"]:
        print(line)
    return result, lines_during
