"""The engine's event sink on Kafka: order events onto ``order-events``, rejections and the
API's kill-switch and limits changes onto ``risk-events``, and the outbox recovery reads back
(batching and partitioning: ``oms.stream.partitioner``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from oms.config import Settings
from oms.domain.errors import DomainError
from oms.domain.events import (
    OrderCancelled,
    OrderEvent,
    OrderExpired,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
)
from oms.engine.ports import EventSink
from oms.legs import Legs
from oms.stream.bus import RiskEventSink
from oms.stream.codecs import RiskEvent, encode_event, encode_risk_event, rejection
from oms.stream.names import TopicNames
from oms.stream.partitioner import (
    RECORD_BATCH_BYTES,
    CachedPartitioner,
    PartitionedBatches,
    Records,
    interleave,
    reliable_producer,
)
from oms.stream.security import aiokafka_security

logger = logging.getLogger(__name__)

_TERMINAL_EVENTS = (OrderRejected, OrderCancelled, OrderSettled, OrderExpired)
# How far a record's timestamp (the producer's clock) may lag the store's clock.
_CLOCK_SKEW_S = 60.0
# Events taken off the sink's queue at once: enough to fill a few batches per partition, few
# enough that encoding them holds the event loop for milliseconds, not a backlog's seconds.
_CHUNK_EVENTS = 2_048


class EventsNotPublished(DomainError):
    """Order events Kafka refused are still waiting to be sent again."""

    code = "EVENTS_NOT_PUBLISHED"


class KafkaEventSink(EventSink, RiskEventSink):
    """Publishes each batch of order events on ``order-events`` (and rejections on ``risk-events``).

    ``publish`` is called on the engine's dispatcher thread and must not block it: it finds each
    event's account there (events after the first carry only the order id, so the sink keeps
    ``order_id -> account_id`` for open orders and forgets it at the terminal event), appends the
    batch to a queue and wakes the event loop with ``call_soon_threadsafe`` unless a wake-up is
    already on its way. A task on the loop takes what is queued, encodes it into record batches
    per partition (``PartitionedBatches``) and hands them to the producer, in order. ``drain``
    waits until everything handed over so far is acknowledged.

    ``published`` and ``failed`` count records as Kafka answered for them: each order event, and
    the ``risk-events`` record of a rejection (``failed`` counts refusals: a refused batch is kept
    and ``drain`` sends it again, raising ``EventsNotPublished`` while Kafka still refuses it, so
    the ingestion barrier retries and commits nothing whose events are not out).

    ``account_of`` answers for an order the sink has not seen placed (one rehydrated after a
    restart); it runs on the dispatcher thread, so it should be the repository's ``get``.

    The outbox side, for recovery: ``end_offsets`` tells where ``order-events`` ends now (a
    checkpoint records it before its moment), ``missing`` reads the topic from there and says
    which of the events the store holds are not on it, and ``republish`` sends those, each
    order's in sequence order, after which ``drain`` waits for them as for any other.
    """

    def __init__(
        self,
        settings: Settings,
        names: TopicNames | None = None,
        *,
        account_of: Callable[[str], str | None] | None = None,
        batch_bytes: int = RECORD_BATCH_BYTES,
        legs: Legs | None = None,
    ) -> None:
        self.names = names or TopicNames()
        self._partitioner = CachedPartitioner()
        self._producer = reliable_producer(
            settings, linger_ms=settings.events_linger_ms, max_batch_size=batch_bytes
        )
        # Its ``publish`` leg: from a durable batch's arrival here to its hand-over.
        self.legs = legs or Legs()
        self._account_of = account_of
        self._accounts: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # Appended on the dispatcher thread, taken on the loop: deque's append and popleft are
        # atomic, so no lock; what publish appended before drain() is called, drain() sees.
        # Each batch with the wall time it arrived (for the ``publish`` leg).
        self._queue: deque[tuple[float, list[tuple[OrderEvent, str | None]]]] = deque()
        self._signalled = False
        self._wake = asyncio.Event()
        self._unsettled = 0  # records taken off the queue, not yet handed to the producer
        self._enqueued = 0  # publish calls so far (the publishing thread counts)
        self._taken = 0  # published batches handed to the producer (the loop counts)
        self._progress = asyncio.Event()  # set each time _taken grows
        self._pending: set[asyncio.Future[Any]] = set()
        # Batches Kafka refused, kept until drain() sends them again (the barrier retries it).
        self._unpublished: deque[tuple[str, int, Records]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._settings = settings
        self._delay_s = settings.event_sink_delay_s
        self._reader: AIOKafkaConsumer | None = None  # reads order-events back (the outbox)
        self._reading = asyncio.Lock()
        self.published = 0
        self.failed = 0
        self.republished = 0

    async def start(self) -> None:
        """Connect and start the sending task on the running loop."""
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._reading = asyncio.Lock()
        await self._producer.start()
        self._task = asyncio.create_task(self._run(), name="oms-event-sink")
        self._loop = asyncio.get_running_loop()
        # Batches published before there was a loop to wake.
        if self._queue:
            self._wake.set()

    async def stop(self) -> None:
        """Send everything handed over, then disconnect."""
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._reader is not None:
            await self._reader.stop()
            self._reader = None
        await self._producer.stop()

    # -- the outbox (on the loop) ----------------------------------------------------------

    async def end_offsets(self) -> dict[int, int]:
        """Per partition of ``order-events``, the offset its next record will take."""
        async with self._reading:
            reader, partitions = await self._read_events()
            ends = await reader.end_offsets(partitions)
            return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def missing(
        self,
        events: Sequence[tuple[OrderEvent, str]],
        since: Mapping[int, int] | None,
        *,
        since_time: float | None = None,
        timeout_s: float = 60.0,
    ) -> list[tuple[OrderEvent, str]]:
        """Those of ``events`` (with their accounts) that ``order-events`` does not hold, in the
        order given: the topic is read from ``since`` (per partition), else from the first
        record stamped after ``since_time`` less a minute of clock skew, else from its
        beginning, to where it ends now, looking at the records of these accounts only.

        An event counts as there when a record with its order id and sequence is. Raises
        ``EventsNotPublished`` when the topic cannot be read to its end within ``timeout_s``.
        """
        if not events:
            return []
        wanted = {(event.order_id, event.sequence) for event, _ in events}
        keys = {account.encode() for _, account in events}
        seen: set[tuple[str, int]] = set()
        async with self._reading:
            reader, partitions = await self._read_events()
            ends = await reader.end_offsets(partitions)
            if since is None and since_time is not None:
                stamp = int((since_time - _CLOCK_SKEW_S) * 1000)
                found = await reader.offsets_for_times(dict.fromkeys(partitions, stamp))
                since = {
                    tp.partition: ends[tp] if at is None else at.offset for tp, at in found.items()
                }
            reader.assign(partitions)
            left: set[TopicPartition] = set()
            for tp in partitions:
                start = 0 if since is None else since.get(tp.partition, 0)
                if ends[tp] > start:
                    reader.seek(tp, start)
                    left.add(tp)
            deadline = asyncio.get_running_loop().time() + timeout_s
            while left:
                if asyncio.get_running_loop().time() > deadline:
                    raise EventsNotPublished(
                        f"order-events could not be read to its end within {timeout_s}s"
                    )
                fetched = await reader.getmany(*left, timeout_ms=500, max_records=10_000)
                for tp, records in fetched.items():
                    for record in records:
                        # A record without a key (its account was not found) may be ours too.
                        if record.offset < ends[tp] and (record.key is None or record.key in keys):
                            data = orjson.loads(record.value or b"{}")
                            found = (data.get("order_id"), data.get("sequence"))
                            if found in wanted:
                                seen.add(found)
                for tp in tuple(left):
                    if await reader.position(tp) >= ends[tp]:
                        left.discard(tp)
        return [(e, a) for e, a in events if (e.order_id, e.sequence) not in seen]

    def republish(self, events: Sequence[tuple[OrderEvent, str]]) -> None:
        """Hand ``events`` (durable, found missing from ``order-events``) to the sending task,
        in the order given, keyed by their accounts; ``drain`` waits for them. On the loop.

        A rejection among them goes to ``risk-events`` again too, as any published rejection
        does: only ``order-events`` is checked for what is already there.
        """
        if not events:
            return
        self._queue.append((time.time(), list(events)))
        self._enqueued += 1
        self.republished += len(events)
        self._wake.set()

    async def _read_events(self) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
        """The reader (started once) and the partitions of ``order-events``."""
        reader = self._reader
        if reader is None:
            settings = self._settings
            reader = AIOKafkaConsumer(
                bootstrap_servers=settings.kafka_bootstrap,
                client_id=f"{settings.kafka_client_id}-outbox",
                group_id=None,
                enable_auto_commit=False,
                **aiokafka_security(settings),
            )
            await reader.start()
            self._reader = reader
        topic = self.names.order_events
        numbers = await self._producer.partitions_for(topic)
        return reader, [TopicPartition(topic, q) for q in sorted(numbers)]

    async def drain(self) -> None:
        """Return once every batch published before this call is acknowledged by Kafka.

        Only those: what is published while it waits is the next drain's. Waiting for an
        empty queue instead would never end while the engine keeps publishing (measured: a
        barrier waited 6.7 s at 1,000 orders/s).
        """
        target = self._enqueued
        while self._taken < target and self._task is not None and not self._task.done():
            self._progress.clear()  # nothing runs between here and the wait: no lost wake-up
            # A wake-up from publish may still be on its way: not worth waiting for.
            self._wake.set()
            await self._progress.wait()
        if self._pending:
            await asyncio.wait(list(self._pending))
        if self._unpublished:
            await self._send_again()
            if self._unpublished:
                count = sum(len(records) for _, _, records in self._unpublished)
                raise EventsNotPublished(f"{count} event records are waiting to be sent again")

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
        self._queue.append((time.time(), batch))
        self._enqueued += 1
        loop = self._loop
        # One wake-up in flight is enough: the loop takes everything queued when it runs. The
        # flag is cleared on the loop before it looks at the queue, so a batch appended after
        # that look finds the flag clear and wakes it again.
        if loop is not None and not self._signalled:
            self._signalled = True
            loop.call_soon_threadsafe(self._wake_up)

    def _lookup(self, order_id: str) -> str | None:
        if self._account_of is None:
            return None
        try:
            return self._account_of(order_id)
        except Exception:
            logger.exception("could not find the account of order %s", order_id)
            return None

    # -- on the loop -----------------------------------------------------------------------

    def _wake_up(self) -> None:
        self._signalled = False
        self._wake.set()

    async def _run(self) -> None:
        queue = self._queue
        while True:
            await self._wake.wait()
            self._wake.clear()
            while queue:
                chunk = [queue.popleft()]
                taken = len(chunk[0][1])
                while queue and taken < _CHUNK_EVENTS:
                    chunk.append(queue.popleft())
                    taken += len(chunk[-1][1])
                self._unsettled = taken
                if self._delay_s:
                    await asyncio.sleep(self._delay_s)  # tests: a window to crash in
                try:
                    await self._produce(chunk)
                except Exception:
                    # Not a send failure (those are counted per batch): a fault here must not end
                    # the task, or drain() would wait for ever. What it held counts as failed.
                    logger.exception("order events could not be encoded or handed over")
                    self.failed += self._unsettled
                self._unsettled = 0
                self._taken += len(chunk)
                self._progress.set()
                # A backlog is many chunks: let the loop's other tasks run between them.
                await asyncio.sleep(0)

    async def _produce(
        self, chunk: list[tuple[float, list[tuple[OrderEvent, str | None]]]]
    ) -> None:
        """Encode the chunk into batches per partition and hand each to the producer."""
        producer, partitioner = self._producer, self._partitioner
        events = await PartitionedBatches.for_topic(producer, self.names.order_events, partitioner)
        add = events.add
        risks: PartitionedBatches | None = None
        now, publish = time.time(), self.legs.durations["publish"]
        for arrived, batch in chunk:
            publish.observe_many(max(now - arrived, 0.0), len(batch))
            for event, account in batch:
                key = None if account is None else account.encode()
                add(key, encode_event(event, account))
                if isinstance(event, OrderRejected):
                    if risks is None:
                        risks = await PartitionedBatches.for_topic(
                            producer, self.names.risk_events, partitioner
                        )
                    risks.add(key, encode_risk_event(rejection(event, account)))
        topics = (events,) if risks is None else (events, risks)
        self._unsettled = sum(t.records() for t in topics)
        for topic, partition, batch, records in interleave(*topics):
            self._unsettled -= len(records)
            await self._hand_over(topic, partition, batch, records)

    async def _hand_over(self, topic: str, partition: int, batch: Any, records: Records) -> None:
        """Give one batch to the producer; what Kafka refuses is kept to be sent again."""
        try:
            future = await self._producer.send_batch(batch, topic, partition=partition)
        except KafkaError:
            logger.exception(
                "%d records could not be handed to the producer for %s[%d]",
                len(records), topic, partition,
            )  # fmt: skip
            self._refused(topic, partition, records)
            return
        self._pending.add(future)
        future.add_done_callback(partial(self._sent, topic, partition, records))

    def _sent(
        self, topic: str, partition: int, records: Records, future: asyncio.Future[Any]
    ) -> None:
        self._pending.discard(future)
        if future.cancelled() or future.exception() is not None:
            logger.error(
                "%d records for %s[%d] were refused (%r); they will be sent again",
                len(records), topic, partition, future,
            )  # fmt: skip
            self._refused(topic, partition, records)
        else:
            self.published += len(records)

    def _refused(self, topic: str, partition: int, records: Records) -> None:
        self.failed += len(records)
        self._unpublished.append((topic, partition, records))

    async def _send_again(self) -> None:
        """Send the refused batches again, each partition's in the order they were refused.

        Their records land after what that partition took meanwhile: a reader orders one
        order's events by their ``sequence``, which each event carries.
        """
        unpublished, self._unpublished = self._unpublished, deque()
        for topic, partition, records in unpublished:
            batch = self._producer.create_batch()
            taken: Records = []
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    batch.close()
                    await self._hand_over(topic, partition, batch, taken)
                    batch, taken = self._producer.create_batch(), []
                    batch.append(key=key, value=value, timestamp=None)
                taken.append((key, value))
            batch.close()
            await self._hand_over(topic, partition, batch, taken)
        if self._pending:
            await asyncio.wait(list(self._pending))

    async def publish_risk_event(self, event: RiskEvent) -> None:
        """Publish one risk event (a kill-switch or limits change from the API) and wait for
        the ack."""
        key = b"" if event.account_id is None else event.account_id.encode()
        await (await self._producer.send(self.names.risk_events, encode_risk_event(event), key))
