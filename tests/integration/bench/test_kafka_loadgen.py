"""The benchmarks' librdkafka reader (``bench/kafka_loadgen.py``) against the real broker: it
hands over what is published from the moment it starts watching, nothing before, every record
stamped (a benchmark whose reader did otherwise would time the wrong orders)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from oms.config import Settings
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.stream.command_bus import KafkaCommandBus
from oms.stream.names import TopicNames
from oms.stream.topics import TopicSpec, delete_topics, ensure_topics

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from kafka_loadgen import EventReader

pytestmark = pytest.mark.integration

PARTITIONS = 6
ACCOUNTS = [f"acct-{i}" for i in range(8)]


@pytest.fixture
async def topic(settings: Settings) -> AsyncIterator[str]:
    name = f"bench-loadgen-{uuid.uuid4().hex[:12]}"
    await ensure_topics(settings, (TopicSpec(name, PARTITIONS, "account_id"),))
    yield name
    await delete_topics(settings, [name])


def order(n: int) -> PlaceOrder:
    return PlaceOrder(
        command_id=f"place:o-{n}",
        order_id=f"o-{n}",
        client_order_id=f"c-{n}",
        account_id=ACCOUNTS[n % len(ACCOUNTS)],
        symbol="BTC-USD",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=Decimal("0.001"),
        price=None,
        time_in_force=TimeInForce.IOC,
        created_at=1_767_225_600.25,
    )


async def test_read_when_started_from_the_end_then_only_later_records_are_handed_over(
    settings: Settings, topic: str
) -> None:
    handed: list[tuple[float, bytes, int]] = []
    all_in = asyncio.Event()

    def absorb(now: float, batch: list[tuple[bytes, int]]) -> None:  # on the event loop
        handed.extend((now, value, timestamp) for value, timestamp in batch)
        if len(handed) >= 10:
            all_in.set()

    bus = KafkaCommandBus(settings, TopicNames(orders=topic))
    await bus.start()
    try:
        await bus.send([order(n) for n in range(10)])  # before the reader: not handed over
        async with EventReader(settings, topic, absorb, from_end=True):
            started = time.perf_counter()
            await bus.send([order(n) for n in range(10, 20)])
            async with asyncio.timeout(20):
                await all_in.wait()
            await asyncio.sleep(0.5)  # nothing more comes
    finally:
        await bus.stop()

    assert sorted(orjson.loads(value)["order_id"] for _, value, _ in handed) == sorted(
        f"o-{n}" for n in range(10, 20)
    )
    assert all(now >= started and timestamp > 0 for now, _, timestamp in handed)
