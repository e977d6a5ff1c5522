"""Why ``orders`` is consumed by a batch agent on aiokafka and not by a faust agent.

    python bench/consumer_ceiling.py --records 50000

Produces ``--records`` records of the size of a ``PlaceOrder`` onto a fresh topic (8
partitions, keyed like accounts), then consumes them twice in this process with an EMPTY body:

- ``faust``: a faust-streaming agent taking events in batches (``stream.take_events(1000,
  within=0.01)``), the way the design recommends;
- ``aiokafka``: a group consumer calling ``getmany(max_records=1000)`` and committing each batch,
  which is what ``oms.stream.ingestion.StreamIngestion`` does.

Prints ``name: value`` lines: records/s and process CPU microseconds per record for each, so the
figure does not depend on what else the machine runs. The topic is deleted afterwards;
everything stays on the configured (loopback) broker, and each phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oms.config import Settings  # noqa: E402
from oms.stream.partitioner import reliable_producer  # noqa: E402
from oms.stream.security import aiokafka_security, kafka_ssl_context  # noqa: E402
from oms.stream.topics import TopicSpec, delete_topics, ensure_topics  # noqa: E402

RECORD_BYTES = 330  # an encoded PlaceOrder is about this size
PARTITIONS = 8
TIMEOUT_S = 300.0


async def _produce(settings: Settings, topic: str, count: int) -> None:
    producer = reliable_producer(settings, linger_ms=5)
    await producer.start()
    try:
        value = b"x" * RECORD_BYTES
        for start in range(0, count, 10_000):
            sent = [
                await producer.send(topic, value, key=f"acct-{n % 16}".encode())
                for n in range(start, min(count, start + 10_000))
            ]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _timed(consume: Callable[[], Awaitable[None]], count: int) -> tuple[float, float]:
    """Records/s and CPU microseconds per record of ``consume()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.wait_for(consume(), TIMEOUT_S)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return count / wall, 1e6 * cpu / count


async def faust_agent(settings: Settings, topic: str, count: int) -> tuple[float, float]:
    """A faust agent, batches of 1,000 events, nothing done with them."""
    with tempfile.TemporaryDirectory(prefix="bench-faust-") as datadir:
        return await _faust_agent(settings, topic, count, datadir)


async def _faust_agent(
    settings: Settings, topic: str, count: int, datadir: str
) -> tuple[float, float]:
    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=kafka_ssl_context(settings),
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        store="memory://",
        autodiscover=False,
        datadir=datadir,  # not "<app id>-data" in the working directory
    )
    source = app.topic(topic, key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)
    seen = 0
    done = asyncio.Event()

    async def agent(stream: Any) -> None:
        nonlocal seen
        async for events in stream.take_events(1000, within=0.01):
            seen += len(events)
            if seen >= count:
                done.set()

    app.agent(source, name="bench-ceiling")(agent)
    await app.start()
    try:
        return await _timed(done.wait, count)
    finally:
        await app.stop()


async def aiokafka_batches(settings: Settings, topic: str, count: int) -> tuple[float, float]:
    """A group consumer, ``getmany`` of up to 1,000 records and a commit per batch."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"bench-aiokafka-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **aiokafka_security(settings),
    )
    await consumer.start()

    async def consume() -> None:
        seen = 0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            seen += sum(len(records) for records in batches.values())
            if batches:
                await consumer.commit()

    try:
        return await _timed(consume, count)
    finally:
        await consumer.stop()


async def main() -> None:
    """Produce once, consume it both ways, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    settings = Settings.from_env()
    topic = f"bench-consumer-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, (TopicSpec(topic, PARTITIONS, "account_id"),))
    try:
        await _produce(settings, topic, args.records)
        faust_rate, faust_cpu = await faust_agent(settings, topic, args.records)
        kafka_rate, kafka_cpu = await aiokafka_batches(settings, topic, args.records)
    finally:
        await delete_topics(settings, [topic])
    print(f"records: {args.records}")
    print(f"faust_records_per_s: {faust_rate:.0f}")
    print(f"faust_cpu_us_per_record: {faust_cpu:.1f}")
    print(f"aiokafka_records_per_s: {kafka_rate:.0f}")
    print(f"aiokafka_cpu_us_per_record: {kafka_cpu:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
