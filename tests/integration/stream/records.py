"""Reading a topic back from the real broker, for the stream tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from oms.config import Settings


async def read_all(
    settings: Settings,
    topic: str,
    until: Callable[[list[Any]], bool],
    *,
    within_s: float = 20.0,
) -> list[Any]:
    """Every record of ``topic`` from the beginning, read until ``until(records)`` holds; the
    test fails if it does not within ``within_s``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[Any] = []
    try:
        deadline = time.monotonic() + within_s
        while not until(seen):
            assert time.monotonic() < deadline, f"{topic}: {len(seen)} records only"
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                seen.extend(records)
    finally:
        await consumer.stop()
    return seen
