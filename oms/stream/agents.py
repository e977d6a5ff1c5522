"""The agents: Kafka records in, engine commands out, offsets committed only once durable.

``orders`` and ``executions`` are faust agents in the shared consumer group (each replica owns
the accounts of its partitions). Each takes records in batches (``stream.take_events``),
decodes them, puts what cannot be decoded on ``<topic>.dlq`` with its reason, hands the rest to
the engine in order (consecutive places in one ``Engine.submit``, cancels and fills one by one
with a reply, so that a refused one can go to the dead-letter topic too), and then waits for the
durability barrier before it asks for the next batch.

How faust acks and commits, and why an offset is committed only after what it changed is durable
(faust-streaming 0.15, ``faust/streams.py`` ``take_events`` and ``faust/transport/consumer.py``):

1. ``take_events`` turns the stream's automatic acks off and buffers up to ``n`` events (or what
   came ``within`` seconds). It yields the list, and acks those events only in the ``finally``
   after the ``yield``: that is, when the agent's ``async for`` asks for the next batch (or when
   the generator is closed). While the agent holds a batch, the buffer accepts nothing new, so
   one batch per agent is in flight.
2. An ack is not a commit: ``Consumer.ack`` adds the offset to the partition's acked list. The
   consumer's commit task (every ``broker_commit_interval``, on a rebalance, and on stop) commits,
   per partition, the end of the run of consecutive acked offsets after the last commit. An
   offset that was never acked is never committed, nor anything after it.
3. So the agent body does all the work for a batch, including the durability barrier, before
   the ``async for`` resumes: the barrier waits until the engine is idle (``Engine.wait_idle`` in a
   worker thread: every message the batch caused, e.g. place -> accepted -> filled -> settled, has
   run and the journal has been handed to the store), then awaits the store's async
   ``durable()`` when it has one (MongoOrderRepository: its writer has written all saved so far),
   else ``Engine.flush()`` (the repository's blocking ``flush``, run on the dispatcher), then the
   event sink's ``drain()`` (order events acknowledged by Kafka), and the dead-letter records'
   acks. A failure of any step is retried with back-off, never skipped: a store that is
   down stops consumption (lag grows) instead of committing what it has not stored.
4. The one exception to "acked only when the loop resumes" is the generator being closed with a
   batch in hand: its ``finally`` would ack it. If the agent is cancelled (a stop) or fails while
   a batch is not yet durable, the agent keeps a reference to the generator so that it is never
   closed: those offsets are never acked, so never committed, and whoever owns the partition next
   replays them (replay changes nothing: commands carry ids). If the batch did become durable,
   the generator is closed so that the stop's final commit includes it.

``prices`` is not in the group: every replica needs every tick. ``PriceFeed`` is a plain aiokafka
consumer without a group id that assigns itself all partitions of ``prices``, starts at their
end (the latest prices, no stale replay into the venue), and calls ``Engine.on_tick``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pykka import Future

from oms.actors.aio import reply
from oms.config import Settings
from oms.domain.commands import ApplyFill, CancelOrder, PlaceOrder
from oms.domain.errors import DomainError
from oms.engine import Engine
from oms.stream.app import COMMIT_INTERVAL_S, build_app
from oms.stream.codecs import CommandDecoder, DecodeError, dead_letter_value, decode_tick
from oms.stream.names import TopicNames
from oms.stream.producer import KafkaEventSink, reliable_producer
from oms.stream.security import aiokafka_security
from oms.stream.topics import dead_letter, ensure_topics

logger = logging.getLogger(__name__)

Barrier = Callable[[], Awaitable[None]]


@dataclass
class StreamStats:
    """Counters for /metrics and tests."""

    batches: int = 0
    commands: int = 0
    dead_letters: int = 0
    ticks: int = 0
    barrier_retries: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Record:
    """What the dead-letter topic needs of a consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None


class _DeadLetters:
    """Puts records that cannot be decoded or applied on ``<topic>.dlq`` with the reason."""

    def __init__(self, producer: AIOKafkaProducer, stats: StreamStats) -> None:
        self._producer = producer
        self._stats = stats

    async def send(self, record: _Record, reason: str, detail: str) -> asyncio.Future[Any]:
        """Queue one dead letter (keyed as the source record); await the result for its ack."""
        logger.warning(
            "dead letter %s[%d]@%d: %s %s",
            record.topic, record.partition, record.offset, reason, detail,
        )  # fmt: skip
        self._stats.dead_letters += 1
        self._stats.by_reason[reason] = self._stats.by_reason.get(reason, 0) + 1
        value = dead_letter_value(
            reason=reason,
            detail=detail,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            value=record.value,
            key=record.key,
            timestamp=record.timestamp,
        )
        future: asyncio.Future[Any] = await self._producer.send(
            dead_letter(record.topic), value=value, key=record.key
        )
        return future


def _record(event: faust.types.EventT[Any]) -> _Record:
    message = event.message
    return _Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp=message.timestamp,
    )


class StreamIngestion:
    """The faust app with the ``orders`` and ``executions`` agents, and the price feed.

    Start it inside the service's loop after ``Engine.start()``; stop it before ``Engine.stop()``
    (stopping waits for the batch in hand to become durable, which needs the engine running).
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        names: TopicNames | None = None,
        group_id: str | None = None,
        sink: KafkaEventSink | None = None,
        durable: Barrier | None = None,
        batch_size: int = 1000,
        batch_within_s: float = 0.01,
        commit_interval_s: float = COMMIT_INTERVAL_S,
        prices: bool = True,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.names = names or TopicNames()
        self.sink = sink
        self.batch_size = batch_size
        self.batch_within_s = batch_within_s
        self.stop_timeout_s = stop_timeout_s
        self.stats = StreamStats()
        self.decoder = CommandDecoder(engine.instruments)
        self._durable = durable if durable is not None else _store_durable(engine)
        self._producer = reliable_producer(settings)
        self._dead = _DeadLetters(self._producer, self.stats)
        self._withheld: list[AsyncIterator[Any]] = []  # batches that must never be acked
        self._processed: dict[TopicPartition, int] = {}  # next offset to process, per partition
        self.app = build_app(settings, group_id=group_id, commit_interval_s=commit_interval_s)
        self.orders_topic = self._topic(self.names.orders, settings.orders_partitions)
        self.executions_topic = self._topic(self.names.executions, settings.executions_partitions)
        self.app.agent(self.orders_topic, name="oms-orders")(self._orders_agent)
        self.app.agent(self.executions_topic, name="oms-executions")(self._executions_agent)
        self.prices = (
            PriceFeed(settings, engine, self.names.prices, self._dead, self.stats)
            if prices
            else None
        )
        self._started = False

    def _topic(self, name: str, partitions: int) -> faust.TopicT:
        return self.app.topic(
            name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
            allow_empty=True,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the topics, then start the producer, the agents and the price feed."""
        await ensure_topics(self.settings, self.names.specs(self.settings))
        await self._producer.start()
        try:
            await self.app.start()
            if self.prices is not None:
                await self.prices.start()
        except BaseException:
            await self.app.stop()
            await self._producer.stop()
            raise
        self._started = True

    async def stop(self) -> None:
        """Stop consuming (the batch in hand is made durable first, or left uncommitted)."""
        if self.prices is not None:
            await self.prices.stop()
        await self.app.stop()
        await self._producer.stop()
        self._started = False

    # -- probes ----------------------------------------------------------------------------

    def assignment(self) -> set[TopicPartition]:
        """The partitions of ``orders`` and ``executions`` this replica owns now."""
        if not self._started:
            return set()
        return {TopicPartition(tp.topic, tp.partition) for tp in self.app.consumer.assignment()}

    def partitions_assigned(self) -> bool:
        """For /ready: the group gave this replica its share of ``orders``."""
        return any(tp.topic == self.names.orders for tp in self.assignment())

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """For /metrics: per (topic, partition) owned, records not yet durably processed."""
        lag: dict[tuple[str, int], int] = {}
        if not self._started:
            return lag
        consumer = self.app.consumer
        for tp in consumer.assignment():
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - not known before the first fetch
                continue
            if highwater is None:
                continue
            done = self._processed.get(TopicPartition(tp.topic, tp.partition))
            lag[(tp.topic, tp.partition)] = max(0, highwater - (done or 0))
        if self.prices is not None:
            lag.update(self.prices.lag())
        return lag

    # -- agents ----------------------------------------------------------------------------

    async def _orders_agent(self, stream: faust.StreamT[bytes]) -> None:
        await self._consume(stream, self._handle_orders)

    async def _executions_agent(self, stream: faust.StreamT[bytes]) -> None:
        await self._consume(stream, self._handle_executions)

    async def _consume(
        self,
        stream: faust.StreamT[bytes],
        handle: Callable[[Sequence[_Record]], Awaitable[None]],
    ) -> None:
        # StreamT does not declare take_events; the Stream faust hands an agent has it.
        batches = stream.take_events(  # type: ignore[attr-defined]
            self.batch_size, within=self.batch_within_s
        )
        async for events in batches:
            work = asyncio.ensure_future(handle([_record(event) for event in events]))
            try:
                await asyncio.shield(work)
            except BaseException:
                await self._settle_or_withhold(work, batches)
                raise

    async def _settle_or_withhold(
        self, work: asyncio.Future[None], batches: AsyncIterator[Any]
    ) -> None:
        """A stop or a failure with a batch in hand: ack it only if it became durable."""
        durable = False
        try:
            if not work.done():
                await asyncio.wait({work}, timeout=self.stop_timeout_s)
            durable = work.done() and not work.cancelled() and work.exception() is None
        finally:
            if durable:
                closing = getattr(batches, "aclose", None)
                if closing is not None:
                    with contextlib.suppress(BaseException):
                        await closing()  # acks the batch: the stop's last commit covers it
            else:
                work.cancel()
                self._withheld.append(batches)  # never closed: never acked, never committed
                logger.error("a batch was not made durable; its offsets stay uncommitted")

    async def _handle_orders(self, records: Sequence[_Record]) -> None:
        decode = self.decoder.order_command
        await self._handle(records, lambda r: decode(r.value, r.timestamp or 0.0))

    async def _handle_executions(self, records: Sequence[_Record]) -> None:
        decode = self.decoder.fill
        await self._handle(records, lambda r: decode(r.value, r.timestamp or 0.0))

    async def _handle(
        self,
        records: Sequence[_Record],
        decode: Callable[[_Record], PlaceOrder | CancelOrder | ApplyFill],
    ) -> None:
        dead: list[asyncio.Future[Any]] = []
        answers: list[tuple[_Record, Future[Any]]] = []
        places: list[PlaceOrder] = []
        engine = self.engine
        for record in records:
            try:
                command = decode(record)
            except DecodeError as error:
                dead.append(await self._dead.send(record, error.code, str(error)))
                continue
            if isinstance(command, PlaceOrder):
                places.append(command)
                continue
            if places:  # keep the record order: places before this one go first
                engine.submit(places)
                places = []
            if isinstance(command, CancelOrder):
                answers.append((record, engine.cancel_order(command)))
            else:
                answers.append((record, engine.apply_fill(command)))
        if places:
            engine.submit(places)
        await self._barrier()
        for record, answer in answers:
            try:
                await reply(answer)
            except DomainError as error:
                dead.append(await self._dead.send(record, error.code, str(error)))
        await self._retry("dead letters", lambda: _all(dead))
        self.stats.batches += 1
        self.stats.commands += len(records)
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._processed[tp] = max(self._processed.get(tp, 0), record.offset + 1)

    async def _barrier(self) -> None:
        """Everything the engine did so far is durable (and published) once this returns."""
        loop = asyncio.get_running_loop()
        engine = self.engine
        await self._retry("engine idle", lambda: loop.run_in_executor(None, engine.wait_idle, 5.0))
        if self._durable is not None:
            # The journal is in the store already (wait_idle ran the drain hooks): wait for the
            # store's writer without blocking the dispatcher on it.
            await self._retry("store durable", self._durable)
        else:
            await self._retry("store flush", lambda: reply(engine.flush()))
        if self.sink is not None:
            await self._retry("order events", self.sink.drain)

    async def _retry(self, what: str, step: Callable[[], Awaitable[Any]]) -> None:
        delay = 0.05
        while True:
            try:
                await step()
            except Exception as error:  # noqa: BLE001 - retried: never commit past a failure
                self.stats.barrier_retries += 1
                logger.warning("durability step %r failed (%r); retrying in %.2fs",
                               what, error, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                return


async def _all(futures: list[asyncio.Future[Any]]) -> None:
    if futures:
        await asyncio.gather(*futures)


def _store_durable(engine: Engine) -> Barrier | None:
    """The repository's async ``durable()``, when the store offers one."""
    durable = getattr(engine.repository, "durable", None)
    if durable is not None and inspect.iscoroutinefunction(durable):
        return durable  # type: ignore[no-any-return]
    return None


class PriceFeed:
    """Every partition of ``prices`` on every replica, outside the group, into ``on_tick``."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        topic: str,
        dead: _DeadLetters,
        stats: StreamStats,
        *,
        from_beginning: bool = False,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.topic = topic
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
            await self._consumer.stop()

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
            dead: list[asyncio.Future[Any]] = []
            for tp, messages in batch.items():
                for message in messages:
                    try:
                        tick = decode_tick(message.value, instruments)
                    except DecodeError as error:
                        record = _Record(
                            tp.topic, tp.partition, message.offset, message.key,
                            message.value, message.timestamp / 1000,
                        )  # fmt: skip
                        dead.append(await self._dead.send(record, error.code, str(error)))
                        continue
                    self.engine.on_tick(tick)
                    self._stats.ticks += 1
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
