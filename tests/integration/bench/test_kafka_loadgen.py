"""The benchmarks' librdkafka clients (``bench/kafka_loadgen.py``) against the real broker.

The load generator must place an order exactly where the service's own producer would (the
account's murmur2 partition, in order, with its request id) and see what the service publishes
from the moment it starts watching: a benchmark built on a client that did otherwise would
measure another system.
"""

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
from aiokafka.partitioner import murmur2

from oms.config import Settings
from oms.correlation import KAFKA_HEADER
from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.stream.codecs import encode_command
from oms.stream.topics import TopicSpec, delete_topics, ensure_topics
from tests.integration.stream.records import read_all

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from kafka_loadgen import CommandProducer, EventReader

pytestmark = pytest.mark.integration

PARTITIONS = 6
ACCOUNTS = [f"acct-{i}" for i in range(8)]


@pytest.fixture
async def topic(settings: Settings) -> AsyncIterator[str]:
    name = f"bench-loadgen-{uuid.uuid4().hex[:12]}"
    await ensure_topics(settings, (TopicSpec(name, PARTITIONS, "account_id"),))
    yield name
    await delete_topics(settings, [name])


def order(n: int, *, request_id: str | None = None) -> PlaceOrder:
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
        request_id=request_id,
    )


async def test_place_when_orders_are_acknowledged_then_each_is_on_its_accounts_murmur2_partition_in_order(
    settings: Settings, topic: str
) -> None:
    orders = [order(n) for n in range(40)]
    async with CommandProducer(settings, topic) as producer:
        await producer.place(orders)

    records = await read_all(settings, topic, lambda seen: len(seen) >= len(orders))

    assert len(records) == len(orders)
    for record in records:
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % PARTITIONS
    for account in ACCOUNTS:
        expected = [encode_command(o) for o in orders if o.account_id == account]
        assert [r.value for r in records if r.key == account.encode()] == expected


async def test_place_when_an_order_carries_a_request_id_then_its_record_has_the_header(
    settings: Settings, topic: str
) -> None:
    async with CommandProducer(settings, topic) as producer:
        await producer.place([order(1, request_id="req-1"), order(2, request_id="req-2")])

    records = await read_all(settings, topic, lambda seen: len(seen) >= 2)

    headers = sorted(dict(r.headers)[KAFKA_HEADER] for r in records)
    assert headers == [b"req-1", b"req-2"]


async def test_read_when_started_from_the_end_then_only_later_records_are_handed_over(
    settings: Settings, topic: str
) -> None:
    handed: list[tuple[float, bytes, int]] = []
    all_in = asyncio.Event()

    def absorb(now: float, batch: list[tuple[bytes, int]]) -> None:  # on the event loop
        handed.extend((now, value, timestamp) for value, timestamp in batch)
        if len(handed) >= 10:
            all_in.set()

    async with CommandProducer(settings, topic) as producer:
        await producer.place([order(n) for n in range(10)])  # before the reader: not handed
        async with EventReader(settings, topic, absorb, from_end=True):
            started = time.perf_counter()
            await producer.place([order(n) for n in range(10, 20)])
            async with asyncio.timeout(20):
                await all_in.wait()
            await asyncio.sleep(0.5)  # nothing more comes

    assert sorted(orjson.loads(value)["order_id"] for _, value, _ in handed) == sorted(
        f"o-{n}" for n in range(10, 20)
    )
    assert all(now >= started and timestamp > 0 for now, _, timestamp in handed)
