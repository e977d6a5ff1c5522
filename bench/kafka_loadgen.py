"""The load generator's reading back of ``order-events``: librdkafka's (``confluent-kafka``).

Why. The load generator shares the machine's two cores with the service it measures, and
reads back every event the service publishes (four to five per order) to time each order.
aiokafka decodes every record in Python; librdkafka fetches and decodes on a thread of its own,
in C, and Python sees one call per message. Measured interleaved (``bench/e2e.py --via kafka``,
three pairs): the load generator's CPU per order at full load 39-46 us against 63-74 with
aiokafka, Kafka's the same.

The orders themselves go out through the service's own command bus (aiokafka), as the doors
send them: librdkafka sends each partition's records in a request of its own (librdkafka issue
1700), where aiokafka joins a call's partitions in one, and at 1,000 orders/s that cost Kafka
what it saved the load generator. Local, plaintext Kafka only: this is the benchmarks' client,
not the service's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer
from confluent_kafka import TopicPartition as CTopicPartition

from oms.config import Settings

logger = logging.getLogger(__name__)

POLL_S = 0.05  # how long a client thread blocks in librdkafka before looking at its stop flag


class LoadgenError(Exception):
    """A topic or a setting the reader cannot work with."""


def _config(settings: Settings) -> dict[str, Any]:
    if settings.kafka_security_protocol.upper() != "PLAINTEXT":
        raise LoadgenError("the benchmarks' reader speaks to a local, plaintext Kafka")
    # Nagle's algorithm would hold a small request back until the last one is acknowledged
    return {"bootstrap.servers": settings.kafka_bootstrap, "socket.nagle.disable": True}


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
        # What librdkafka reported instead of a record, by error name: the first of each kind
        # is logged as it comes, the count at the end (a missing event then has its reason).
        self.errors: dict[str, int] = {}

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
        if self.errors:
            logger.warning("reading %s back, librdkafka reported: %s", self.topic, self.errors)

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
                error = message.error()
                if error is not None:
                    self._note(error)
                    continue
                value = message.value()
                if value is not None:
                    batch.append((value, message.timestamp()[1]))
            loop.call_soon_threadsafe(absorb, now, batch)

    def _note(self, error: Any) -> None:
        """Count a ``KafkaError`` librdkafka gave instead of a record; log its kind's first."""
        name = str(error.name())
        seen = self.errors.get(name, 0)
        self.errors[name] = seen + 1
        if not seen:
            logger.warning("reading %s back: %s", self.topic, error)
