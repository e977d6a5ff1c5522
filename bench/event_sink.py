"""Event sink benchmark: order events through ``KafkaEventSink`` to the local broker.

    python bench/event_sink.py --events 200000

Prints ``name: value`` lines only (a script reads them); never asserts. Each run uses its own
``order-events``/``risk-events`` topics (a unique suffix) and deletes them at the end.

The events are real ones, built beforehand (building them is the engine's cost, not the
sink's): orders over ``--accounts`` accounts, each placed, accepted, filled and settled, and
every ``--reject-every``-th order placed and rejected (a rejection is also a record on
``risk-events``). The orders' events are interleaved the way the journal hands them on (an
order's events spread over consecutive batches) and cut into batches of ``--batch`` events.
A plain thread (as the engine's dispatcher) calls ``publish`` for every batch; then the loop
awaits ``drain()``, which returns once Kafka has acknowledged all of it. The garbage collector
is tuned as ``oms serve`` tunes it (``tune_gc``), after the events are built.

- ``events_per_s``: events from the first ``publish`` until ``drain()`` returned.
- ``cpu_us_per_event``: this process's CPU time (every thread: the publishing thread, the
  event loop, aiokafka) over the same span, per event.
- ``publish_us_per_event``: the publishing thread's own CPU time in ``publish``, per event:
  what the engine's dispatcher pays.
- ``published``/``failed``: the sink's counters (records: a rejection counts twice).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oms.config import Settings
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import (
    OrderAccepted,
    OrderEvent,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
)
from oms.domain.reasons import RejectReason
from oms.gc_tuning import tune_gc
from oms.stream.event_sink import KafkaEventSink
from oms.stream.names import TopicNames
from oms.stream.topics import TopicSpec, delete_topics, ensure_topics

INTERLEAVE = 125  # orders whose events are interleaved: about one journal batch of 4 events each
DRAIN_TIMEOUT_S = 300.0


def history(n: int, accounts: int, reject_every: int, at: float) -> list[OrderEvent]:
    """The events of order ``n``: a filled and settled LIMIT BUY, or a rejected one."""
    order_id = f"ord-{n:09d}-{uuid.uuid4().hex[:8]}"
    placed = OrderPlaced(
        order_id,
        1,
        f"place:{order_id}",
        at,
        client_order_id=f"c-{n}",
        account_id=f"acct-{n % accounts}",
        symbol="BTC-USD",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.015"),
        price=Decimal("64250.50"),
        time_in_force=TimeInForce.GTC,
    )
    if reject_every and n % reject_every == reject_every - 1:
        return [
            placed,
            OrderRejected(
                order_id,
                2,
                f"place:{order_id}",
                at + 0.0001,
                RejectReason.INSUFFICIENT_BUYING_POWER,
                "required=1060.13 available=12.50",
            ),
        ]
    return [
        placed,
        OrderAccepted(order_id, 2, f"place:{order_id}", at + 0.0001, Decimal("70675.50")),
        OrderFilled(
            order_id,
            3,
            f"x-{n}-1",
            at + 0.0002,
            Decimal("0.015"),
            Decimal("64250.50"),
            Decimal("0.963757"),
        ),
        OrderSettled(order_id, 4, f"settle:{order_id}", at + 0.0003),
    ]


def journal_batches(
    count: int, batch: int, accounts: int, reject_every: int, first: int = 0
) -> list[list[OrderEvent]]:
    """At least ``count`` events in batches of ``batch``, orders interleaved as in the journal."""
    at = time.time()
    stream: list[OrderEvent] = []
    n = first
    while len(stream) < count:
        group = [history(n + i, accounts, reject_every, at) for i in range(INTERLEAVE)]
        n += INTERLEAVE
        for step in range(4):
            stream.extend(events[step] for events in group if step < len(events))
    stream = stream[:count]
    # A cut may leave an order placed but never ended: harmless, the sink only forgets less.
    return [stream[i : i + batch] for i in range(0, len(stream), batch)]


def publish_all(sink: KafkaEventSink, batches: list[list[OrderEvent]], spent: list[float]) -> None:
    """The dispatcher's side: hand every batch to the sink; record this thread's CPU time."""
    started = time.thread_time()
    for events in batches:
        sink.publish(events)
    spent.append(time.thread_time() - started)


async def run(args: argparse.Namespace) -> dict[str, float | int | str]:
    """Publish the events through a started sink and measure; delete the topics afterwards."""
    settings = Settings.from_env()
    names = TopicNames.suffixed(f"bench-{uuid.uuid4().hex[:10]}")
    topics = [names.order_events, names.risk_events]
    await ensure_topics(
        settings, tuple(TopicSpec(t, args.partitions, "account_id") for t in topics)
    )
    batches = journal_batches(args.events, args.batch, args.accounts, args.reject_every)
    warmup = journal_batches(args.batch, args.batch, args.accounts, 0, first=10**8)
    rejections = sum(isinstance(e, OrderRejected) for events in batches for e in events)
    # As `oms serve` does at start-up: the prebuilt events stand for the engine's long-lived heap.
    tune_gc()
    sink = KafkaEventSink(settings, names)
    await sink.start()
    try:
        # Metadata, connections and the producer id are fetched once: not the steady cost.
        for events in warmup:
            sink.publish(events)
        await asyncio.wait_for(sink.drain(), DRAIN_TIMEOUT_S)
        published_before, failed_before = sink.published, sink.failed

        spent: list[float] = []
        publisher = threading.Thread(target=publish_all, args=(sink, batches, spent))
        wall, cpu = time.perf_counter(), time.process_time()
        publisher.start()
        # The publisher never blocks, so joining it on the loop's thread is brief.
        await asyncio.to_thread(publisher.join)
        timed_out = False
        try:
            await asyncio.wait_for(sink.drain(), DRAIN_TIMEOUT_S)
        except TimeoutError:
            timed_out = True
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await sink.stop()
        await delete_topics(settings, topics)
    events = sum(len(b) for b in batches)
    return {
        "events": events,
        "batch": args.batch,
        "accounts": args.accounts,
        "partitions": args.partitions,
        "rejections": rejections,
        "seconds": round(wall, 3),
        "events_per_s": round(events / wall),
        "cpu_us_per_event": round(cpu / events * 1e6, 2),
        "publish_us_per_event": round(spent[0] / events * 1e6, 2) if spent else -1,
        "published": sink.published - published_before,
        "failed": sink.failed - failed_before,
        "timed_out": str(timed_out).lower(),
    }


def main() -> None:
    """Parse the arguments, run once, print ``name: value`` lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500, help="events per publish call")
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--partitions", type=int, default=Settings().events_partitions)
    parser.add_argument("--reject-every", type=int, default=50, help="0: no rejections")
    args = parser.parse_args()
    for name, value in asyncio.run(run(args)).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
