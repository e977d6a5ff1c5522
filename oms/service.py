"""``oms serve``: the one place that builds the running system from real adapters.

Start order (stop is the reverse): the MongoDB store and Redis, the Kafka event sink, the
engine (its accounts re-opened from the store), the stream ingestion (the batch agent
for ``orders`` and ``executions``, the price feed outside the group), the Kafka command bus, the
simulated market-data publisher, then the HTTP API. Everything runs in one asyncio loop: the
engine's dispatcher in turns of it (``engine_loop``) and the store's writer (``store_loop``),
each of which can have a thread of its own instead. The balances, reservations and resting
orders of the accounts this replica owns are rebuilt from the store when the group assigns it
its partitions, and again whenever its share changes (``take_over``, called by the ingestion
before it hands anything over): from each owned partition's newest checkpoint and what was
written after it, and what of that never reached ``order-events`` is published then. A checkpoint of the owned partitions is written right after,
every ``checkpoint_interval_s`` while running, and once more at a clean stop.

Market data (the simulated walk, or an exchange's streams with ``OMS_MARKET_DATA=exchange``)
is published on the ``prices`` topic instead of feeding the engine directly, so every
replica's books move together through the one path; each symbol is published by the one
replica holding its lease in Redis (``oms.stream.price_publisher``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from oms.actors.runtime import ActorFailure
from oms.actors.supervisor import Unbookable
from oms.api.app import build_app
from oms.api.credentials import Authenticator
from oms.api.door_worker import with_door_side
from oms.api.jwt_tokens import JwtVerifier
from oms.api.listener import CappedSite, start_listener
from oms.api.metrics import Labelled, LabelledDurations
from oms.api.rate_limits import RateLimiter
from oms.config import Settings, SettingsError
from oms.domain.commands import SetTradingState
from oms.domain.errors import DomainError, UnknownAccount
from oms.domain.global_limits import GlobalLimitsUnavailable
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument, InstrumentStatus
from oms.domain.limits import TradingState
from oms.doors.process import shared_rate_limiter
from oms.doors.supervisor import DoorSupervisor
from oms.durations import Durations
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.engine.global_gate import GlobalGate
from oms.engine.ports import AccountRecord, AccountRepository, StoredOrder
from oms.engine.reconciliation import (
    Discrepancies,
    EngineResolver,
    Halt,
    Reconciler,
    Reconciliation,
    place_in_doubt,
)
from oms.gc_pauses import record_gc_pauses
from oms.gc_tuning import tune_gc
from oms.legs import Legs
from oms.logs import UNTHROTTLED
from oms.process_levers import describe_levers
from oms.skips import Skip, SkipReason, Skips, screen_accounts, unreadable
from oms.store.api_keys import MongoKeyDirectory
from oms.store.mongo import MongoOrderRepository
from oms.store.mongo_accounts import MongoAccountRepository
from oms.store.mongo_audit import MongoAuditLog
from oms.store.mongo_schema import init_database
from oms.store.redis_global_limits import RedisGlobalLimits
from oms.store.redis_leases import RedisLeases
from oms.store.redis_owners import RedisOwnerMap
from oms.store.redis_store import (
    RedisIdempotencyStore,
    RedisOrderCache,
    RedisTicketStore,
    redis_client,
)
from oms.stream.bus import CommandBus, RiskEventSink
from oms.stream.codecs import reconciliation_discrepancy
from oms.stream.command_bus import KafkaCommandBus
from oms.stream.event_sink import KafkaEventSink
from oms.stream.exchange_feed import FeedStats
from oms.stream.ingestion import StreamIngestion
from oms.stream.names import TopicNames, topic_names
from oms.stream.owner_beacon import OwnerBeacon
from oms.stream.partitioner import partition_of
from oms.stream.price_publisher import ExchangeSource, PricePublisher, SimulatedSource
from oms.venue.ccxt_venue import CcxtSettings, CcxtVenue, build_exchange
from oms.venue.gateway import VenueGateway
from oms.venue.port import InstrumentRules, VenuePort
from oms.venue.reconcile import Discrepancy, DiscrepancyKind

logger = logging.getLogger(__name__)

Stop = Callable[[], Awaitable[Any]]
# A checkpoint waits for an idle point, the store and Kafka: past this it is given up (the next
# one tries again), so that a take-over waiting for the ownership lock is never held long.
CHECKPOINT_TIMEOUT_S = 15.0
LAST_CHECKPOINT_TIMEOUT_S = 5.0


@dataclass
class Service:
    """Every running part of one replica, so that it can be stopped in reverse order."""

    settings: Settings
    names: TopicNames = field(init=False)
    stops: list[tuple[str, Stop]] = field(default_factory=list)
    engine: Engine | None = None
    site: CappedSite | None = None
    skips: Skips = field(default_factory=Skips)  # stored records left out, for /metrics
    # Set (from the engine thread) when an actor fails: the replica must restart.
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    # The partitions of ``orders`` this replica owns and how many there are, once rebuilt; a
    # take-over and a checkpoint never run at once (a checkpoint is of one share).
    owned: tuple[frozenset[int], int] | None = None
    held: tuple[frozenset[int], int] | None = None  # ``owned`` while a rebalance runs
    # Set by a take-over: the checkpoint task writes one at once (so the next recovery starts
    # there) while the ingestion already hands records over.
    checkpoint_soon: asyncio.Event = field(default_factory=asyncio.Event)
    ownership: asyncio.Lock = field(default_factory=asyncio.Lock)
    publisher: PricePublisher | None = None  # this replica's market-data publisher
    feed_stats: FeedStats = field(default_factory=FeedStats)  # its exchange streams' figures
    # Where each part times its legs of an order's way (oms.legs), shown on /metrics.
    legs: Legs = field(default_factory=Legs)
    # The network venue ``OMS_VENUE`` chose (None: the simulated one), for whoever must ask it
    # what it holds (reconciliation).
    venue: VenuePort | None = None
    gate: GlobalGate | None = None  # the firm-wide caps' reservations (``oms.engine.global_gate``)
    # What reconciliation with the network venue found (``GET /api/venue/reconciliation``,
    # ``/metrics``); None with the simulated venue, the book of record.
    reconciliation: Reconciliation | None = None
    _halts: set[asyncio.Task[None]] = field(default_factory=set)

    def engine_trouble(self) -> str | None:
        """Why the engine can no longer be trusted, or None."""
        return None if self.engine is None else self.engine.trouble()

    def __post_init__(self) -> None:
        self.names = topic_names(self.settings)

    async def start(self) -> None:
        """Build and start every part; on failure, stop what started."""
        settings = self.settings
        try:
            # The store's writer runs on this loop (or on one of its own: ``store_loop``); the
            # engine's durability barrier blocks the engine's thread, never this loop.
            repository = MongoOrderRepository.from_settings(
                settings,
                partitions=settings.orders_partitions,
                partition_of=partition_of,
                legs=self.legs,
            )
            await self._open_store(repository)
            accounts_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
            self._on_stop("accounts store", accounts_client.close)
            accounts_db = accounts_client[settings.mongo_database]
            await init_database(accounts_db)
            accounts = MongoAccountRepository(accounts_db)
            redis = redis_client(settings)  # bounded waits: a stopped Redis is a quick 503
            self._on_stop("redis", redis.aclose)

            sink = KafkaEventSink(
                settings, self.names, account_of=_account_of(repository), legs=self.legs
            )
            await sink.start()
            self._on_stop("event sink", sink.stop)

            gateway, listed = await self._venue(settings)
            core = EngineCore(
                settings, repository=repository, sink=sink, instruments=listed, gateway=gateway
            )
            engine = Engine(core)
            loop = asyncio.get_running_loop()

            def on_failure(_failure: ActorFailure) -> None:
                loop.call_soon_threadsafe(self.failed.set)

            engine.on_failure(on_failure)
            engine.start(on_loop=self.settings.engine_loop == "service")
            self.engine = engine
            self._on_stop("engine", _async(engine.stop))
            await self._reopen_accounts(engine, accounts)

            # The state of the accounts this replica owns is rebuilt from the store when the
            # group gives it its partitions, and again whenever its share changes.
            async def take_over(owned: frozenset[int], total: int) -> None:
                await self._recover(
                    engine, repository, accounts, sink=sink, owned=owned, total=total
                )

            async def last_checkpoint() -> None:
                # Short: the whole stop is bounded by shutdown_timeout_s, and a restart without
                # it only reads a little more.
                await self._checkpoint_now(
                    engine, repository, sink, "at stop", timeout_s=LAST_CHECKPOINT_TIMEOUT_S
                )

            ingestion = StreamIngestion(
                settings,
                engine,
                names=self.names,
                sink=sink,
                on_owned=take_over,
                legs=self.legs,
                batch_size=settings.ingest_batch_size,
                max_in_flight=settings.ingest_max_in_flight,
                before_places=(await self._start_gate(engine, redis)).before_places,
                on_leaving=last_checkpoint,  # still the owner: nobody else writes its log yet
                on_revoked=self._pause_checkpoints,
                on_kept=self._resume_checkpoints,
            )
            await ingestion.start()
            self._on_stop("stream ingestion", ingestion.stop)
            checkpoints = asyncio.create_task(
                self._checkpoints(engine, repository, sink), name="oms-checkpoints"
            )
            self._on_stop("checkpoints", _cancel(checkpoints))

            bus = KafkaCommandBus(settings, self.names)
            await bus.start()
            self._on_stop("command bus", bus.stop)

            if settings.simulated_feed:
                await self._start_market_data(engine, redis)

            authenticator = self._authenticator(accounts_db, redis)
            limiter = shared_rate_limiter(settings, redis)
            app = build_app(
                settings,
                engine,
                bus,
                RedisIdempotencyStore(redis),
                RedisOrderCache(redis),
                partitions_assigned=ingestion.partitions_assigned,
                consumer_lag=ingestion.consumer_lag,
                pipeline=_with_reconciliation(
                    _with_extra(
                        _with_limits(
                            _pipeline(
                                repository,
                                ingestion,
                                sink,
                                self.skips,
                                self._refused,
                                legs=self.legs,
                            ),
                            limiter,
                        ),
                        self._market_data_figures,
                    ),
                    self,
                ),
                accounts=accounts,
                risk_events=sink,
                authenticator=authenticator,
                rate_limiter=limiter,
                audit_log=MongoAuditLog(accounts_db),
                legs=self.legs,
                # Started last before the listener: in the map once it can answer.
                owners=await self._start_owner_map(redis, ingestion),
                owned=ingestion.owned_now,
                global_limits=None if self.gate is None else self.gate.store,
                reconciliation=self._reconciliation(engine, accounts, bus, sink),
            )
            # With doors on the public port: their hop, and the market view they poll.
            runner, self.site = await start_listener(
                with_door_side(app, settings, engine), settings
            )
            self._on_stop("http", runner.cleanup)
            self._on_stop("hand-off", self._hand_off(ingestion, _cancel(checkpoints)))
        except BaseException:
            await self.stop()
            raise

    async def _start_market_data(self, engine: Engine, redis: aioredis.Redis) -> None:
        """The market-data publisher: the simulated walk or the exchange's streams, each symbol
        published by whichever replica holds its lease."""
        settings = self.settings
        source: SimulatedSource | ExchangeSource
        if settings.market_data == "exchange":
            source = ExchangeSource(settings, self.feed_stats)
            symbols = tuple(s for s in source.symbols if s in engine.instruments)
            self._on_stop("exchange session", source.close)  # after the publisher stopped
        elif engine.feed is not None:
            source = SimulatedSource(engine.feed, engine.last_price)
            symbols = engine.feed.symbols
        else:
            return
        publisher = PricePublisher(
            settings,
            self.names.prices,
            source,
            symbols=symbols,
            leases=RedisLeases(redis, deployment=settings.topic_suffix),
            # Unique per process: a restarted replica of the same name is another holder.
            owner=f"{settings.replica_name()}:{uuid.uuid4().hex[:12]}",
        )
        await publisher.start()
        self.publisher = publisher
        self._on_stop("market data", publisher.stop)

    def _market_data_figures(self) -> dict[str, float | Durations | Labelled]:
        """Per symbol: the feed's age and staleness, what this replica publishes and holds."""
        engine, publisher, feeds = self.engine, self.publisher, self.feed_stats
        if engine is None:
            return {}
        figures: dict[str, float | Durations | Labelled] = {
            "market_data_age_seconds": Labelled("symbol", engine.market_data_ages()),
            "market_data_stale": Labelled(
                "symbol",
                {s: float(engine.market_data_stale(s)) for s in engine.instruments},
            ),
        }
        if publisher is not None:
            held = publisher.leases.held
            figures["market_data_published_total"] = Labelled("symbol", dict(publisher.published))
            figures["market_data_lease_held"] = Labelled(
                "symbol", {s: float(s in held) for s in publisher.leases.symbols}
            )
            figures["market_data_reconnects_total"] = Labelled("symbol", dict(feeds.disconnects))
            figures["market_data_resyncs_total"] = Labelled("symbol", dict(feeds.resyncs))
        return figures

    def _reconciliation(
        self,
        engine: Engine,
        accounts: MongoAccountRepository,
        bus: KafkaCommandBus,
        sink: KafkaEventSink,
    ) -> Reconciliation:
        """Discrepancies halt as an operator's kill switch does; a fill the ledger refuses is
        one of them; with a network venue, a reconciler runs after each take-over (the first
        is the start's) and every ``reconcile_interval_s``."""
        settings = self.settings
        discrepancies = Discrepancies(HaltAccount(engine, accounts, bus, sink))
        state = Reconciliation(discrepancies)
        self.reconciliation = state
        loop = asyncio.get_running_loop()

        def unbookable(fill: Unbookable) -> None:  # on the engine thread
            loop.call_soon_threadsafe(self._spawn_halt, discrepancies.unbookable(fill, time.time()))

        engine.on_unbookable(unbookable)
        if self.venue is not None:
            state.reconciler = Reconciler(
                engine=engine,
                venue=self.venue,
                resolver=EngineResolver(engine),
                discrepancies=discrepancies,
                in_doubt=place_in_doubt,
                symbols=tuple(engine.instruments),
                owns=self._owns,
                submit_window_s=settings.reconcile_submit_window_s,
                lookback_s=settings.reconcile_lookback_s,
            )
            timer = asyncio.create_task(
                state.reconciler.every(settings.reconcile_interval_s), name="oms-reconcile"
            )
            self._on_stop("reconciliation", _cancel(timer))
        return state

    def _owns(self, account_id: str) -> bool:
        """True for an account in the partitions this replica owns now (none before the first
        take-over, and none while one is under way)."""
        owned = self.owned
        return owned is not None and partition_of(account_id, owned[1]) in owned[0]

    def _reconcile_soon(self, trigger: str) -> None:
        """A reconciliation run in the background (a take-over does not wait for it)."""
        state = self.reconciliation
        if state is not None and state.reconciler is not None:
            self._spawn_halt(state.reconciler.run(trigger))

    def _spawn_halt(self, work: Awaitable[Any]) -> None:
        """Run ``work`` (a halt or a run) as a task kept until it ends; its failure is logged
        (a halt that could not be recorded: the book has halted the account in memory)."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                logger.exception("reconciliation could not record or halt")

        task = asyncio.create_task(guarded())
        self._halts.add(task)
        task.add_done_callback(self._halts.discard)

    async def _venue(
        self, settings: Settings
    ) -> tuple[VenueGateway | None, tuple[Instrument, ...]]:
        """The venue the engine trades on: the simulated one (no gateway, the default
        instruments), or an exchange through ccxt (README "Trading on an exchange"): its gateway,
        and the configured symbols with the exchange's own tick and lot sizes."""
        if settings.venue == "simulated":
            return None, DEFAULT_INSTRUMENTS
        key, secret = settings.venue_credentials()
        port = CcxtVenue(
            build_exchange(
                CcxtSettings(
                    exchange=settings.venue_exchange,
                    api_key=key,
                    api_secret=secret,
                    sandbox=settings.venue_sandbox,
                    url=settings.venue_url or None,
                    timeout_s=settings.venue_timeout_s,
                )
            )
        )
        self._on_stop("venue", port.close)
        await port.open()
        self.venue = port
        instruments = _venue_instruments(await port.instrument_rules(), settings.symbols)
        # The venue's fills go onto executions, the engine's durable input, like any external
        # fill: booked once (by execution id) whichever replica reads them.
        fills = KafkaCommandBus(settings, self.names)
        await fills.start()
        self._on_stop("venue fills", fills.stop)
        gateway = VenueGateway(port, fills.send, query_delay_s=settings.venue_query_delay_s)
        gateway.start()
        self._on_stop("venue gateway", gateway.stop)
        logger.info(
            "trading on %s through ccxt%s: %s",
            settings.venue_exchange,
            " (sandbox)" if settings.venue_sandbox else "",
            ", ".join(i.symbol for i in instruments),
        )
        return gateway, instruments

    async def _start_owner_map(
        self, redis: aioredis.Redis, ingestion: StreamIngestion
    ) -> RedisOwnerMap:
        """The owner map in Redis, and this replica's beacon in it: written as its share of
        ``orders`` changes and every heartbeat, taken out at a stop (README "Several
        replicas"). Reads that reach another replica find their owner there."""
        settings = self.settings
        owners = RedisOwnerMap(
            redis,
            deployment=settings.topic_suffix,
            group=ingestion.group_id,
            ttl_s=settings.owner_ttl_s,
        )
        beacon = OwnerBeacon(settings, owners, ingestion.owned_now)
        ingestion.on_share = beacon.poke
        if not settings.internal_token:
            logger.info(
                "OMS_INTERNAL_TOKEN is not set: reads of accounts another replica owns answer"
                " 503 OWNER_UNAVAILABLE (one replica alone owns every account)"
            )
        await beacon.start()
        self._on_stop("owner map", beacon.stop)
        return owners

    async def _start_gate(self, engine: Engine, redis: aioredis.Redis) -> GlobalGate:
        """The firm-wide caps' reservations, started (``oms.engine.global_gate``)."""
        settings = self.settings
        gate = GlobalGate(
            engine,
            RedisGlobalLimits(
                redis,
                partitions=settings.orders_partitions,
                timeout_s=settings.redis_timeout_s,
                deployment=settings.topic_suffix,
            ),
            partitions=settings.orders_partitions,
            partition_of=partition_of,
            refresh_s=settings.global_limits_refresh_s,
        )
        await gate.start()
        self._on_stop("global limits", gate.stop)
        self.gate = gate
        return gate

    async def _pause_checkpoints(self) -> None:
        """A rebalance began: wait for a checkpoint under way (its partitions are still this
        replica's until it rejoins the group), then write none until the share is known again.
        Else a checkpoint of a partition given away could land after its new owner's writes,
        and drop the epoch of the log they went to."""
        async with self.ownership:
            self.held, self.owned = self.owned, None

    async def _resume_checkpoints(self) -> None:
        """The rebalance left this replica the share it had: checkpoint it again."""
        async with self.ownership:
            if self.owned is None:
                self.owned = self.held

    def _hand_off(self, ingestion: StreamIngestion, stop_checkpoints: Stop) -> Stop:
        """The first step of a stop (a rolling deploy's SIGTERM): the partitions go to the other
        replicas within the time it takes to make in-flight work durable and write one
        checkpoint, while this one still answers requests (they go to Kafka, the new owners
        consume them). No periodic checkpoint may run after it: the partitions are someone
        else's then."""

        async def hand_off() -> None:
            await stop_checkpoints()
            await ingestion.stop()
            self.owned = None

        return hand_off

    def _authenticator(
        self, database: AsyncDatabase[dict[str, Any]], redis: aioredis.Redis
    ) -> Authenticator:
        """Who callers are: API keys in MongoDB, WebSocket tickets in Redis, JWTs if set up."""
        settings = self.settings
        jwt = None
        if settings.jwt_public_key or settings.jwt_jwks_url:
            jwt = JwtVerifier(settings)
            self._on_stop("jwks client", jwt.close)
        keys = MongoKeyDirectory(database)
        return Authenticator(settings, keys, RedisTicketStore(redis), jwt)

    async def _reopen_accounts(self, engine: Engine, accounts: MongoAccountRepository) -> None:
        """Open every stored account in the engine with its opening balances and limits (the
        owned ones are rebuilt with everything else when the partitions are assigned).

        A stored account start-up does not like (a reserved or malformed id, a document that
        does not read, an opening the engine refuses) is left out and reported, never fatal.
        """
        records, broken = await accounts.load_readable()
        usable, skips = screen_accounts(records)
        skips += unreadable("account", broken)
        for record in usable:
            try:
                await engine.open_account(record.account_id, record.balances, record.limits)
            except (DomainError, ArithmeticError) as refused:
                skips.append(
                    Skip("account", record.account_id, SkipReason.REFUSED_BY_ENGINE, repr(refused))
                )
        self.skips.report("start-up", skips)

    async def _recover(
        self,
        engine: Engine,
        repository: MongoOrderRepository,
        accounts: MongoAccountRepository,
        *,
        sink: KafkaEventSink,
        owned: frozenset[int],
        total: int,
    ) -> None:
        """Rebuild balances, reservations, resting orders and open orders of the accounts in
        the ``owned`` partitions of ``orders`` from the store (``Engine.rebuild``), before any
        of their commands is fetched. Another replica may have traded them until now, and the
        ones this replica no longer owns must not stay in its venue.

        The outbox: what the store holds of them after their checkpoints and ``order-events``
        does not (a crash came between the write and Kafka's ack) is published first, each
        order's events in sequence order. Then the checkpoint task writes a checkpoint, once
        records flow again, so that the next recovery starts here (best effort: the periodic one
        tries again).
        """
        if total != self.settings.orders_partitions:
            logger.warning(
                "orders has %d partitions, OMS_ORDERS_PARTITIONS says %d: the recovery log "
                "follows the setting", total, self.settings.orders_partitions,
            )  # fmt: skip

        def mine(account_id: str) -> bool:
            return partition_of(account_id, total) in owned

        async with self.ownership:
            self.owned = None  # no checkpoint of a share that is changing
            recovery = await repository.recover(owned)
            missing = await sink.missing(
                recovery.unpublished, recovery.events_from, since_time=recovery.log_began
            )
            sink.republish(missing)
            await sink.drain()
            open_orders = [s for s in recovery.open_orders if mine(s.order.account_id)]
            records, broken = await accounts.load_readable()
            usable, skips = screen_accounts(records)
            skips += unreadable("account", broken) + unreadable("order", recovery.unreadable)
            summary = await engine.rebuild(
                open_orders,
                usable,
                recovery.fills,
                await accounts.global_trading_state(),
                ledger=recovery.ledger,
                accepted=recovery.accepted,
            )
            self.skips.report("recovery", skips)
            await self._rebuild_global_limits(engine, owned, open_orders, usable, mine)
            self.owned = (owned, total)
        logger.info(
            "recovered %d open and %d finished orders (%d documents read%s, %.2fs; %d events"
            " published again of %d stored after the checkpoints) for partitions %s of %d: %s",
            len(open_orders), recovery.finished, recovery.documents,
            ", every order document: the log was not whole" if recovery.scanned else "",
            recovery.seconds, len(missing), len(recovery.unpublished), sorted(owned), total,
            summary, extra=UNTHROTTLED,
        )  # fmt: skip
        # Not awaited here: the hand-off waits for this method, and a checkpoint (0.3-0.6 s
        # measured under load) would delay the first record of the partitions taken over.
        self.checkpoint_soon.set()
        self._reconcile_soon("rebuild")  # the first one is the start's

    async def _rebuild_global_limits(
        self,
        engine: Engine,
        owned: frozenset[int],
        open_orders: list[StoredOrder],
        accounts: Sequence[AccountRecord],
        mine: Callable[[str], bool],
    ) -> None:
        """The owned partitions' share of the firm-wide caps written again from what was just
        recovered (``GlobalGate.rebuild``); nothing while no cap is set."""
        gate = self.gate
        if gate is None or not gate.active:
            return
        positions: dict[str, dict[str, Decimal]] = {}
        for record in accounts:
            if mine(record.account_id):
                snapshot = await engine.account(record.account_id)
                positions[record.account_id] = {
                    symbol: position.quantity for symbol, position in snapshot.positions.items()
                }
        try:
            await gate.rebuild(owned, [stored.order for stored in open_orders], positions)
        except GlobalLimitsUnavailable:
            # What the previous owner held stays counted (more than is held, never less)
            # until the next take-over rebuilds it.
            logger.exception("global limits: partitions %s not rebuilt", sorted(owned))

    async def _checkpoints(
        self, engine: Engine, repository: MongoOrderRepository, sink: KafkaEventSink
    ) -> None:
        """Every ``checkpoint_interval_s``, and at once after a take-over, a checkpoint of the
        owned partitions."""
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.checkpoint_soon.wait(), self.settings.checkpoint_interval_s
                )
            why = "after the take-over" if self.checkpoint_soon.is_set() else "periodic"
            self.checkpoint_soon.clear()
            failing = not await self._checkpoint_now(engine, repository, sink, why, quiet=failing)

    async def _checkpoint_now(
        self,
        engine: Engine,
        repository: MongoOrderRepository,
        sink: KafkaEventSink,
        why: str,
        *,
        quiet: bool = False,
        timeout_s: float = CHECKPOINT_TIMEOUT_S,
    ) -> bool:
        """Write a checkpoint of the owned partitions (``_checkpoint``) within a bound; False,
        having logged why (unless ``quiet``: once per run of failures), when it could not."""
        try:
            async with self.ownership:
                await asyncio.wait_for(self._checkpoint(engine, repository, sink), timeout_s)
        except Exception as error:  # noqa: BLE001 - reported; the next checkpoint tries again
            if not quiet:
                logger.warning("checkpoint (%s) not written: %r", why, error)
            return False
        return True

    async def _checkpoint(
        self, engine: Engine, repository: MongoOrderRepository, sink: KafkaEventSink
    ) -> None:
        """Where ``order-events`` ends, then at an idle point the ledger and the store's side,
        then once that is durable and its events acknowledged, the checkpoint itself."""
        owned = self.owned
        if owned is None or engine.failure is not None:
            return
        partitions, total = owned

        def mine(account_id: str) -> bool:
            return partition_of(account_id, total) in partitions

        events_from = await sink.end_offsets()
        ledger, capture = await engine.checkpoint(
            mine, lambda: repository.begin_checkpoint(partitions)
        )
        await repository.durable(capture.mark)
        await sink.drain()
        await repository.write_checkpoint(capture, ledger, events_from)

    async def _open_store(self, repository: MongoOrderRepository) -> None:
        """Start the order store's writer where ``store_loop`` says, and stop it last."""
        if self.settings.store_loop == "own":
            await asyncio.to_thread(repository.start)
            self._on_stop("order store", _async(repository.stop))
        else:
            await repository.open()
            self._on_stop("order store", repository.close)

    def _refused(self) -> int:
        """Connections the listener answered 503 for its cap."""
        return 0 if self.site is None else self.site.refused

    def _on_stop(self, name: str, stop: Stop) -> None:
        self.stops.append((name, stop))

    async def stop(self) -> None:
        """Stop every part that started, newest first; one failing stop does not skip the rest."""
        while self.stops:
            name, stop = self.stops.pop()
            try:
                await stop()
            except Exception:
                logger.exception("stopping %s failed", name)


class HaltAccount(Halt):
    """A discrepancy halts as ``POST /api/risk/kill-switch`` does: recorded in the store (a
    restart does not resume it), applied here and sent to the replica owning the account
    (every replica, for the global switch), announced on ``risk-events``."""

    def __init__(
        self,
        engine: Engine,
        accounts: AccountRepository,
        bus: CommandBus,
        risk_events: RiskEventSink,
    ) -> None:
        """Halt through these."""
        self.engine = engine
        self.accounts = accounts
        self.bus = bus
        self.risk_events = risk_events

    async def halt(self, discrepancy: Discrepancy, at: float) -> None:
        """Record, apply, send and announce the halt."""
        account_id = discrepancy.account_id
        try:
            if account_id is None:
                await self.accounts.set_global_trading_state(TradingState.HALTED)
            else:
                await self.accounts.set_trading_state(account_id, TradingState.HALTED)
            await self.engine.set_kill_switch(TradingState.HALTED, account_id)
        except UnknownAccount:  # not an account of ours: the whole deployment stops instead
            logger.exception("reconciliation: unknown account %s: halting everything", account_id)
            await self.accounts.set_global_trading_state(TradingState.HALTED)
            await self.engine.set_kill_switch(TradingState.HALTED, None)
            account_id = None
        await self.bus.send_account(SetTradingState(TradingState.HALTED, account_id))
        await self.risk_events.publish_risk_event(
            reconciliation_discrepancy(
                discrepancy.kind.value,
                account_id,
                discrepancy.order_id,
                discrepancy.detail,
                at,
            )
        )


def _with_reconciliation(
    figures: Callable[[], dict[str, float | Durations | Labelled | LabelledDurations]],
    service: Service,
) -> Callable[[], dict[str, float | Durations | Labelled | LabelledDurations]]:
    """The pipeline figures and ``reconcile_discrepancies_total{kind}`` (once it is set up)."""

    def all_figures() -> dict[str, float | Durations | Labelled | LabelledDurations]:
        state = service.reconciliation
        if state is None:
            return figures()
        by_kind = state.discrepancies.by_kind
        # Every kind from the start, at 0 until it happens: a series that first appears at 1 is
        # no increase to Prometheus, so the alert on the first discrepancy would never fire.
        return {
            **figures(),
            "reconcile_discrepancies_total": Labelled(
                "kind", {kind.value: float(by_kind[kind.value]) for kind in DiscrepancyKind}
            ),
        }

    return all_figures


def _venue_instruments(
    rules: Mapping[str, InstrumentRules], symbols: Sequence[str]
) -> tuple[Instrument, ...]:
    """The configured symbols as the exchange lists them (its tick and lot sizes); a symbol it
    does not list stops the start: orders for it could only be refused."""
    missing = [symbol for symbol in symbols if symbol not in rules]
    if missing:
        raise SettingsError(
            f"OMS_SYMBOLS names {', '.join(missing)}, which the venue does not list "
            "(oms symbols are BASE-QUOTE, e.g. BTC-USDT)"
        )
    instruments = []
    for symbol in symbols:
        rule = rules[symbol]
        base, _, quote = symbol.partition("-")
        status = InstrumentStatus.TRADING if rule.trading else InstrumentStatus.HALTED
        instruments.append(
            Instrument(symbol, base, quote, rule.tick_size, rule.lot_size, status=status)
        )
    return tuple(instruments)


def _cancel(task: asyncio.Task[None]) -> Stop:
    """Cancel a background task and wait for it to end."""

    async def run() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return run


def _async(fn: Callable[[], None]) -> Stop:
    """A blocking stop (the engine joins its thread) run off the loop."""

    async def run() -> None:
        await asyncio.to_thread(fn)

    return run


def _pipeline(
    repository: MongoOrderRepository,
    ingestion: StreamIngestion,
    sink: KafkaEventSink,
    skips: Skips,
    connections_refused: Callable[[], int],
    *,
    legs: Legs,
) -> Callable[[], dict[str, float | Durations | Labelled | LabelledDurations]]:
    """The figures ``/metrics`` shows of the store, the ingestion and the event sink."""

    def figures() -> dict[str, float | Durations | Labelled | LabelledDurations]:
        stats = ingestion.stats
        return {
            "store_backlog_orders": repository.backlog,
            "store_writes_total": repository.writes,
            "store_documents_written_total": repository.documents_written,
            "store_write_retries_total": repository.retries,
            "store_write_duration_seconds": repository.write_times,
            "ingest_commands_total": stats.commands,
            "ingest_commits_total": stats.commits,
            "ingest_commit_failures_total": stats.commit_failures,
            "ingest_barrier_retries_total": stats.barrier_retries,
            "ingest_room_wait_seconds_total": stats.room_wait_s,
            # Copied: the barrier adds a step's key the first time it runs.
            "ingest_barrier_step_seconds_total": Labelled("step", dict(stats.barrier_step_s)),
            "rebalances_total": stats.rebalances,
            "rebalance_pause_seconds": stats.last_rebalance_pause_s,
            "rebuild_seconds": stats.last_rebuild_s,
            "dead_letters_total": stats.dead_letters,
            # Copied: the ingestion adds keys while the scrape walks them.
            "dead_letters_by_reason_total": Labelled("reason", dict(stats.by_reason)),
            "ticks_total": Labelled("symbol", dict(stats.ticks_by_symbol)),
            "events_published_total": sink.published,
            "events_failed_total": sink.failed,
            "recovery_skipped_records": skips.distinct,
            "http_connections_refused_total": connections_refused(),
            "order_leg_seconds": LabelledDurations("leg", legs.durations),
        }

    return figures


def _with_limits(
    figures: Callable[[], dict[str, float | Durations | Labelled | LabelledDurations]],
    limiter: RateLimiter,
) -> Callable[[], dict[str, float | Durations | Labelled | LabelledDurations]]:
    """``figures`` and the rate limiter's: requests refused by limit, checks counted locally."""

    def with_limits() -> dict[str, float | Durations | Labelled | LabelledDurations]:
        return {
            **figures(),
            "rate_limited_total": Labelled("limit", dict(limiter.refused)),
            "rate_limit_local_checks_total": limiter.fallbacks,
        }

    return with_limits


def _with_extra(
    figures: Callable[[], dict[str, float | Durations | Labelled | LabelledDurations]],
    extra: Callable[[], Mapping[str, float | Durations | Labelled | LabelledDurations]],
) -> Callable[[], dict[str, float | Durations | Labelled | LabelledDurations]]:
    """``figures`` and ``extra``'s."""

    def both() -> dict[str, float | Durations | Labelled | LabelledDurations]:
        return {**figures(), **extra()}

    return both


def _account_of(repository: MongoOrderRepository) -> Callable[[str], str | None]:
    def account_of(order_id: str) -> str | None:
        order = repository.get(order_id)
        return None if order is None else order.account_id

    return account_of


EXIT_ENGINE_FAILED = 70  # EX_SOFTWARE: an actor failed; restart from durable state
EXIT_STOP_TIMED_OUT = 75  # EX_TEMPFAIL: the clean stop overran its bound


def _replica(settings: Settings) -> tuple[Settings, Service, DoorSupervisor | None]:
    """The service and, with ``http_workers``, its doors: they take the public port and the
    engine process listens on its internal one (which the other replicas reach too: its
    advertised address follows it); the settings with the door token they share."""
    if not settings.http_workers:
        return settings, Service(settings), None
    settings = settings.replace(door_token=settings.door_token or secrets.token_hex(32))
    doors = DoorSupervisor(settings, stop_timeout_s=settings.shutdown_timeout_s / 4)
    return settings, Service(settings.replace(http_port=settings.engine_port())), doors


async def _start_doors(settings: Settings, service: Service, doors: DoorSupervisor) -> None:
    """Start the doors once the engine answers; if they cannot start, stop everything."""
    try:
        await doors.start()
    except BaseException:
        await doors.stop()
        await service.stop()
        raise
    logger.info(
        "oms doors %s serving on http://%s:%d; the engine on port %d",
        doors.pids(),
        settings.http_host,
        settings.http_port,
        settings.engine_port(),
    )


async def serve(settings: Settings) -> int:
    """Run one replica until SIGINT or SIGTERM (or an engine failure), then stop it; the exit
    status: 0 after a clean stop, ``EXIT_ENGINE_FAILED`` or ``EXIT_STOP_TIMED_OUT``.

    The stop is bounded by ``shutdown_timeout_s`` (a second signal ends the process at once),
    so an orchestrator's grace period is never what ends it. After an engine failure nothing
    more is committed to Kafka: the restarted replica replays from the last commit.
    """
    settings, service, doors = _replica(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            logger.warning("second stop signal: exiting now")
            os._exit(EXIT_STOP_TIMED_OUT)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    starting = asyncio.create_task(service.start(), name="oms-start")
    stopping = asyncio.create_task(stop.wait(), name="oms-stop-signal")
    await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # stopped while starting (a server unreachable, say)
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        return 0
    stopping.cancel()
    starting.result()  # a failed start raises here, after it stopped what it had started
    if doors is not None:
        await _start_doors(settings, service, doors)
    tune_gc(settings.gc_young_threshold, freeze_survivors=settings.gc_freeze_survivors)
    record_gc_pauses()
    # Logged, not printed: in JSON, every line the process writes is one object.
    logger.info("oms serving on http://%s:%d", settings.http_host, settings.http_port)
    logger.info("speed levers: %s", describe_levers(settings))
    failed = asyncio.create_task(service.failed.wait(), name="oms-engine-failed")
    signalled = asyncio.create_task(stop.wait(), name="oms-stop-signal")
    await asyncio.wait((failed, signalled), return_when=asyncio.FIRST_COMPLETED)
    failed.cancel()
    signalled.cancel()
    status = 0
    if service.failed.is_set():
        status = EXIT_ENGINE_FAILED
        logger.critical("oms engine failed: %s; stopping", service.engine_trouble())
    else:
        logger.info("oms stopping")
    # The last resort if even the bounded stop cannot end (a thread stuck in I/O).
    watchdog = threading.Timer(settings.shutdown_timeout_s + 5.0, os._exit, (status or 1,))
    watchdog.daemon = True
    watchdog.start()
    try:
        # The doors first: no new request, those in flight answered (a POST's command is on
        # Kafka before its 202), then the engine with what it was sent.
        async with asyncio.timeout(settings.shutdown_timeout_s):
            if doors is not None:
                await doors.stop()
            await service.stop()
    except TimeoutError:
        logger.error(  # noqa: TRY400 - the overrun is the news, not the cancelled stop's stack
            "stopping took longer than %.1fs; exiting", settings.shutdown_timeout_s
        )
        status = status or EXIT_STOP_TIMED_OUT
    return status
