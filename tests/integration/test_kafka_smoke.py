"""Kafka smoke tests: a multi-partition topic, a consumer group split, and a faust agent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from oms.config import Settings
from oms.stream.topics import TopicSpec, ensure_topics

PARTITIONS = 4
MESSAGES = 200


async def _drain(
    consumer: AIOKafkaConsumer,
    mine: list[bytes],
    stop: asyncio.Event,
    expected: int,
    everyone: list[list[bytes]],
) -> None:
    """Collect this consumer's records until every consumer together has seen ``expected``."""
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            mine.extend(record.value for record in records if record.value is not None)
        if sum(len(s) for s in everyone) >= expected:
            stop.set()


async def test_consumer_group_when_two_consumers_join_then_they_split_the_partitions_and_see_all(
    settings: Settings, unique: str
) -> None:
    # Arrange
    topic = f"smoke-split-{unique}"
    await ensure_topics(settings, (TopicSpec(topic, PARTITIONS, "key"),))
    group = f"smoke-group-{unique}"
    consumers = [
        AIOKafkaConsumer(
            topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        for _ in range(2)
    ]
    for consumer in consumers:
        await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        everything = {TopicPartition(topic, p) for p in range(PARTITIONS)}

        def balanced() -> bool:
            # A consumer that joined alone holds every partition until the rebalance that the
            # second one's join causes has completed: wait for the split, not just any answer.
            first, second = (c.assignment() for c in consumers)
            return (
                bool(first)
                and bool(second)
                and first.isdisjoint(second)
                and (first | second == everything)
            )

        while not balanced():
            assert asyncio.get_running_loop().time() < deadline, "group never balanced"
            await asyncio.gather(*(c.getmany(timeout_ms=100) for c in consumers))
        assignments = [c.assignment() for c in consumers]

        # Act
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            for n in range(MESSAGES):
                await producer.send(topic, key=f"acct-{n % 17}".encode(), value=f"{n}".encode())
            await producer.flush()
        finally:
            await producer.stop()
        seen: list[list[bytes]] = [[], []]
        stop = asyncio.Event()
        drains = [_drain(c, s, stop, MESSAGES, seen) for c, s in zip(consumers, seen, strict=True)]
        await asyncio.wait_for(asyncio.gather(*drains), 30)
    finally:
        for consumer in consumers:
            await consumer.stop()

    # Assert
    assert assignments[0].isdisjoint(assignments[1])
    assert assignments[0] | assignments[1] == {TopicPartition(topic, p) for p in range(PARTITIONS)}
    assert all(s for s in seen), "both consumers should have received messages"
    assert sorted(int(v) for s in seen for v in s) == list(range(MESSAGES))


async def test_faust_agent_when_a_producer_sends_then_consumes_it(
    settings: Settings, unique: str, tmp_path: Path
) -> None:
    # Arrange
    topic_name = f"smoke-faust-{unique}"
    await ensure_topics(settings, (TopicSpec(topic_name, 2, "key"),))
    app = faust.App(
        f"smoke-{unique}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        store="memory://",
        datadir=str(tmp_path / "faust"),  # not "<app id>-data" in the working directory
    )
    topic = app.topic(topic_name, value_serializer="raw")
    received: list[bytes] = []
    done = asyncio.Event()

    @app.agent(topic)
    async def collect(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            received.append(value)
            if len(received) == 10:
                done.set()

    # Act
    await app.start()
    try:
        for n in range(10):
            await topic.send(key=f"k{n}".encode(), value=f"v{n}".encode())
        await asyncio.wait_for(done.wait(), 60)
    finally:
        await app.stop()

    # Assert
    assert sorted(received) == sorted(f"v{n}".encode() for n in range(10))
