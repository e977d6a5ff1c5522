"""Fetch pacing on the installed aiokafka against the real broker.

Plain words: the consumer aiokafka builds has the two figures ``FetchPacing`` sets; after a
``getmany`` that found nothing its fetches wait for the first record, and that record (produced
then) is fetched; after a fetch that brought records they gather; every record produced is read
once, in order, across the switches.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from oms.config import Settings
from oms.stream.fetch_pacing import IDLE_MAX_WAIT_MS, IDLE_MIN_BYTES, FetchPacing
from oms.stream.topics import TopicSpec, delete_topics, ensure_topics

pytestmark = pytest.mark.integration


async def read(consumer: AIOKafkaConsumer, pacing: FetchPacing, wanted: int) -> list[bytes]:
    """Values fetched until ``wanted`` came (each ``getmany`` reported to ``pacing``)."""
    values: list[bytes] = []
    for _ in range(50):
        batches = await consumer.getmany(timeout_ms=200)
        pacing.fetched(len(batches))
        values.extend(m.value for ms in batches.values() for m in ms if m.value is not None)
        if len(values) >= wanted:
            break
    return values


async def test_pace_when_fetches_find_nothing_then_records_after_are_read_in_order(
    settings: Settings, unique: str
) -> None:
    topic = f"pacing-{unique}"
    await ensure_topics(settings, (TopicSpec(topic, 1, "account_id"),))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_min_bytes=settings.ingest_fetch_min_bytes,
        fetch_max_wait_ms=settings.ingest_fetch_max_wait_ms,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        pacing = FetchPacing(
            consumer,
            min_bytes=settings.ingest_fetch_min_bytes,
            max_wait_ms=settings.ingest_fetch_max_wait_ms,
        )
        assert await read(consumer, pacing, 1) == []  # fifty empty fetches: waiting
        fetcher = consumer._fetcher
        assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (
            IDLE_MIN_BYTES,
            IDLE_MAX_WAIT_MS,
        )
        await producer.send_and_wait(topic, b"first", key=b"a")
        assert await read(consumer, pacing, 1) == [b"first"]
        assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (
            settings.ingest_fetch_min_bytes,
            settings.ingest_fetch_max_wait_ms,
        )
        later = [f"later-{i}".encode() for i in range(20)]
        for value in later:
            await producer.send_and_wait(topic, value, key=b"a")
        assert await read(consumer, pacing, len(later)) == later
    finally:
        await producer.stop()
        await consumer.stop()
        await delete_topics(settings, [topic])
