"""The ingestion agent: Kafka records in, engine commands out, offsets committed only once durable.

``orders`` and ``executions`` are consumed by one batch agent per replica: an aiokafka consumer
in the shared group, with the range assignor so that partition *i* of both topics (both keyed by
account id, with the same partition count) goes to the same replica, which owns those accounts.

Why not faust's agents (the design's first choice): measured here (``bench/faust_ceiling.py``),
a faust agent taking events in batches of 1,000 with an EMPTY body consumed 1,811 records/s at
243 us of CPU per record, while aiokafka's ``getmany`` consumed 63,797/s at 6.8 us per record.
Faust's cost is per record (an Event, a channel put and get, acks through its conductor), so
batching the body does not remove it; at 2,000 orders/s it alone would take a whole core of the
two this service shares with Kafka and the store. The batch agent keeps faust's contract where
it matters: records in order per partition, acknowledged only after their effects are durable.

The loop, per replica:

1. **Fetch** a batch (``getmany``, up to ``batch_size`` records), decode it, put what cannot be
   decoded on ``<topic>.dlq`` with its reason, and hand the rest to the engine in order
   (consecutive places in one ``Engine.submit``; cancels and fills one by one with a reply, so
   that a refused one can be dead-lettered too). Up to ``max_in_flight`` records are handed
   over before the first is committed: fetching and deciding overlap the durability of what
   came before. The bound counts records, not fetches: at a steady trickle each fetch holds a
   few records, and a bound on fetches would cap the rate at fetches per barrier.
2. **Barrier** (``oms.stream.commit_barrier``, its own task): wait until the engine is idle
   (``Engine.idle``: every message the batches caused, place -> accepted -> filled -> settled,
   has run and the journal went to the store), then until the store has written it
   (``Engine.durable``), then until the event sink has Kafka's ack for the events (which the
   store released only once written). Then the refused cancels and fills go to the dead-letter
   topic, and once every dead letter is acknowledged, the batches' offsets are **committed**.
   One barrier covers every batch handed over before it began. A failing step is retried with
   back-off, never skipped: a store that is down stops commits (lag grows) instead of
   committing what it has not stored.
3. On a **rebalance** (partitions revoked) or a stop, what is in flight is made durable and
   committed first, within ``stop_timeout_s``; what is not stays uncommitted, and whoever owns
   the partition next replays it. Replay changes nothing: commands carry ids. A stop then runs
   ``on_leaving`` (the service's last checkpoint, written while no other replica can own these
   partitions yet) and only then leaves the group, so the next owner starts from it at once
   instead of waiting out the session timeout (``hand_off``).
4. When the **assignment** changes this replica's share of ``orders`` (the first one included),
   nothing is handed to the engine (records or ticks) until ``on_owned`` has rebuilt the state
   of the accounts it owns now from the store (``Engine.rebuild``), the engine quiet and
   everything it did durable first. A batch fetched across the rebalance is fetched again.

Account changes (``OpenAccount``, ``SetLimits``, ``SetTradingState``) arrive on ``orders`` too,
keyed by account: each waits until the orders before it are decided, then goes to risk.

Ticks come in through ``oms.stream.price_feed``; what cannot be decoded or applied goes to
``<topic>.dlq`` through ``oms.stream.dead_letters``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from oms.config import Settings
from oms.correlation import from_record
from oms.domain.commands import AmendOrder, ApplyFill, CancelAll, CancelOrder, PlaceOrder
from oms.engine import Engine
from oms.legs import Legs
from oms.logs import UNTHROTTLED
from oms.stream.closing import stop_consumer
from oms.stream.codecs import AccountCommand, CommandDecoder, DecodeError
from oms.stream.commit_barrier import CommitBarrier, Handed, Step
from oms.stream.dead_letters import DeadLetters, Record, StreamStats, record_of
from oms.stream.event_sink import KafkaEventSink
from oms.stream.fetch_pacing import FetchPacing
from oms.stream.names import TopicNames
from oms.stream.partitioner import reliable_producer
from oms.stream.price_feed import PriceFeed
from oms.stream.security import aiokafka_security
from oms.stream.topics import ensure_topics

logger = logging.getLogger(__name__)

Barrier = Callable[[], Awaitable[None]]
COMMITTED_READ_S = 5.0  # the most a rebalance waits for the committed offsets (lag's origin)
# Called with the partitions of ``orders`` this replica owns now and how many there are.
OwnerHook = Callable[[frozenset[int], int], Awaitable[None]]
# Called with each run of new orders right before they go to the engine (the firm-wide caps'
# reservation: ``oms.engine.global_gate``).
PlacesHook = Callable[[Sequence[PlaceOrder]], Awaitable[None]]
LeavingHook = Callable[[], Awaitable[None]]
Command = PlaceOrder | CancelOrder | ApplyFill | AmendOrder | CancelAll | AccountCommand


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions go to another replica, commit what is durable of them."""

    def __init__(self, ingestion: StreamIngestion) -> None:
        self._ingestion = ingestion

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._ingestion.rebalancing()
        await self._ingestion.settle()
        await self._ingestion.revoked()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = list(assigned)
        logger.info(
            "partitions assigned: %s",
            sorted((tp.topic, tp.partition) for tp in assigned),
            extra=UNTHROTTLED,
        )
        await self._ingestion.took(assigned)


class StreamIngestion:
    """The batch agent over ``orders`` and ``executions``, and the price feed.

    Start it inside the service's loop after ``Engine.start()``; stop it before ``Engine.stop()``
    (stopping makes the batches in flight durable first, which needs the engine running).
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
        max_in_flight: int = 4000,
        prices: bool = True,
        stop_timeout_s: float = 10.0,
        on_owned: OwnerHook | None = None,
        legs: Legs | None = None,
        on_share: Callable[[], None] | None = None,
        before_places: PlacesHook | None = None,
        on_leaving: LeavingHook | None = None,
        on_revoked: LeavingHook | None = None,
        on_kept: LeavingHook | None = None,
    ) -> None:
        self.settings = settings
        # Its ``consume`` leg, and each place's fetch time for the order feed's ``engine`` leg.
        self.legs = legs or Legs()
        self.before_places = before_places
        self.engine = engine
        self.names = names or TopicNames()
        self.group_id = group_id or settings.kafka_group_id
        self.sink = sink
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.stop_timeout_s = stop_timeout_s
        self.on_owned = on_owned
        self.on_leaving = on_leaving
        # A rebalance began (what was in flight is durable) / ended with the same share of
        # ``orders``: the service stops and resumes its checkpoints, which must never write a
        # partition another replica may own by then.
        self.on_revoked = on_revoked
        self.on_kept = on_kept
        self._stopped = False  # ``stop`` runs once (the hand-off, then the service's unwinding)
        self._owned: frozenset[int] | None = None  # orders partitions the hook was last told
        # Told (no arguments) when a rebalance begins and when it is done, and at a stop:
        # ``owned_now`` moved.
        self.on_share = on_share
        self._leaving = False  # set once ``stop`` began: this replica answers for nothing more
        # Set while nothing is being handed over from a rebalance: the fetch loop and the price
        # feed wait on it, so the engine is quiet while what it owns is rebuilt.
        self._steady = asyncio.Event()
        self._steady.set()
        self._generation = 0  # rebalances begun: a batch fetched in an older one is dropped
        self._paused_at: float | None = None  # when the rebalance under way began (monotonic)
        self.stats = StreamStats(ticks_by_symbol=dict.fromkeys(engine.instruments, 0))
        self.decoder = CommandDecoder(engine.instruments)
        self._producer = reliable_producer(settings)
        self._dead = DeadLetters(self._producer, self.stats)
        self._consumer: AIOKafkaConsumer | None = None
        # Engine idle (every consequence of the batches has run and the journal went to the
        # store), then the store's writer done (without blocking the dispatcher on it), then
        # Kafka's ack for the events the store released.
        steps: list[tuple[str, Step]] = [
            ("engine idle", lambda: asyncio.wait_for(engine.idle(), 5.0)),
            ("store durable", durable if durable is not None else engine.durable),
        ]
        if sink is not None:
            steps.append(("order events", sink.drain))
        self._commits: CommitBarrier[TopicPartition] = CommitBarrier(
            steps=steps,
            commit=self._commit_offsets,
            dead_letter=self._dead.send,
            failure=self._engine_failure,
            stats=self.stats,
            max_in_flight=max_in_flight,
            min_interval_s=settings.ingest_commit_interval_ms / 1000,
        )
        self._fetching: asyncio.Task[None] | None = None
        self._committing: asyncio.Task[None] | None = None
        # Per partition owned, the group's committed offset: read when it is assigned, then
        # moved by every commit of ours. Lag counts from it, so an idle partition whose records
        # were all committed before this process started reads 0, not its end offset.
        self._committed: dict[TopicPartition, int] = {}
        self.prices = (
            PriceFeed(
                settings, engine, self.names.prices, self._dead, self.stats, steady=self._steady
            )
            if prices
            else None
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the topics, then start the producer, the batch agent and the price feed."""
        settings = self.settings
        await ensure_topics(settings, self.names.specs(settings))
        await self._producer.start()
        session_ms = int(settings.kafka_session_timeout_s * 1000)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"{settings.kafka_client_id}-ingestion",
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_size,
            fetch_min_bytes=settings.ingest_fetch_min_bytes,
            fetch_max_wait_ms=settings.ingest_fetch_max_wait_ms,
            session_timeout_ms=session_ms,
            # Also how soon this replica hears of a rebalance another one caused (a heartbeat's
            # answer says so): part of every hand-off's time.
            heartbeat_interval_ms=min(
                int(settings.kafka_heartbeat_interval_s * 1000), session_ms // 3
            ),
            partition_assignment_strategy=(RangePartitionAssignor,),
            **aiokafka_security(settings),
        )
        try:
            await consumer.start()
            consumer.subscribe(
                topics=[self.names.orders, self.names.executions], listener=_Rebalance(self)
            )
            self._consumer = consumer
            pacing = FetchPacing(
                consumer,
                min_bytes=settings.ingest_fetch_min_bytes,
                max_wait_ms=settings.ingest_fetch_max_wait_ms,
            )
            self._fetching = asyncio.create_task(
                self._fetch(consumer, pacing), name="oms-ingest-fetch"
            )
            self._committing = asyncio.create_task(self._commits.run(), name="oms-ingest-commit")
            if self.prices is not None:
                await self.prices.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop fetching, make what is in flight durable and commit it, run ``on_leaving``, then
        leave the group (the other replicas take the partitions at once: no session timeout to
        wait out). Runs once; later calls return at once."""
        if self._stopped:
            return
        self._stopped = True
        # From now on another replica may own these partitions at any moment.
        self._leaving = True
        if self.on_share is not None:
            self.on_share()
        if self.prices is not None:
            await self.prices.stop()
        fetching, self._fetching = self._fetching, None
        if fetching is not None:
            fetching.cancel()
            await asyncio.gather(fetching, return_exceptions=True)
        await self.settle()
        committing, self._committing = self._committing, None
        if committing is not None:
            committing.cancel()
            await asyncio.gather(committing, return_exceptions=True)
        if self._commits.in_flight:
            logger.error(
                "%d batches were not made durable; their offsets stay uncommitted",
                self._commits.in_flight,
            )
        if self.on_leaving is not None and self._consumer is not None:
            await self.on_leaving()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_consumer(consumer, "ingestion")
        await self._producer.stop()

    async def settle(self) -> None:
        """Wait (up to ``stop_timeout_s``) until every batch handed over is committed."""
        if self._committing is None or self._committing.done() or self.engine.failure:
            return  # a failed engine's batches are never committed: nothing to wait for
        if not await self._commits.settle(self.stop_timeout_s):
            logger.error("in-flight batches not durable after %.1fs", self.stop_timeout_s)

    async def revoked(self) -> None:
        """A rebalance began and what was in flight is durable: tell ``on_revoked``, before
        this replica rejoins the group (no other replica owns its partitions until then)."""
        if self.on_revoked is not None:
            await self.on_revoked()

    def rebalancing(self) -> None:
        """A rebalance begins: hand nothing more over until ``took`` is done (a batch fetched
        meanwhile is fetched again)."""
        self._generation += 1
        self._steady.clear()
        if self.on_share is not None:
            self.on_share()
        self.stats.rebalances += 1
        self._paused_at = time.monotonic()

    async def took(self, assigned: Iterable[TopicPartition]) -> None:
        """After a rebalance, before any record of the new assignment is handed over: if this
        replica's share of ``orders`` changed, wait until the engine is quiet and everything it
        did is durable, then let ``on_owned`` rebuild what it owns (retried until it succeeds:
        consuming on a stale state would decide on stale balances). Ticks wait meanwhile."""
        self.stats.last_rebuild_s = 0.0
        try:
            hook = self.on_owned
            consumer = self._consumer
            if consumer is not None:
                assigned = list(assigned)
                await self._read_committed(consumer, assigned)
            if hook is None or consumer is None:
                return
            topic = self.names.orders
            owned = frozenset(tp.partition for tp in assigned if tp.topic == topic)
            if owned == self._owned:
                if self.on_kept is not None:
                    await self.on_kept()
                return
            known = consumer.partitions_for_topic(topic)
            total = len(known) if known else self.settings.orders_partitions
            self._steady.clear()
            await self._commits.durable()
            began = time.monotonic()
            await self._commits.retry("take over the owned accounts", lambda: hook(owned, total))
            self.stats.last_rebuild_s = time.monotonic() - began
            self._owned = owned
        finally:
            self._steady.set()
            paused_at, self._paused_at = self._paused_at, None
            if paused_at is not None:
                self.stats.last_rebalance_pause_s = time.monotonic() - paused_at
            if self.on_share is not None:
                self.on_share()

    def owned_now(self) -> frozenset[int] | None:
        """The partitions of ``orders`` whose accounts this replica owns and has rebuilt, or None
        while a rebalance is under way, once a stop began, or after the engine failed: then it
        answers for none."""
        if self._leaving or not self._steady.is_set() or self.engine.failure is not None:
            return None
        return self._owned

    async def _read_committed(
        self, consumer: AIOKafkaConsumer, assigned: list[TopicPartition]
    ) -> None:
        """Where lag counts from on the partitions just assigned: the group's committed offset
        (whoever committed it), or, for a partition never committed, its first offset (where
        this consumer starts: ``auto_offset_reset="earliest"``). Nothing of them is in flight
        here (a rebalance settles first), so no commit of ours can race this."""
        try:
            # aiokafka retries a retriable error without end: bounded, so that a broker away
            # during a rebalance delays the rebuild by this much at most.
            async with asyncio.timeout(COMMITTED_READ_S):
                never: list[TopicPartition] = []
                for tp in assigned:
                    offset = await consumer.committed(tp)
                    if offset is None:
                        never.append(tp)
                    else:
                        self._committed[tp] = offset
                if never:
                    self._committed.update(await consumer.beginning_offsets(never))
        except (KafkaError, TimeoutError) as error:
            # Lag of the partitions not read stays unreported until their next commit: a
            # figure from nothing would be the partition's end (the bug this replaced).
            logger.warning("committed offsets not read (%r): their lag waits for a commit", error)

    # -- probes ----------------------------------------------------------------------------

    def assignment(self) -> set[TopicPartition]:
        """The partitions of ``orders`` and ``executions`` this replica owns now."""
        consumer = self._consumer
        if consumer is None:
            return set()
        return set(consumer.assignment())

    def partitions_assigned(self) -> bool:
        """For /ready: the group gave this replica its share of ``orders``, and (with an
        ``on_owned`` hook) the state of what it owns was rebuilt once: before that, its
        accounts read as they were opened."""
        if self.on_owned is not None and self._owned is None:
            return False
        return any(tp.topic == self.names.orders for tp in self.assignment())

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """For /metrics: per (topic, partition) owned, records not yet durably processed: the
        partition's end (its high watermark, known after a fetch) minus the committed offset."""
        lag: dict[tuple[str, int], int] = {}
        consumer = self._consumer
        if consumer is None:
            return lag
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            committed = self._committed.get(tp)
            if highwater is None or committed is None:
                continue
            lag[(tp.topic, tp.partition)] = max(0, highwater - committed)
        if self.prices is not None:
            lag.update(self.prices.lag())
        return lag

    # -- the fetching task -----------------------------------------------------------------

    async def _fetch(self, consumer: AIOKafkaConsumer, pacing: FetchPacing) -> None:
        while True:
            await self._commits.wait_for_room()
            room = min(self.batch_size, self._commits.room())
            generation = self._generation
            batches = await consumer.getmany(timeout_ms=200, max_records=room)
            pacing.fetched(len(batches))
            if not batches:
                continue
            if self.engine.failure is not None:
                return  # nothing handed to a failed engine could ever be committed
            await self._steady.wait()
            if generation != self._generation:
                # A rebalance came between the fetch and now: hand over nothing of it that was
                # decided on the old state, and fetch again what this replica still owns.
                owned = consumer.assignment()
                for tp, messages in batches.items():
                    if messages and tp in owned:
                        consumer.seek(tp, messages[0].offset)
                continue
            self._commits.hand(await self._hand_over(batches))

    async def _hand_over(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> Handed[TopicPartition]:
        """Decode and hand one fetched batch to the engine, in order per partition."""
        engine = self.engine
        orders_topic = self.names.orders
        order_command = self.decoder.order_command
        fill = self.decoder.fill
        offsets: dict[TopicPartition, int] = {}
        answers: list[tuple[Record, asyncio.Future[Any]]] = []
        dead: list[asyncio.Future[Any]] = []
        places: list[PlaceOrder] = []
        count = 0
        legs = self.legs
        fetched_at = time.time()
        consume = legs.durations["consume"]
        for tp, messages in batches.items():
            if not messages:
                continue
            orders = tp.topic == orders_topic
            for message in messages:
                # Places and cancels carry their request id (the producer's header, else the
                # record's coordinates) on to their events and log lines; fills have none.
                request_id = (
                    from_record(message.headers, tp.topic, tp.partition, message.offset)
                    if orders
                    else None
                )
                try:
                    command: Command = (
                        order_command(message.value, message.timestamp / 1000, request_id)
                        if orders
                        else fill(message.value, message.timestamp / 1000)
                    )
                except DecodeError as error:
                    record = record_of(message, request_id)
                    dead.append(await self._dead.send(record, error.code, str(error)))
                    continue
                if isinstance(command, PlaceOrder):
                    consume.observe(max(fetched_at - message.timestamp / 1000, 0.0))
                    legs.fetched(command.order_id, fetched_at)
                    places.append(command)
                    continue
                if places:  # keep the record order: places before this one go first
                    await self._submit(places)
                    places = []
                if isinstance(command, CancelOrder):
                    answers.append((record_of(message, request_id), engine.cancel_order(command)))
                elif isinstance(command, AmendOrder):
                    answers.append((record_of(message, request_id), engine.amend_order(command)))
                elif isinstance(command, CancelAll):
                    # The store must hold what was placed before it: those orders are its to
                    # find (a place goes directory -> order -> journal -> store).
                    await engine.idle()
                    answers.append((record_of(message, request_id), engine.cancel_all(command)))
                elif isinstance(command, ApplyFill):
                    answers.append((record_of(message), engine.apply_fill(command)))
                else:
                    # Rare, and ordered with the account's orders: what was placed before it is
                    # decided first (a place goes directory -> order -> risk, a change straight
                    # to risk, so without waiting a halt could overtake an earlier order).
                    await engine.idle()
                    answers.append((record_of(message), engine.apply_account_change(command)))
            offsets[tp] = messages[-1].offset + 1
            count += len(messages)
        if places:
            await self._submit(places)
        return Handed(offsets, count, answers, dead)

    async def _submit(self, places: list[PlaceOrder]) -> None:
        """New orders to the engine, each reserved against the firm-wide caps first."""
        if self.before_places is not None:
            await self.before_places(places)
        self.engine.submit(places)

    # -- the commit barrier's hooks -------------------------------------------------------

    def _engine_failure(self) -> str | None:
        failure = self.engine.failure
        return None if failure is None else failure.where

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit what this replica still owns; a partition gone to another replica is replayed
        there (replay changes nothing), so a refused commit is logged, not retried."""
        consumer = self._consumer
        if consumer is None:
            return
        owned = consumer.assignment()
        mine = {tp: offset for tp, offset in offsets.items() if tp in owned}
        if not mine:
            return
        try:
            await consumer.commit(mine)
        except KafkaError as error:
            self.stats.commit_failures += 1
            logger.warning("commit of %s refused (%r): the next owner replays them", mine, error)
        else:
            self.stats.commits += 1
            self._committed.update(mine)
