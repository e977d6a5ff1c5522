"""The event sink and the command bus against the real broker: order, partition, acks, batches.

Each test has its own topics (``TopicNames.suffixed``), created here with several partitions and
deleted afterwards. Partitions are checked against murmur2 computed here from the key, as
Kafka's default partitioner (and every murmur2 client) places it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import murmur2

from oms.config import Settings
from oms.domain.commands import CancelOrder, PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import (
    OrderAccepted,
    OrderEvent,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
)
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.reasons import RejectReason
from oms.stream.codecs import RiskEventType, decode_risk_event, kill_switch_change, limits_change
from oms.stream.command_bus import KafkaCommandBus
from oms.stream.event_sink import EventsNotPublished, KafkaEventSink
from oms.stream.names import TopicNames
from oms.stream.topics import TopicSpec, delete_topics, ensure_topics
from tests.integration.stream.records import read_all
from tests.unit.store.histories import placed

pytestmark = pytest.mark.integration

PARTITIONS = 6
ACCOUNTS = [f"acct-{i}" for i in range(8)]


def kafka_partition(account: str, partitions: int = PARTITIONS) -> int:
    """Where Kafka's default partitioner puts a record keyed by ``account``."""
    return (murmur2(account.encode()) & 0x7FFFFFFF) % partitions


def order_events(order_id: str, account: str, *, rejected: bool = False) -> list[OrderEvent]:
    """A LIMIT BUY placed, then accepted, filled and settled (or rejected)."""
    at = 1_767_225_600.25
    opening = placed(order_id, account, at)  # the same LIMIT BUY the store tests use
    if rejected:
        return [
            opening,
            OrderRejected(
                order_id,
                2,
                f"place:{order_id}",
                at,
                RejectReason.INSUFFICIENT_BUYING_POWER,
                "need=1",
            ),
        ]
    return [
        opening,
        OrderAccepted(order_id, 2, f"place:{order_id}", at, Decimal("33000.1")),
        OrderFilled(
            order_id, 3, f"x-{order_id}", at, Decimal("0.50"), Decimal("30000.10"), Decimal("1")
        ),
        OrderSettled(order_id, 4, f"settle:{order_id}", at),
    ]


def interleaved(orders: int, *, reject_every: int = 0) -> list[OrderEvent]:
    """The events of ``orders`` orders over every account, each step of all orders in turn,
    so one account's events are spread among the others' as the journal hands them on."""
    histories = [
        order_events(
            f"o-{n}",
            ACCOUNTS[n % len(ACCOUNTS)],
            rejected=bool(reject_every) and n % reject_every == 0,
        )
        for n in range(orders)
    ]
    return [h[step] for step in range(4) for h in histories if step < len(h)]


def published_from_a_thread(sink: KafkaEventSink, batches: list[list[OrderEvent]]) -> None:
    """Publish as the engine's dispatcher does: from a plain thread, never from the loop."""
    thread = threading.Thread(target=lambda: [sink.publish(b) for b in batches])
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


@dataclass
class Topics:
    """This test's topic names, its settings, and a reader of what reached the broker."""

    settings: Settings
    names: TopicNames

    async def read(self, topic: str, count: int) -> list[Any]:
        """Every record of ``topic`` from the beginning, once ``count`` have arrived."""
        return await read_all(self.settings, topic, lambda seen: len(seen) >= count, within_s=30)

    async def end_offsets(self, topic: str) -> int:
        """How many records ``topic`` holds now, without waiting for more."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            return sum((await consumer.end_offsets(partitions)).values())
        finally:
            await consumer.stop()


@pytest.fixture
async def topics(settings: Settings, unique: str) -> AsyncIterator[Topics]:
    names = TopicNames.suffixed(unique)
    made = [names.order_events, names.risk_events, names.orders, names.executions]
    await ensure_topics(settings, tuple(TopicSpec(t, PARTITIONS, "account_id") for t in made))
    try:
        yield Topics(settings, names)
    finally:
        await delete_topics(settings, made)


@pytest.fixture
async def started() -> AsyncIterator[Callable[[KafkaEventSink], Any]]:
    sinks: list[KafkaEventSink] = []

    async def start(sink: KafkaEventSink) -> KafkaEventSink:
        await sink.start()
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        await sink.stop()


def by_account(records: list[Any]) -> dict[str, list[Any]]:
    """The records per key, each account's in the order the partition holds them."""
    records = sorted(records, key=lambda r: (r.partition, r.offset))
    grouped: dict[str, list[Any]] = defaultdict(list)
    for record in records:
        grouped[record.key.decode()].append(record)
    return grouped


async def test_event_sink_when_publishing_then_an_accounts_events_arrive_in_order_on_its_partition(
    topics: Topics, started: Callable[[KafkaEventSink], Any]
) -> None:
    # Arrange
    sink = await started(KafkaEventSink(topics.settings, topics.names))
    events = interleaved(400, reject_every=7)
    rejections = [e for e in events if isinstance(e, OrderRejected)]
    placed_by = {e.order_id: e.account_id for e in events if isinstance(e, OrderPlaced)}

    # Act
    published_from_a_thread(sink, [events[i : i + 37] for i in range(0, len(events), 37)])
    await sink.drain()

    # Assert
    records = await topics.read(topics.names.order_events, len(events))
    assert len(records) == len(events)
    grouped = by_account(records)
    for account in ACCOUNTS:
        expected = [(e.order_id, e.sequence) for e in events if placed_by[e.order_id] == account]
        arrived = [orjson.loads(r.value) for r in grouped[account]]
        assert [(a["order_id"], a["sequence"]) for a in arrived] == expected
        assert {a["account_id"] for a in arrived} == {account}
        assert {r.partition for r in grouped[account]} == {kafka_partition(account)}
    risks = await topics.read(topics.names.risk_events, len(rejections))
    assert sorted(orjson.loads(r.value)["order_id"] for r in risks) == sorted(
        e.order_id for e in rejections
    )
    assert all(r.partition == kafka_partition(r.key.decode()) for r in risks)
    assert (sink.published, sink.failed) == (len(events) + len(rejections), 0)


async def test_drain_when_events_were_handed_over_then_returns_once_kafka_acknowledged_them(
    topics: Topics, started: Callable[[KafkaEventSink], Any]
) -> None:
    # Arrange
    sink = await started(KafkaEventSink(topics.settings, topics.names))
    await sink.drain()  # nothing handed over yet: returns at once
    events = interleaved(1_000)

    # Act
    published_from_a_thread(sink, [events[i : i + 500] for i in range(0, len(events), 500)])
    await sink.drain()

    # Assert: counted from the acks, and already on the broker when drain returned
    assert (sink.published, sink.failed) == (len(events), 0)
    assert await topics.end_offsets(topics.names.order_events) == len(events)


async def test_drain_when_events_keep_coming_then_waits_only_for_those_published_before_it(
    topics: Topics, started: Callable[[KafkaEventSink], Any]
) -> None:
    # Arrange: a thread keeps publishing (as the engine under load does) until told to stop
    sink = await started(KafkaEventSink(topics.settings, topics.names))
    before = interleaved(500)
    published_from_a_thread(sink, [before])
    stop = threading.Event()

    def keep_publishing() -> None:
        n = 0
        while not stop.is_set():
            sink.publish(
                [e for k in range(50) for e in order_events(f"later-{n}-{k}", ACCOUNTS[k % 8])]
            )
            n += 1

    publisher = threading.Thread(target=keep_publishing)
    publisher.start()
    try:
        # Act
        await asyncio.wait_for(sink.drain(), 10.0)
    finally:
        stop.set()
        publisher.join(10)

    # Assert: everything published before the call is acknowledged, and the drain returned
    # although the publisher never paused (waiting for an empty queue would chase it)
    assert sink.published >= len(before)


async def test_drain_when_kafka_refuses_a_batch_then_fails_until_it_is_sent_again(
    topics: Topics, started: Callable[[KafkaEventSink], Any]
) -> None:
    # Arrange: Kafka refuses every record batch (the first hand-over and the drain's re-send),
    # until the broker comes back
    sink = await started(KafkaEventSink(topics.settings, topics.names, batch_bytes=4_096))
    send_batch = sink._producer.send_batch
    refusals = {"left": 10_000}

    async def flaky(batch: Any, topic: str, *, partition: int) -> Any:
        if refusals["left"] > 0:
            refusals["left"] -= 1
            refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            refused.set_exception(KafkaTimeoutError("broker away"))
            return refused
        return await send_batch(batch, topic, partition=partition)

    sink._producer.send_batch = flaky
    events = interleaved(300)

    # Act
    published_from_a_thread(sink, [events])
    with pytest.raises(EventsNotPublished) as refused:
        await sink.drain()
    assert refused.value.code == "EVENTS_NOT_PUBLISHED"
    refusals["left"] = 0
    await sink.drain()  # the barrier retries: this time everything goes

    # Assert: every event is on the broker exactly once, each account's in sequence order
    assert sink.published == len(events)
    assert sink.failed > 0
    records = await topics.read(topics.names.order_events, len(events))
    assert len(records) == len(events)
    arrived = [orjson.loads(r.value) for r in records]
    assert sorted((a["order_id"], a["sequence"]) for a in arrived) == sorted(
        (e.order_id, e.sequence) for e in events
    )


async def test_event_sink_when_a_batch_exceeds_one_record_batch_then_splits_and_delivers_it_all(
    topics: Topics, started: Callable[[KafkaEventSink], Any]
) -> None:
    # Arrange: record batches of 2 KiB hold a handful of events each
    sink = await started(KafkaEventSink(topics.settings, topics.names, batch_bytes=2_048))
    handed: dict[int, int] = defaultdict(int)
    send_batch = sink._producer.send_batch

    async def counting(batch: Any, topic: str, *, partition: int) -> Any:
        handed[partition] += 1
        return await send_batch(batch, topic, partition=partition)

    sink._producer.send_batch = counting
    events = interleaved(1_500)

    # Act: one publish, as a large journal batch would be
    published_from_a_thread(sink, [events])
    await sink.drain()

    # Assert
    assert (sink.published, sink.failed) == (len(events), 0)
    busiest = max(handed.values())
    assert busiest > 10, handed
    records = await topics.read(topics.names.order_events, len(events))
    assert len(records) == len(events)
    grouped = by_account(records)
    for account in ACCOUNTS:
        orders = [orjson.loads(r.value)["order_id"] for r in grouped[account]]
        expected = [e.order_id for e in events if e.order_id in set(orders)]
        assert orders == expected


async def test_command_bus_when_given_many_commands_then_keeps_each_accounts_order_and_partition(
    topics: Topics,
) -> None:
    # Arrange
    bus = KafkaCommandBus(topics.settings, topics.names)
    commands: list[PlaceOrder | CancelOrder] = []
    for n in range(600):
        account = ACCOUNTS[n % len(ACCOUNTS)]
        commands.append(
            PlaceOrder(
                command_id=f"place:o-{n}",
                order_id=f"o-{n}",
                client_order_id=f"c-{n}",
                account_id=account,
                symbol="BTC-USD",
                side=Side.BUY,
                type=OrderType.LIMIT,
                quantity=Decimal("0.5"),
                price=Decimal("30000.10"),
                time_in_force=TimeInForce.GTC,
                created_at=1_767_225_600.0,
            )
        )
        if n % 3 == 0:
            commands.append(
                CancelOrder(
                    command_id=f"cancel:o-{n}",
                    order_id=f"o-{n}",
                    account_id=account,
                    requested_at=1_767_225_601.0,
                )
            )
    await bus.start()
    try:
        # Act
        await bus.send(commands)

        # Assert: acknowledged when send returned
        assert await topics.end_offsets(topics.names.orders) == len(commands)
    finally:
        await bus.stop()
    grouped = by_account(await topics.read(topics.names.orders, len(commands)))
    for account in ACCOUNTS:
        arrived = [orjson.loads(r.value)["command_id"] for r in grouped[account]]
        assert arrived == [c.command_id for c in commands if c.account_id == account]
        assert {r.partition for r in grouped[account]} == {kafka_partition(account)}


async def test_event_sink_when_publishing_then_places_each_account_where_a_plain_producer_would(
    topics: Topics, started: Callable[[KafkaEventSink], Any], settings: Settings
) -> None:
    # Arrange: a producer with aiokafka's own default partitioner, one record per account
    plain = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await plain.start()
    try:
        expected = {
            account: (
                await (await plain.send(topics.names.orders, b"{}", account.encode()))
            ).partition
            for account in ACCOUNTS
        }
    finally:
        await plain.stop()
    sink = await started(KafkaEventSink(topics.settings, topics.names))

    # Act
    events = interleaved(len(ACCOUNTS))
    published_from_a_thread(sink, [events])
    await sink.drain()

    # Assert
    grouped = by_account(await topics.read(topics.names.order_events, len(events)))
    assert {a: {r.partition for r in grouped[a]} for a in ACCOUNTS} == {
        a: {p} for a, p in expected.items()
    }


async def test_missing_when_some_events_are_on_the_topic_then_republishes_only_the_others(
    topics: Topics, started: Callable[[KafkaEventSink], Any]
) -> None:
    """The outbox at recovery: of the events the store holds after a checkpoint, those already
    on ``order-events`` (published before a crash) are not sent again; the rest are, each
    order's in sequence order, and then every event is on the topic exactly once."""
    # Arrange: events of an order before the checkpoint, then three orders after it of which
    # only part reached the topic before the "crash"
    sink = await started(KafkaEventSink(topics.settings, topics.names))
    before = order_events("o-before", "acct-0")
    published_from_a_thread(sink, [before])
    await sink.drain()
    since = await sink.end_offsets()
    after = [order_events(f"o-{n}", ACCOUNTS[n]) for n in range(3)]
    reached = [after[0][:4], after[1][:2]]  # o-0 whole, o-1 half, o-2 nothing
    published_from_a_thread(sink, reached)
    await sink.drain()
    held = [(e, ACCOUNTS[n]) for n, h in enumerate(after) for e in h]

    # Act
    missing = await sink.missing(held, since)
    by_time = await sink.missing(held, None, since_time=time.time())  # no checkpoint: by clock
    sink.republish(missing)
    await sink.drain()

    # Assert
    assert [(e.order_id, e.sequence) for e, _ in missing] == [
        ("o-1", 3), ("o-1", 4), ("o-2", 1), ("o-2", 2), ("o-2", 3), ("o-2", 4),
    ]  # fmt: skip
    assert by_time == missing
    total = len(before) + sum(len(h) for h in after)
    records = await topics.read(topics.names.order_events, total)
    seen = [(orjson.loads(r.value)["order_id"], orjson.loads(r.value)["sequence"]) for r in records]
    assert len(seen) == len(set(seen)) == total
    for account, grouped in by_account(records).items():
        for order_id in {orjson.loads(r.value)["order_id"] for r in grouped}:
            sequences = [
                orjson.loads(r.value)["sequence"]
                for r in grouped
                if orjson.loads(r.value)["order_id"] == order_id
            ]
            assert sequences == sorted(sequences), (account, order_id)
    assert await sink.missing(held, since) == []
    assert sink.republished == 6


async def test_publish_risk_event_when_the_kill_switch_and_limits_change_then_risk_events_has_them(
    topics: Topics, started: Callable[[KafkaEventSink], Any]
) -> None:
    # Arrange
    sink = await started(KafkaEventSink(topics.settings, topics.names))
    account = ACCOUNTS[0]
    limits = RiskLimits(max_order_quantity=Decimal("0.1"))
    changes = [
        kill_switch_change(TradingState.HALTED, account, 1.0),
        limits_change(account, limits, 2.0),
        kill_switch_change(TradingState.REDUCING, None, 3.0),
    ]

    # Act
    for change in changes:
        await sink.publish_risk_event(change)

    # Assert: each acknowledged, keyed by its account (empty: global), one account's in order
    records = await topics.read(topics.names.risk_events, len(changes))
    assert sorted((decode_risk_event(r.value) for r in records), key=lambda e: e.at) == changes
    mine = [r for r in records if r.key == account.encode()]
    assert [decode_risk_event(r.value).type for r in sorted(mine, key=lambda r: r.offset)] == [
        RiskEventType.KILL_SWITCH,
        RiskEventType.LIMITS,
    ]
    assert {r.partition for r in mine} == {kafka_partition(account)}
    [everyone] = [r for r in records if r.key in (b"", None)]
    assert decode_risk_event(everyone.value).reason == "REDUCING"
