"""The price feed: every tick of ``prices`` into the engine, on every replica.

``prices`` is not in the group: every replica needs every tick. ``PriceFeed`` is a plain aiokafka
consumer without a group id that assigns itself all partitions of ``prices``, starts at their
end (the latest prices, no stale replay into the venue), and calls ``Engine.on_tick``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from oms.config import Settings
from oms.engine import Engine
from oms.stream.closing import stop_consumer
from oms.stream.codecs import DecodeError, decode_tick
from oms.stream.dead_letters import DeadLetters, Record, StreamStats
from oms.stream.security import aiokafka_security


class PriceFeed:
    """Every partition of ``prices`` on every replica, outside the group, into ``on_tick``."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        topic: str,
        dead: DeadLetters,
        stats: StreamStats,
        *,
        steady: asyncio.Event | None = None,
        from_beginning: bool = False,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.topic = topic
        self._steady = steady  # ticks wait while it is clear (the engine is being rebuilt)
        self._dead = dead
        self._stats = stats
        self._from_beginning = from_beginning
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._position: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        """Assign every partition, start at the end, and consume in a task."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            client_id=f"{self.settings.kafka_client_id}-prices",
            group_id=None,
            enable_auto_commit=False,
            **aiokafka_security(self.settings),
        )
        partitions = await _partitions(self.settings, self.topic)
        await consumer.start()
        assigned = [TopicPartition(self.topic, p) for p in partitions]
        consumer.assign(assigned)
        if self._from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        for tp in assigned:
            self._position[tp] = await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer), name="oms-prices")

    async def stop(self) -> None:
        """Stop consuming (nothing to commit: a replica always starts at the latest prices)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await stop_consumer(self._consumer, "prices")

    def assigned(self) -> bool:
        """True once every partition of ``prices`` is assigned to this replica."""
        return self._consumer is not None and bool(self._consumer.assignment())

    def lag(self) -> dict[tuple[str, int], int]:
        """Per partition, ticks published but not yet handed to the engine."""
        lag: dict[tuple[str, int], int] = {}
        if self._consumer is None:
            return lag
        for tp, position in self._position.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                lag[(tp.topic, tp.partition)] = max(0, highwater - position)
        return lag

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        instruments = self.engine.instruments
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            if self._steady is not None:
                await self._steady.wait()
            dead: list[asyncio.Future[Any]] = []
            for tp, messages in batch.items():
                for message in messages:
                    try:
                        tick = decode_tick(message.value, instruments)
                    except DecodeError as error:
                        record = Record(
                            tp.topic, tp.partition, message.offset, message.key,
                            message.value, message.timestamp / 1000,
                        )  # fmt: skip
                        dead.append(await self._dead.send(record, error.code, str(error)))
                        continue
                    self.engine.on_tick(tick)
                    self._stats.ticks += 1
                    by_symbol = self._stats.ticks_by_symbol
                    by_symbol[tick.symbol] = by_symbol.get(tick.symbol, 0) + 1
                if messages:
                    self._position[tp] = messages[-1].offset + 1
            if dead:
                await asyncio.gather(*dead, return_exceptions=True)


async def _partitions(settings: Settings, topic: str) -> list[int]:
    """The partition ids of ``topic``, as the broker knows them now."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **aiokafka_security(settings)
    )
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    ids = sorted(p["partition"] for d in described if d["topic"] == topic for p in d["partitions"])
    if not ids:
        raise RuntimeError(f"topic {topic} has no partitions (create it first)")
    return ids
