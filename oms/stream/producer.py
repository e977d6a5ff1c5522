"""Producing to Kafka: order entry's command bus and the engine's event sink.

Both use one aiokafka producer each with ``acks=all`` and idempotence on, so a retried send is
neither lost nor duplicated and records of one partition keep their order. Keys are the account
id, so one account's commands and events stay in order on one partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from oms.config import Settings
from oms.domain.commands import ApplyFill
from oms.domain.events import (
    OrderCancelled,
    OrderEvent,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
)
from oms.store.ports import EventSink
from oms.stream.bus import CommandBus, OrderCommand
from oms.stream.codecs import (
    RiskEvent,
    command_key,
    encode_command,
    encode_event,
    encode_risk_event,
    rejection,
)
from oms.stream.names import TopicNames
from oms.stream.security import aiokafka_security

logger = logging.getLogger(__name__)

_TERMINAL_EVENTS = (OrderRejected, OrderCancelled, OrderSettled)


class CachedPartitioner:
    """Kafka's default partitioner (murmur2 of the key), remembering each key's partition.

    aiokafka computes murmur2 in pure Python for every keyed message; keys here are account ids
    (or symbols), few and repeated, so the hash is computed once per key and partition count.
    The answer is the default partitioner's, so other producers of the topic (any client
    using murmur2) put an account's messages on the same partition.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self._default = DefaultPartitioner()
        self._index: dict[tuple[bytes, int], int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        """The partition of ``key`` among ``all_partitions`` (random among ``available`` if None)."""
        if key is None:
            return int(self._default(key, all_partitions, available))
        slot = (key, len(all_partitions))
        index = self._index.get(slot)
        if index is None:
            partition = int(self._default(key, all_partitions, available))
            if len(self._index) >= self._max_keys:
                self._index.clear()
            self._index[slot] = all_partitions.index(partition)
            return partition
        return all_partitions[index]


def reliable_producer(settings: Settings, *, linger_ms: int = 2) -> AIOKafkaProducer:
    """A producer that loses nothing it acknowledged: acks=all, idempotent, ordered retries."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.kafka_client_id}-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        partitioner=CachedPartitioner(),
        **aiokafka_security(settings),
    )


class KafkaCommandBus(CommandBus):
    """Order entry's bus: each command onto ``orders`` (fills onto ``executions``), keyed by account.

    ``send`` returns once Kafka has acknowledged every command (acks=all): the REST layer's 202.
    """

    def __init__(self, settings: Settings, names: TopicNames | None = None) -> None:
        self.names = names or TopicNames()
        self._producer = reliable_producer(settings, linger_ms=1)

    async def start(self) -> None:
        """Connect the producer."""
        await self._producer.start()

    async def stop(self) -> None:
        """Send what is pending, then disconnect."""
        await self._producer.stop()

    async def send(self, commands: Sequence[OrderCommand]) -> None:
        """Produce the commands in order; return when all are acknowledged."""
        sent = []
        for command in commands:
            topic = self.names.executions if isinstance(command, ApplyFill) else self.names.orders
            sent.append(
                await self._producer.send(
                    topic, value=encode_command(command), key=command_key(command)
                )
            )
        if sent:
            await asyncio.gather(*sent)


class KafkaEventSink(EventSink):
    """Publishes each batch of order events on ``order-events`` (and rejections on ``risk-events``).

    ``publish`` is called on the engine's dispatcher thread and must not block it: it finds each
    event's account there (events after the first carry only the order id, so the sink keeps
    ``order_id -> account_id`` for open orders and forgets it at the terminal event), then hands
    the batch to the event loop with ``call_soon_threadsafe``. A task on the loop encodes and
    produces it, in order. ``drain`` waits until everything handed over so far is acknowledged.

    ``account_of`` answers for an order the sink has not seen placed (one rehydrated after a
    restart); it runs on the dispatcher thread, so it should be the repository's ``get``.
    """

    def __init__(
        self,
        settings: Settings,
        names: TopicNames | None = None,
        *,
        account_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.names = names or TopicNames()
        self._producer = reliable_producer(settings)
        self._account_of = account_of
        self._accounts: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early: list[list[tuple[OrderEvent, str | None]]] = []
        self._queue: deque[list[tuple[OrderEvent, str | None]]] = deque()
        self._wake = asyncio.Event()
        self._pending: set[asyncio.Future[Any]] = set()
        self._idle: asyncio.Event = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.failed = 0

    async def start(self) -> None:
        """Connect and start the sending task on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        await self._producer.start()
        self._task = asyncio.create_task(self._run(), name="oms-event-sink")
        for batch in self._early:
            self._enqueue(batch)
        self._early.clear()

    async def stop(self) -> None:
        """Send everything handed over, then disconnect."""
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._producer.stop()

    async def drain(self) -> None:
        """Return once every batch handed over so far is acknowledged by Kafka."""
        while self._queue or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # -- on the dispatcher thread ----------------------------------------------------------

    def publish(self, events: Sequence[OrderEvent]) -> None:
        """Resolve each event's account and hand the batch to the loop (never blocks)."""
        accounts = self._accounts
        batch: list[tuple[OrderEvent, str | None]] = []
        for event in events:
            if isinstance(event, OrderPlaced):
                account: str | None = event.account_id
                accounts[event.order_id] = event.account_id
            else:
                account = accounts.get(event.order_id)
                if account is None:
                    account = self._lookup(event.order_id)
                if isinstance(event, _TERMINAL_EVENTS):
                    accounts.pop(event.order_id, None)
            batch.append((event, account))
        loop = self._loop
        if loop is None:
            self._early.append(batch)
            return
        loop.call_soon_threadsafe(self._enqueue, batch)

    def _lookup(self, order_id: str) -> str | None:
        if self._account_of is None:
            return None
        try:
            return self._account_of(order_id)
        except Exception:
            logger.exception("could not find the account of order %s", order_id)
            return None

    # -- on the loop -----------------------------------------------------------------------

    def _enqueue(self, batch: list[tuple[OrderEvent, str | None]]) -> None:
        self._queue.append(batch)
        self._idle.clear()
        self._wake.set()

    async def _run(self) -> None:
        send = self._producer.send
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue.popleft()
                for event, account in batch:
                    key = None if account is None else account.encode()
                    await self._track(
                        await send(self.names.order_events, encode_event(event, account), key)
                    )
                    if isinstance(event, OrderRejected):
                        await self._track(
                            await send(
                                self.names.risk_events,
                                encode_risk_event(rejection(event, account)),
                                key,
                            )
                        )
            self._idle.set()

    async def _track(self, future: asyncio.Future[Any]) -> None:
        self._pending.add(future)
        future.add_done_callback(self._sent)

    def _sent(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if future.cancelled() or future.exception() is not None:
            self.failed += 1
            logger.error("an order event could not be published: %r", future)
        else:
            self.published += 1

    async def publish_risk_event(self, event: RiskEvent) -> None:
        """Publish one risk event (a kill-switch change from the API) and wait for the ack."""
        key = b"" if event.account_id is None else event.account_id.encode()
        await (await self._producer.send(self.names.risk_events, encode_risk_event(event), key))
