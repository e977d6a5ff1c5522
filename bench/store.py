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
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oms.config import Settings
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import (
    OrderAccepted,
    OrderEvent,
    OrderFilled,
    OrderPlaced,
    OrderSettled,
)
from oms.domain.orders import Order, fold
from oms.store.documents import order_document
from oms.store.mongo import MongoOrderRepository, init_database


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


async def main() -> None:
    """Run both measurements on fresh databases and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=256, help="events per journal save")
    parser.add_argument("--concurrency", type=int, default=2, help="writes in flight")
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
    finally:
        await client.drop_database(f"bench_ceiling_{suffix}")
        await client.drop_database(f"bench_repo_{suffix}")
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


if __name__ == "__main__":
    asyncio.run(main())
