"""``oms serve``: the one place that builds the running system from real adapters.

Start order (stop is the reverse): the MongoDB store and Redis, the Kafka event sink, the
engine (its accounts re-opened from the store), the stream ingestion (the batch agent
for ``orders`` and ``executions``, the price feed outside the group), the Kafka command bus, the
simulated market-data publisher, then the HTTP API. Everything runs in one asyncio loop, except
the engine, which runs on its own dispatcher thread, and the store's writer, on a thread of its
own. The balances, reservations and resting orders of the accounts this replica owns are rebuilt
from the store when the group assigns it its partitions, and again whenever its share changes
(``take_over``, called by the ingestion before it hands anything over): from each owned
partition's newest checkpoint and what was written after it, and what of that never reached
``order-events`` is published then. A checkpoint of the owned partitions is written right after,
every ``checkpoint_interval_s`` while running, and once more at a clean stop.

The simulated feed publishes its ticks to the ``prices`` topic instead of feeding the engine
directly, so every replica's books move together through the one path real prices take.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from oms.actors.runtime import ActorFailure, tune_gc
from oms.actors.supervisor import Unbookable
from oms.api.app import build_app
from oms.api.credentials import Authenticator
from oms.api.jwt_tokens import JwtVerifier
from oms.api.listener import CappedSite, start_listener
from oms.api.metrics import Labelled
from oms.api.rate_limits import RateLimiter
from oms.config import Settings, SettingsError
from oms.domain.commands import SetTradingState
from oms.domain.errors import DomainError, UnknownAccount
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument, InstrumentStatus
from oms.domain.limits import TradingState
from oms.durations import Durations
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.engine.ports import AccountRepository
from oms.engine.reconciliation import (
    Discrepancies,
    EngineResolver,
    Halt,
    Reconciler,
    Reconciliation,
    place_in_doubt,
)
from oms.marketdata import SimulatedFeed
from oms.skips import Skip, SkipReason, Skips, screen_accounts, unreadable
from oms.store.api_keys import MongoKeyDirectory
from oms.store.memory_rate_limits import MemoryRateLimits
from oms.store.mongo import MongoOrderRepository
from oms.store.mongo_accounts import MongoAccountRepository
from oms.store.mongo_audit import MongoAuditLog
from oms.store.mongo_schema import init_database
from oms.store.redis_rate_limits import RedisRateLimits
from oms.store.redis_store import (
    RedisIdempotencyStore,
    RedisOrderCache,
    RedisTicketStore,
    redis_client,
)
from oms.stream.bus import CommandBus, RiskEventSink
from oms.stream.codecs import encode_tick, reconciliation_discrepancy
from oms.stream.command_bus import KafkaCommandBus
from oms.stream.event_sink import KafkaEventSink
from oms.stream.ingestion import StreamIngestion
from oms.stream.names import TopicNames, topic_names
from oms.stream.partitioner import partition_of, reliable_producer
from oms.venue.ccxt_venue import CcxtSettings, CcxtVenue, build_exchange
from oms.venue.gateway import VenueGateway
from oms.venue.port import InstrumentRules, VenuePort
from oms.venue.reconcile import Discrepancy

logger = logging.getLogger(__name__)

Stop = Callable[[], Awaitable[Any]]
FEED_INTERVAL_S = 0.1  # ten ticks a second per symbol: resting orders see the market move
# A checkpoint waits for an idle point, the store and Kafka: past this it is given up (the next
# one tries again), so that a take-over waiting for the ownership lock is never held long.
CHECKPOINT_TIMEOUT_S = 15.0
LAST_CHECKPOINT_TIMEOUT_S = 5.0


class SimulatedPricePublisher:
    """Steps the seeded simulated feed and publishes each tick on ``prices`` (keyed by symbol)."""

    def __init__(self, settings: Settings, feed: SimulatedFeed, topic: str) -> None:
        self._feed = feed
        self._topic = topic
        self._producer: AIOKafkaProducer = reliable_producer(settings)
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    async def start(self) -> None:
        """Connect and start publishing."""
        await self._producer.start()
        self._task = asyncio.create_task(self._run(), name="oms-simulated-feed")

    async def stop(self) -> None:
        """Stop publishing and disconnect."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._producer.stop()

    async def _run(self) -> None:
        while True:
            for tick in self._feed.step(time.time()):
                await self._producer.send(
                    self._topic, key=tick.symbol.encode(), value=encode_tick(tick)
                )
                self.published += 1
            await asyncio.sleep(FEED_INTERVAL_S)


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
    ownership: asyncio.Lock = field(default_factory=asyncio.Lock)
    # A network venue to reconcile with (the venue-port adapter ``OMS_VENUE`` chooses; None:
    # the simulated venue, the book of record, has nothing to reconcile) and what
    # reconciliation found (``GET /api/venue/reconciliation``, ``/metrics``).
    venue: VenuePort | None = None
    reconciliation: Reconciliation | None = None
    _halts: set[asyncio.Task[None]] = field(default_factory=set)

    def engine_trouble(self) -> str | None:
        """Why the engine can no longer be trusted, or None."""
        return None if self.engine is None else self.engine.trouble()

    def __post_init__(self) -> None:
        self.names = topic_names(self.settings)

    async def start(self) -> None:  # noqa: PLR0915 - the one place every part starts, in order
        """Build and start every part; on failure, stop what started."""
        settings = self.settings
        try:
            # The store's writer runs on a loop and thread of its own: the engine's durability
            # barrier (a blocking flush on the engine thread) never waits on this loop.
            repository = MongoOrderRepository.from_settings(
                settings, partitions=settings.orders_partitions, partition_of=partition_of
            )
            await asyncio.to_thread(repository.start)
            self._on_stop("order store", _async(repository.stop))
            accounts_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
            self._on_stop("accounts store", accounts_client.close)
            accounts_db = accounts_client[settings.mongo_database]
            await init_database(accounts_db)
            accounts = MongoAccountRepository(accounts_db)
            redis = redis_client(settings)  # bounded waits: a stopped Redis is a quick 503
            self._on_stop("redis", redis.aclose)

            sink = KafkaEventSink(settings, self.names, account_of=_account_of(repository))
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
            engine.start()
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
                settings, engine, names=self.names, sink=sink, on_owned=take_over
            )
            self._on_stop("last checkpoint", last_checkpoint)  # once the ingestion stopped
            await ingestion.start()
            self._on_stop("stream ingestion", ingestion.stop)
            checkpoints = asyncio.create_task(
                self._checkpoints(engine, repository, sink), name="oms-checkpoints"
            )
            self._on_stop("checkpoints", _cancel(checkpoints))

            bus = KafkaCommandBus(settings, self.names)
            await bus.start()
            self._on_stop("command bus", bus.stop)

            if settings.simulated_feed and engine.feed is not None:
                publisher = SimulatedPricePublisher(settings, engine.feed, self.names.prices)
                await publisher.start()
                self._on_stop("simulated feed", publisher.stop)

            authenticator = self._authenticator(accounts_db, redis)
            # Shared by the replicas through Redis, this replica's own while it is away; the
            # buckets of a deployment are apart from another's on the same Redis.
            limiter = RateLimiter(
                settings,
                RedisRateLimits(redis, deployment=settings.topic_suffix),
                MemoryRateLimits(),
            )
            app = build_app(
                settings,
                engine,
                bus,
                RedisIdempotencyStore(redis),
                RedisOrderCache(redis),
                partitions_assigned=ingestion.partitions_assigned,
                consumer_lag=ingestion.consumer_lag,
                pipeline=_with_reconciliation(
                    _with_limits(
                        _pipeline(repository, ingestion, sink, self.skips, self._refused), limiter
                    ),
                    self,
                ),
                accounts=accounts,
                risk_events=sink,
                authenticator=authenticator,
                rate_limiter=limiter,
                audit_log=MongoAuditLog(accounts_db),
                reconciliation=self._reconciliation(engine, accounts, bus, sink),
            )
            runner, self.site = await start_listener(app, settings)
            self._on_stop("http", runner.cleanup)
        except BaseException:
            await self.stop()
            raise

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
        order's events in sequence order. Then a checkpoint, so that the next recovery starts
        here (best effort: the periodic one tries again).
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
            )
            self.skips.report("recovery", skips)
            self.owned = (owned, total)
        logger.info(
            "recovered %d open and %d finished orders (%d documents read%s, %.2fs; %d events"
            " published again of %d stored after the checkpoints) for partitions %s of %d: %s",
            len(open_orders), recovery.finished, recovery.documents,
            ", every order document: the log was not whole" if recovery.scanned else "",
            recovery.seconds, len(missing), len(recovery.unpublished), sorted(owned), total,
            summary,
        )  # fmt: skip
        await self._checkpoint_now(engine, repository, sink, "after the take-over")
        self._reconcile_soon("rebuild")  # the first one is the start's

    async def _checkpoints(
        self, engine: Engine, repository: MongoOrderRepository, sink: KafkaEventSink
    ) -> None:
        """Every ``checkpoint_interval_s``, a checkpoint of the owned partitions."""
        failing = False
        while True:
            await asyncio.sleep(self.settings.checkpoint_interval_s)
            failing = not await self._checkpoint_now(
                engine, repository, sink, "periodic", quiet=failing
            )

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
    figures: Callable[[], dict[str, float | Durations | Labelled]], service: Service
) -> Callable[[], dict[str, float | Durations | Labelled]]:
    """The pipeline figures and ``reconcile_discrepancies_total{kind}`` (once it is set up)."""

    def all_figures() -> dict[str, float | Durations | Labelled]:
        state = service.reconciliation
        if state is None:
            return figures()
        by_kind = state.discrepancies.by_kind
        return {
            **figures(),
            "reconcile_discrepancies_total": Labelled(
                "kind", {k: float(n) for k, n in by_kind.items()}
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
) -> Callable[[], dict[str, float | Durations | Labelled]]:
    """The figures ``/metrics`` shows of the store, the ingestion and the event sink."""

    def figures() -> dict[str, float | Durations | Labelled]:
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
            "dead_letters_total": stats.dead_letters,
            # Copied: the ingestion adds keys while the scrape walks them.
            "dead_letters_by_reason_total": Labelled("reason", dict(stats.by_reason)),
            "ticks_total": Labelled("symbol", dict(stats.ticks_by_symbol)),
            "events_published_total": sink.published,
            "events_failed_total": sink.failed,
            "recovery_skipped_records": skips.distinct,
            "http_connections_refused_total": connections_refused(),
        }

    return figures


def _with_limits(
    figures: Callable[[], dict[str, float | Durations | Labelled]], limiter: RateLimiter
) -> Callable[[], dict[str, float | Durations | Labelled]]:
    """``figures`` and the rate limiter's: requests refused by limit, checks counted locally."""

    def with_limits() -> dict[str, float | Durations | Labelled]:
        return {
            **figures(),
            "rate_limited_total": Labelled("limit", dict(limiter.refused)),
            "rate_limit_local_checks_total": limiter.fallbacks,
        }

    return with_limits


def _account_of(repository: MongoOrderRepository) -> Callable[[str], str | None]:
    def account_of(order_id: str) -> str | None:
        order = repository.get(order_id)
        return None if order is None else order.account_id

    return account_of


EXIT_ENGINE_FAILED = 70  # EX_SOFTWARE: an actor failed; restart from durable state
EXIT_STOP_TIMED_OUT = 75  # EX_TEMPFAIL: the clean stop overran its bound


async def serve(settings: Settings) -> int:
    """Run one replica until SIGINT or SIGTERM (or an engine failure), then stop it; the exit
    status: 0 after a clean stop, ``EXIT_ENGINE_FAILED`` or ``EXIT_STOP_TIMED_OUT``.

    The stop is bounded by ``shutdown_timeout_s`` (a second signal ends the process at once),
    so an orchestrator's grace period is never what ends it. After an engine failure nothing
    more is committed to Kafka: the restarted replica replays from the last commit.
    """
    service = Service(settings)
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
    tune_gc()
    # Logged, not printed: in JSON, every line the process writes is one object.
    logger.info("oms serving on http://%s:%d", settings.http_host, settings.http_port)
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
        await asyncio.wait_for(service.stop(), settings.shutdown_timeout_s)
    except TimeoutError:
        logger.error(  # noqa: TRY400 - the overrun is the news, not the cancelled stop's stack
            "stopping took longer than %.1fs; exiting", settings.shutdown_timeout_s
        )
        status = status or EXIT_STOP_TIMED_OUT
    return status
