"""A burst of order reads while orders flow through a whole replica (``Service``, in this process
so the test can look inside its store): every order still settles, and no MongoDB read ever runs
on the engine's dispatcher thread. The place -> settled median with and without the burst is
printed (not asserted: this machine's two cores are shared).

Real Kafka, Redis and FerretDB; the run's own topics, consumer group and database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from oms.config import Settings
from oms.domain.events import OrderEvent, OrderSettled
from oms.service import Service
from oms.store.mongo import MongoOrderRepository
from oms.store.mongo_connection import store_databases
from oms.stream.topics import delete_topics
from tests.credentials import admin_for, authenticated_session
from tests.e2e.conftest import last_price, open_account
from tests.ports import free_port

FUNDS = {"USD": "10000000", "BTC": "100"}
MARKET = {"symbol": "BTC-USD", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
KEEP_TERMINAL = 30  # finished orders memory keeps: the rest are read from MongoDB
SEED = 120  # settled before the test: 90 of them only in MongoDB
FLOW = 80  # orders per phase, placed at RATE
RATE = 40.0
READERS = 4
READS_EACH = 500  # 2,000 GETs in the burst
SETTLE_WITHIN_S = 40.0


@dataclasses.dataclass
class Replica:
    """The running service, its base URL, and when each order's settlement became durable."""

    service: Service
    base: str
    settled: dict[str, float]

    @property
    def repository(self) -> MongoOrderRepository:
        assert self.service.engine is not None
        repository = self.service.engine.core.repository
        assert isinstance(repository, MongoOrderRepository)
        return repository


@pytest.fixture
async def replica(settings: Settings) -> AsyncIterator[Replica]:
    run = uuid.uuid4().hex[:8]
    mine = settings.replace(
        http_port=free_port(),
        topic_suffix=f"reads-{run}",
        kafka_group_id=f"oms-reads-{run}",
        mongo_database=f"oms_reads_{run}",
        orders_partitions=2,
        executions_partitions=2,
        prices_partitions=1,
        events_partitions=2,
        keep_terminal_orders=KEEP_TERMINAL,
    )
    service = Service(mine)
    settled: dict[str, float] = {}

    def on_durable(events: Sequence[OrderEvent]) -> None:  # the store's writer thread
        now = time.monotonic()
        for event in events:
            if isinstance(event, OrderSettled):
                settled[event.order_id] = now

    try:
        await service.start()
        assert service.engine is not None
        service.engine.subscribe(on_durable)
        base = f"http://127.0.0.1:{mine.http_port}"
        await asyncio.to_thread(admin_for, base, mine)
        await _ready(base)
        yield Replica(service, base, settled)
    finally:
        await service.stop()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mine.mongo_url)
        for dropped in store_databases(mine.mongo_database):
            await client.drop_database(dropped)
        await client.close()
        await delete_topics(mine, [spec.name for spec in service.names.specs(mine)])


async def _ready(base: str) -> None:
    async with authenticated_session() as http:
        deadline = time.monotonic() + 60
        while True:
            try:
                async with http.get(f"{base}/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            assert time.monotonic() < deadline, "the replica never became ready"
            await asyncio.sleep(0.2)


async def _flow(
    http: aiohttp.ClientSession, base: str, account: str, count: int
) -> dict[str, float]:
    """Place ``count`` market orders at ``RATE``; when each was sent, by order id."""
    sent: dict[str, float] = {}
    started = time.monotonic()
    for i in range(count):
        await asyncio.sleep(max(0.0, started + i / RATE - time.monotonic()))
        at = time.monotonic()
        async with http.post(f"{base}/api/orders", json={**MARKET, "account_id": account}) as r:
            assert r.status == 202, await r.text()
            sent[(await r.json())["order_id"]] = at
    return sent


async def _all_settled(replica: Replica, sent: dict[str, float]) -> list[float]:
    """Each order's place -> settled time in ms, once all are settled (or the test fails)."""
    deadline = time.monotonic() + SETTLE_WITHIN_S
    while not set(sent) <= set(replica.settled):
        missing = len(set(sent) - set(replica.settled))
        assert time.monotonic() < deadline, f"{missing} of {len(sent)} orders never settled"
        await asyncio.sleep(0.1)
    return [(replica.settled[order_id] - at) * 1000 for order_id, at in sent.items()]


async def _reader(
    http: aiohttp.ClientSession, base: str, paths: list[str], statuses: Counter[int]
) -> None:
    """``READS_EACH`` GETs, one after another, each bounded by the client's timeout."""
    for path in itertools.islice(itertools.cycle(paths), READS_EACH):
        async with http.get(f"{base}{path}") as response:
            await response.read()
            statuses[response.status] += 1


def _burst(base: str, paths: list[str]) -> tuple[Counter[int], float]:
    """``READERS`` clients reading at once, on a loop and thread of their own (clients are
    other processes in life: they must not slow the replica's loop down here); the answers'
    statuses and how long the burst took."""

    async def read() -> Counter[int]:
        statuses: Counter[int] = Counter()
        timeout = aiohttp.ClientTimeout(total=10)
        async with authenticated_session(timeout=timeout) as http:
            await asyncio.gather(*(_reader(http, base, paths, statuses) for _ in range(READERS)))
        return statuses

    started = time.monotonic()
    statuses = asyncio.run(read())
    return statuses, time.monotonic() - started


async def test_read_burst_when_orders_flow_then_all_settle_and_no_mongodb_read_on_engine_thread(
    replica: Replica,
) -> None:
    # Arrange: settled orders, most of them in MongoDB only, and reads that reach them there
    timeout = aiohttp.ClientTimeout(total=10)
    async with authenticated_session(timeout=timeout) as http:
        base = replica.base
        account = await open_account(http, base, FUNDS, prefix="reads")
        await last_price(http, base, "BTC-USD")
        seeded = await _flow(http, base, account, SEED)
        await _all_settled(replica, seeded)
        old = list(seeded)[: SEED - KEEP_TERMINAL]  # oldest first: dropped from memory
        async with http.get(f"{base}/api/orders?account_id={account}&limit=50") as first:
            cursor = (await first.json())["next_cursor"]
        # Per cycle: 40 old orders (MongoDB by _id once, then the store's copy), 40 first pages
        # (memory) and 4 pages past memory (MongoDB every time: a ~40 ms scan on FerretDB).
        recent = f"/api/orders?account_id={account}&limit=20"
        deep = f"{recent}&cursor={cursor}"
        paths = [p for order_id in old[:40] for p in (f"/api/orders/{order_id}", recent)]
        paths[::20] = [deep] * len(paths[::20])
        reads_before = replica.repository.reads

        # Act: a quiet phase, then the same flow under the burst
        quiet = await _all_settled(replica, await _flow(http, base, account, FLOW))
        sent, (statuses, burst_s) = await asyncio.gather(
            _flow(http, base, account, FLOW), asyncio.to_thread(_burst, base, paths)
        )
        busy = await _all_settled(replica, sent)

    # Assert: every order settled (above); every read answered 200 or 503, never 500; MongoDB
    # was read, and only on the store's loop (never the engine's thread)
    repository = replica.repository
    print(
        f"\nplace_to_settled_median_ms without_burst={statistics.median(quiet):.1f} "
        f"with_burst={statistics.median(busy):.1f} burst_gets={sum(statuses.values())} "
        f"burst_s={burst_s:.1f} "
        f"statuses={dict(statuses)} mongodb_reads={repository.reads - reads_before} "
        f"read_threads={dict(repository.read_threads)}"
    )
    assert set(statuses) <= {200, 503}
    assert statuses[200] > 0
    assert sum(statuses.values()) == READERS * READS_EACH
    assert repository.reads > reads_before
    store_thread = {t.ident: t.name for t in threading.enumerate()}[
        repository.connection.loop_thread_id
    ]
    assert set(repository.read_threads) == {store_thread}
    assert "oms-engine" not in repository.read_threads
    assert replica.service.engine_trouble() is None
