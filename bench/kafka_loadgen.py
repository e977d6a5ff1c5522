"""The load generator's Kafka clients: librdkafka's (``confluent-kafka``), not aiokafka.

Why. The load generator shares the machine's two cores with the service it measures. With
aiokafka, its producer (building every produce request in Python) and its read-back of
``order-events`` (every record decoded in Python) cost ~260 us of CPU per order at 1,000
orders/s offered (``latency_cpu_us_per_order_loadgen``), a sixth of the machine's time at the
rate the p99 target is asked for: time the service then waited for. librdkafka does both on
threads of its own, in C; Python sees one call per produce and one per message read.

What stays the same as the service's own producer (``oms.stream.partitioner``): acks=all and
idempotence, an account's commands on the partition Kafka's default partitioner gives its key
(``murmur2_random``, the Java client's: librdkafka's own default hashes with CRC32, and its batch
call ignores a partition given per message), each command's request id in its ``request_id``
header. Local, plaintext Kafka only: these are the benchmarks'
clients, not the service's.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as CTopicPartition

from oms.config import Settings
from oms.correlation import kafka_headers
from oms.domain.commands import PlaceOrder
from oms.stream.codecs import command_key, encode_command

# The produce path's wait for more records before a request: the latency phase already hands
# over the orders of each 5 ms slot in one call, so this only joins a slot's partitions.
LINGER_MS = 1
POLL_S = 0.05  # how long a client thread blocks in librdkafka before looking at its stop flag


class LoadgenError(Exception):
    """A produce the broker refused, or a setting these clients cannot honour."""


def _config(settings: Settings) -> dict[str, Any]:
    if settings.kafka_security_protocol.upper() != "PLAINTEXT":
        raise LoadgenError("the benchmarks' Kafka clients speak to a local, plaintext Kafka")
    # Nagle's algorithm would hold a small request back until the last one is acknowledged
    return {"bootstrap.servers": settings.kafka_bootstrap, "socket.nagle.disable": True}


class CommandProducer:
    """Produces ``PlaceOrder`` commands onto ``orders``; ``place`` returns once all are
    acknowledged (acks=all)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self._producer = Producer(
            _config(settings)
            | {
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": LINGER_MS,
                "partitioner": "murmur2_random",
                "client.id": "bench-loadgen",
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="loadgen-produce", daemon=True)

    async def __aenter__(self) -> CommandProducer:
        self._thread.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await asyncio.to_thread(self._producer.flush, 30)
        self._stop.set()
        await asyncio.to_thread(self._thread.join)

    def _serve(self) -> None:
        """Delivery reports: librdkafka calls them from ``poll``, here, off the event loop."""
        while not self._stop.is_set():
            self._producer.poll(POLL_S)

    async def place(self, orders: Sequence[PlaceOrder]) -> None:
        """Produce ``orders`` in order; return when Kafka acknowledged every one."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        left = len(orders)
        failures: list[str] = []

        def settle() -> None:
            if not done.done():
                if failures:
                    done.set_exception(LoadgenError(f"produce refused: {failures[0]}"))
                else:
                    done.set_result(None)

        def delivered(error: KafkaError | None, _message: Any) -> None:
            nonlocal left
            if error is not None:
                failures.append(str(error))
            left -= 1
            if left == 0:
                loop.call_soon_threadsafe(settle)

        if not orders:
            return
        topic = self.topic
        if any(order.request_id is not None for order in orders):
            # headers go only through ``produce`` (librdkafka's batch call takes none)
            for order in orders:
                self._producer.produce(
                    topic,
                    value=encode_command(order),
                    key=command_key(order),
                    headers=kafka_headers(order.request_id),
                    on_delivery=delivered,
                )
        else:
            messages = [
                {
                    "value": encode_command(order),
                    "key": command_key(order),
                }
                for order in orders
            ]
            queued = self._producer.produce_batch(topic, messages, on_delivery=delivered)
            if queued != len(messages):
                refused = next(m.get("_error") for m in messages if "_error" in m)
                raise LoadgenError(f"produce refused: {refused}")
        await done


class EventReader:
    """Reads every record of ``topic``'s partitions on a thread of its own and hands each
    batch, stamped with ``time.perf_counter()`` when librdkafka gave it, to ``absorb`` on the
    event loop."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        absorb: Callable[[float, list[tuple[bytes, int]]], None],
        *,
        from_end: bool,
    ) -> None:
        self.topic = topic
        self._absorb = absorb
        self._from_end = from_end
        self._consumer = Consumer(
            _config(settings)
            | {
                # assigned, never subscribed: the group id is required, never joined or committed
                "group.id": "bench-loadgen",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "fetch.wait.max.ms": 50,
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="loadgen-read", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> EventReader:
        consumer, topic = self._consumer, self.topic
        metadata = await asyncio.to_thread(consumer.list_topics, topic, 10)
        numbers = sorted(metadata.topics[topic].partitions)
        if not numbers:
            raise LoadgenError(f"topic {topic!r} has no partitions")
        if self._from_end:
            # the end now, before anything is placed (OFFSET_END would resolve on the first fetch)
            starts = [await asyncio.to_thread(self._end, q) for q in numbers]
        else:
            starts = [OFFSET_BEGINNING] * len(numbers)
        consumer.assign(
            [CTopicPartition(topic, q, at) for q, at in zip(numbers, starts, strict=True)]
        )
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join)
        await asyncio.to_thread(self._consumer.close)

    def _end(self, partition: int) -> int:
        _low, high = self._consumer.get_watermark_offsets(
            CTopicPartition(self.topic, partition), timeout=10
        )
        return int(high)

    def _serve(self) -> None:
        loop, absorb = self._loop, self._absorb
        poll, consume = self._consumer.poll, self._consumer.consume
        assert loop is not None
        while not self._stop.is_set():
            # ``consume`` returns at its count or its timeout, not when something arrives: so
            # block on one message, then take what else is there without waiting
            first = poll(POLL_S)
            if first is None:
                continue
            now = time.perf_counter()
            batch = []
            for message in [first, *consume(num_messages=10_000, timeout=0)]:
                if message.error() is None:
                    value = message.value()
                    if value is not None:
                        batch.append((value, message.timestamp()[1]))
            loop.call_soon_threadsafe(absorb, now, batch)
