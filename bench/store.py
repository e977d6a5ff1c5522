"""Store benchmark against the real MongoDB-compatible server (FerretDB locally).

    python bench/store.py --orders 20000

Prints ``name: value`` lines only; never asserts a timing. Each run uses a fresh database and
drops it afterwards.

- ``store_ceiling_per_s``: documents/s of ``insert_many`` (1,000 a call, ordered=False) of the
  documents a settled order writes: one ``orders`` document holding its state and its history
  (placed, accepted, two fills, settled), with the indexes ``init_database`` makes for this
  server and as many writes in flight as the repository uses (``--concurrency``). One
  document an order, so this is also the store's ceiling in orders/s (``docs_per_order``).
- ``repository_orders_per_s``: orders/s through ``MongoOrderRepository`` fed the way the
  engine's journal feeds it: ``save`` batches of ``--batch`` events, each order's events spread
  over consecutive batches (placed+accepted, then a fill, then fill+settled), from the first
  save until ``durable()`` says the last one is written.
- ``engine_orders_per_s``: the engine itself (``--engine-orders`` marketable orders, batches of
  500 through ``EngineCore.submit``, at most 5,000 in flight) on ``MongoOrderRepository``, from the
  first submit until every order is terminal *and* ``EngineCore.flush()`` (the durability barrier)
  has returned; ``engine_flush_ms`` is that last barrier alone.
- ``recover_s``: ``MongoOrderRepository.recover()`` reading back the engine run's database.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oms.config import Settings
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import (
    OrderAccepted,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
)
from oms.domain.limits import RiskLimits
from oms.domain.orders import Order, fold
from oms.engine.core import EngineCore
from oms.store.documents import order_document
from oms.store.mongo import MongoOrderRepository
from oms.store.mongo_connection import store_databases
from oms.store.mongo_schema import init_database


def history(n: int, at: float) -> list[OrderEvent]:
    """A settled LIMIT BUY with two fills: the usual life of an order."""
    order_id = f"ord-{uuid.uuid4().hex}"
    return [
        OrderPlaced(
            order_id,
            1,
            f"place:{order_id}",
            at,
            client_order_id=f"c-{n}",
            account_id=f"acct-{n % 50}",
            symbol="BTC-USD",
            side=Side.BUY,
            type=OrderType.LIMIT,
            quantity=Decimal("0.015"),
            price=Decimal("64250.50"),
            time_in_force=TimeInForce.GTC,
        ),
        OrderAccepted(order_id, 2, f"place:{order_id}", at, Decimal("70675.50")),
        OrderFilled(
            order_id, 3, f"x-{n}-1", at, Decimal("0.005"), Decimal("64250.50"), Decimal("0.32")
        ),
        OrderFilled(
            order_id, 4, f"x-{n}-2", at, Decimal("0.010"), Decimal("64250.00"), Decimal("0.64")
        ),
        OrderSettled(order_id, 5, f"settle:{order_id}", at),
    ]


async def store_ceiling(settings: Settings, database: str, orders: int, in_flight: int) -> float:
    """Documents/s of the batched insert of settled orders' documents, ``in_flight`` at once."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    db = client[database]
    await init_database(db)
    docs = []
    for n in range(orders):
        events = history(n, 1.7e9 + n)
        docs.append(order_document(fold(events), events))
    gate = asyncio.Semaphore(in_flight)

    async def insert(chunk: list[dict[str, object]]) -> None:
        async with gate:
            await db["orders"].insert_many(chunk, ordered=False)

    started = time.perf_counter()
    await asyncio.gather(*(insert(docs[i : i + 1000]) for i in range(0, len(docs), 1000)))
    elapsed = time.perf_counter() - started
    await client.close()
    return len(docs) / elapsed


def engine_batches(orders: int, batch: int) -> list[tuple[list[Order], list[OrderEvent]]]:
    """Save batches shaped like the journal's: each order's events spread over three rounds."""
    lives = [history(n, 1.7e9 + n) for n in range(orders)]
    rounds: list[list[OrderEvent]] = []
    per_round = max(1, batch // 2)
    for start in range(0, orders, per_round):
        group = lives[start : start + per_round]
        rounds.append([e for life in group for e in life[:2]])
        rounds.append([life[2] for life in group])
        rounds.append([e for life in group for e in life[3:]])
    states: dict[str, list[OrderEvent]] = {}
    saves = []
    for events in rounds:
        changed: dict[str, Order] = {}
        for event in events:
            states.setdefault(event.order_id, []).append(event)
            changed[event.order_id] = fold(states[event.order_id])
        saves.append((list(changed.values()), events))
    return saves


async def repository_rate(
    settings: Settings, database: str, orders: int, batch: int, concurrency: int
) -> dict[str, float]:
    """Orders/s through the repository from the first save to durable."""
    saves = engine_batches(orders, batch)
    repository = MongoOrderRepository(settings.mongo_url, database, concurrency=concurrency)
    await repository.open()
    try:
        started = time.perf_counter()
        save_s = 0.0
        for shown, (changed, events) in enumerate(saves):
            before = time.perf_counter()
            repository.save(changed, events)
            save_s += time.perf_counter() - before
            if shown % 8 == 0:
                await asyncio.sleep(0)  # let the writer run, as it would beside the engine
        await repository.durable(wait_s=600)
        elapsed = time.perf_counter() - started
        return {
            "repository_orders_per_s": orders / elapsed,
            "repository_save_us": save_s / len(saves) * 1e6,
            "repository_events_per_save": sum(len(e) for _, e in saves) / len(saves),
            "repository_documents": repository.documents_written,
            "repository_writes": repository.writes,
        }
    finally:
        await repository.close()


def engine_rate(settings: Settings, database: str, orders: int) -> dict[str, float]:
    """Orders/s through the engine on the MongoDB repository, until durable."""
    repository = MongoOrderRepository(settings.mongo_url, database)
    repository.start()
    engine = EngineCore(
        Settings(feed_seed=7, mongo_url=settings.mongo_url),
        repository=repository,
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
    )
    engine.start()
    try:
        funds = {a: Decimal(10) ** 12 for a in ("USD", "BTC", "ETH", "SOL")}
        accounts = [f"acct-{n}" for n in range(20)]
        for account in accounts:
            engine.open_account(account, funds).get(timeout=10)
        engine.advance_market(time.time())
        engine.wait_idle()
        commands = _marketable(engine, accounts, orders)
        finished = threading.Event()
        room = threading.Event()
        done = [0]

        def listener(events: list[OrderEvent]) -> None:
            for event in events:
                if type(event) in (OrderSettled, OrderCancelled, OrderRejected):
                    done[0] += 1
            room.set()
            if done[0] >= orders:
                finished.set()

        engine.subscribe(listener)  # type: ignore[arg-type]
        started = time.perf_counter()
        for i in range(0, orders, 500):
            while i - done[0] >= 5_000:
                room.clear()
                room.wait(1.0)
            engine.submit(commands[i : i + 500])
        finished.wait()
        barrier = time.perf_counter()
        engine.flush().get(timeout=600)
        elapsed = time.perf_counter() - started
        flush_ms = (time.perf_counter() - barrier) * 1000
    finally:
        engine.stop()
        repository.stop()
    recovering = MongoOrderRepository(settings.mongo_url, database)
    recovering.start()
    try:
        recovery = recovering.recover_now()
    finally:
        recovering.stop()
    return {
        "engine_orders_per_s": orders / elapsed,
        "engine_flush_ms": flush_ms,
        "recover_s": recovery.seconds,
        "recover_documents": recovery.documents,
    }


def _marketable(engine: EngineCore, accounts: list[str], n: int) -> list[PlaceOrder]:
    rng = random.Random(7)
    books = {s: engine.order_book(s).get(timeout=10) for s in engine.instruments}
    now = time.time()
    out = []
    for i in range(n):
        symbol = rng.choice(list(engine.instruments))
        instrument, book = engine.instruments[symbol], books[symbol]
        assert book is not None
        assert book.best_ask is not None
        assert book.best_bid is not None
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        through = instrument.tick_size * rng.randint(1, 50)
        price = book.best_ask + through if side is Side.BUY else book.best_bid - through
        out.append(
            PlaceOrder(
                f"c{i}",
                f"o{i}-{uuid.uuid4().hex[:6]}",
                f"cl{i}",
                rng.choice(accounts),
                symbol,
                side,
                OrderType.LIMIT,
                instrument.lot_size * rng.randint(1, 20),
                price,
                TimeInForce.IOC,
                now,
            )
        )
    return out


async def main() -> None:
    """Run both measurements on fresh databases and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=256, help="events per journal save")
    parser.add_argument("--concurrency", type=int, default=2, help="writes in flight")
    parser.add_argument("--engine-orders", type=int, default=20_000)
    args = parser.parse_args()
    settings = Settings.from_env()
    suffix = uuid.uuid4().hex[:8]
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    try:
        ceiling = await store_ceiling(
            settings, f"bench_ceiling_{suffix}", args.orders, args.concurrency
        )
        rates = await repository_rate(
            settings, f"bench_repo_{suffix}", args.orders, args.batch, args.concurrency
        )
        engine = await asyncio.to_thread(
            engine_rate, settings, f"bench_engine_{suffix}", args.engine_orders
        )
    finally:
        for name in ("ceiling", "repo", "engine"):
            for dropped in store_databases(f"bench_{name}_{suffix}"):
                await client.drop_database(dropped)
        await client.close()
    print(f"orders: {args.orders}")
    print("docs_per_order: 1")
    print(f"writes_in_flight: {args.concurrency}")
    print(f"store_ceiling_per_s: {ceiling:.0f}")
    print(f"repository_orders_per_s: {rates['repository_orders_per_s']:.0f}")
    print(f"repository_ratio_to_ceiling: {rates['repository_orders_per_s'] / ceiling:.2f}")
    print(f"repository_save_us: {rates['repository_save_us']:.1f}")
    print(f"repository_events_per_save: {rates['repository_events_per_save']:.0f}")
    print(f"repository_documents: {rates['repository_documents']:.0f}")
    print(f"repository_writes: {rates['repository_writes']:.0f}")
    print(f"engine_orders: {args.engine_orders}")
    print(f"engine_orders_per_s: {engine['engine_orders_per_s']:.0f}")
    print(f"engine_flush_ms: {engine['engine_flush_ms']:.1f}")
    print(f"recover_s: {engine['recover_s']:.2f}")
    print(f"recover_documents: {engine['recover_documents']:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
