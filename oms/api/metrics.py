"""``/metrics`` in Prometheus text: orders by status and what moves them, request and order
latency, consumer lag, the kill switches, readiness, and the counters of the pipeline behind
the API (store, ingestion, event sink).

Each application has its own registry (several apps in one test process must not clash).
Everything but the request latency is read at scrape time from what the app is handed (the
order feed's counters, the risk book's switches, the service's pipeline figures), so the hot
paths do no metric work beyond one histogram observation per request and a few counter steps
per order on the event loop. Readiness probes real servers, so a scrape refreshes it at most
every ``READY_REFRESH_S``. The dashboard (``deploy/grafana/oms.json``) and the alert rules
(``deploy/prometheus/oms-rules.yml``) read these names: a test checks that each one exists.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from oms import __version__
from oms.api.live import OrderFeed
from oms.api.services import ConsumerLag
from oms.domain.enums import OrderStatus
from oms.domain.limits import TradingState
from oms.durations import Durations
from oms.gc_pauses import PAUSES


@dataclass(frozen=True, slots=True)
class Labelled:
    """A pipeline figure per value of one label: ``oms_<name>{<label>="<key>"} <value>``."""

    label: str
    values: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class LabelledDurations:
    """A histogram per value of one label: ``oms_<name>_bucket{<label>="<key>",le=...}``."""

    label: str
    values: Mapping[str, Durations]


Pipeline = Callable[[], Mapping[str, float | Durations | Labelled | LabelledDurations]]
KillSwitches = Callable[[], tuple[TradingState, Mapping[str, TradingState]]]
"""The global kill switch and every account whose switch is not ACTIVE."""
ReadyChecks = Callable[[], Awaitable[dict[str, bool]]]
"""What ``/ready`` checks, check by check."""

READY_REFRESH_S = 10.0  # a scrape probes the servers at most this often

# What each pipeline figure is (``oms_<name>``); a name ending ``_total`` is a counter.
PIPELINE_HELP: dict[str, str] = {
    "store_backlog_orders": "Orders saved by the engine and not yet written to MongoDB",
    "store_writes_total": "insert_many calls that succeeded",
    "store_documents_written_total": "Order documents written to MongoDB",
    "store_write_retries_total": "Failed MongoDB writes (each retried until it succeeds)",
    "ingest_commands_total": "Commands read from orders and executions and committed",
    "ingest_commits_total": "Offset commits after a durability barrier",
    "ingest_commit_failures_total": "Commits refused (a rebalance moved the partition)",
    "ingest_barrier_retries_total": "Durability barrier steps that failed and were retried",
    "ingest_room_wait_seconds_total": (
        "Seconds the ingestion waited for room: OMS_INGEST_MAX_IN_FLIGHT records handed to the"
        " engine and not yet committed"
    ),
    "ingest_barrier_step_seconds_total": (
        "Seconds each durability step of the commit barrier took (engine idle, store durable,"
        " order events), by step"
    ),
    "rebalances_total": "Consumer group rebalances this replica went through (hand-offs)",
    "rebalance_pause_seconds": (
        "The last rebalance: how long nothing was handed to the engine, from the revocation to"
        " the rebuilt state"
    ),
    "rebuild_seconds": (
        "The last rebalance: how long rebuilding the owned accounts took (0 when its share of"
        " orders did not change)"
    ),
    "dead_letters_total": "Records put on a dead-letter topic",
    "dead_letters_by_reason_total": "Records put on a dead-letter topic, by reason code",
    "ticks_total": "Market-data ticks handed to the engine, by symbol",
    "market_data_age_seconds": (
        "Seconds since the symbol's book last moved, by the engine's clock (the stale-feed check)"
    ),
    "market_data_stale": (
        "1 while the symbol's feed is stale (no update for OMS_MARKET_DATA_STALE_S): MARKET"
        " orders are refused with MARKET_DATA_STALE"
    ),
    "market_data_published_total": "Ticks this replica published on prices, by symbol",
    "market_data_lease_held": "1 while this replica holds the symbol's publisher lease",
    "market_data_reconnects_total": "Exchange WebSocket connections lost and made again",
    "market_data_resyncs_total": (
        "Exchange books resynced from a snapshot (a gap in the update ids, a bad frame)"
    ),
    "events_published_total": "Order and risk event records acknowledged by Kafka",
    "events_failed_total": "Order and risk event records Kafka did not take",
    "http_connections_refused_total": "Connections answered 503 because the listener was full",
    "rate_limited_total": "Requests answered 429, by the limit that refused them (key, address)",
    "rate_limit_local_checks_total": (
        "Rate-limit checks this replica counted on its own because Redis did not answer"
    ),
    "reads_forwarded_total": "Account and order reads (and order feeds) sent to their owner",
    "reads_owner_unavailable_total": (
        "Reads answered 503 OWNER_UNAVAILABLE: no owner known, or it did not answer in time"
    ),
    "reconcile_discrepancies_total": (
        "What reconciliation with the venue could not explain (or a fill the ledger refused),"
        " by kind: each halted its account (or every account)"
    ),
    "recovery_skipped_records": (
        "Distinct stored accounts and orders start-up or recovery left out (a reserved or"
        " malformed id, an unreadable document, an opening the engine refused): see the log"
    ),
    "order_leg_seconds": (
        "Legs of an order's way from POST (or produce) to its published decision, each timed"
        " where both its ends are seen (oms.legs): post, consume, engine, to_write, write,"
        " publish"
    ),
    "store_write_duration_seconds": (
        "Time to insert logged order documents into the orders collection (one projector's"
        " insert_many calls, retries included); the batch was durable in the recovery log before"
    ),
}

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the scrape-time figures come from (None: this app has no such part)."""

    orders: Callable[[], OrderFeed | None]
    lag: ConsumerLag | None = None
    pipeline: Pipeline | None = None
    kill_switches: KillSwitches | None = None
    replica: str = ""


class _Scraped(Collector):
    """Figures computed when Prometheus scrapes."""

    def __init__(self, sources: Sources) -> None:
        self._sources = sources
        self.ready: dict[str, bool] | None = None  # the last readiness probed, by ApiMetrics

    def collect(self) -> Iterator[Metric]:
        """Every figure of the sources this app has."""
        sources = self._sources
        info = GaugeMetricFamily(
            "oms_info", "This process: its version and replica name", labels=["version", "replica"]
        )
        info.add_metric([__version__, sources.replica], 1)
        yield info
        feed = sources.orders()
        if feed is not None:
            yield from _order_metrics(feed)
        if sources.lag is not None:
            lag = GaugeMetricFamily(
                "oms_consumer_lag",
                "Messages behind, per topic and partition",
                labels=["topic", "partition"],
            )
            for (topic, partition), behind in sorted(sources.lag().items()):
                lag.add_metric([topic, str(partition)], behind)
            yield lag
        if sources.kill_switches is not None:
            yield from _kill_switch_metrics(*sources.kill_switches())
        if self.ready is not None:
            yield from _ready_metrics(self.ready)
        if sources.pipeline is not None:
            yield from _pipeline_metrics(sources.pipeline())
        yield _gc_pause_metric()


def _gc_pause_metric() -> Metric:
    pauses = HistogramMetricFamily(
        "oms_gc_pause_seconds",
        "How long each garbage collection stopped every thread of the process, by generation"
        " (recorded once the process calls oms.gc_pauses.record_gc_pauses)",
        labels=["generation"],
    )
    for generation, durations in PAUSES.items():
        pauses.add_metric([str(generation)], durations.cumulative(), durations.total_s)
    return pauses


def _order_metrics(feed: OrderFeed) -> Iterator[Metric]:
    orders = GaugeMetricFamily(
        "oms_orders",
        "Orders by status: open ones now, ended ones since the process started",
        labels=["status"],
    )
    counts = feed.counts()
    for status, count in counts.items():
        orders.add_metric([status.value], count)
    yield orders
    # Its own name too, because it is the one to alert on: an order whose place or cancel got
    # no answer, holding its reservation until the venue's word (README "Trading on an
    # exchange"). Zero on the simulated venue, which always answers.
    yield GaugeMetricFamily(
        "oms_orders_in_doubt",
        "Open orders in doubt: a request to the venue got no answer, the venue's word is due",
        value=feed.open_by_status[OrderStatus.IN_DOUBT],
    )
    entered = CounterMetricFamily(
        "oms_order_transitions",
        "Orders that moved into each status (a rate is orders per second by status)",
        labels=["status"],
    )
    for status, count in feed.entered.items():
        entered.add_metric([status.value], count)
    yield entered
    rejects = CounterMetricFamily(
        "oms_order_rejects", "Orders rejected, by reason code", labels=["reason"]
    )
    for reason, count in sorted(feed.rejects.items()):
        rejects.add_metric([reason], count)
    yield rejects
    latency = HistogramMetricFamily(
        "oms_order_latency_seconds",
        "Legs of an order's decision, by the events' clocks: entry (placed to risk's decision),"
        " durable (decision to written and visible), accept (the two: the SLO's figure)",
        labels=["leg"],
    )
    for leg, durations in feed.latency.items():
        latency.add_metric([leg], durations.cumulative(), durations.total_s)
    yield latency


def _kill_switch_metrics(
    global_state: TradingState, switched: Mapping[str, TradingState]
) -> Iterator[Metric]:
    switch = GaugeMetricFamily(
        "oms_kill_switch",
        "The global kill switch: 1 for the state it is in (ACTIVE, REDUCING or HALTED)",
        labels=["state"],
    )
    accounts = GaugeMetricFamily(
        "oms_kill_switch_accounts",
        "Accounts this replica holds whose own kill switch is REDUCING or HALTED",
        labels=["state"],
    )
    for state in TradingState:
        switch.add_metric([state.value], 1 if state is global_state else 0)
        if state is not TradingState.ACTIVE:
            accounts.add_metric([state.value], sum(1 for s in switched.values() if s is state))
    yield switch
    yield accounts


def _ready_metrics(checks: Mapping[str, bool]) -> Iterator[Metric]:
    ready = GaugeMetricFamily("oms_ready", "1 while /ready answers 200 (every check passes)")
    ready.add_metric([], 1 if all(checks.values()) else 0)
    yield ready
    each = GaugeMetricFamily(
        "oms_ready_check",
        "Each check of /ready: 1 passes (kafka, mongodb, redis, partitions, engine)",
        labels=["check"],
    )
    for name, ok in sorted(checks.items()):
        each.add_metric([name], 1 if ok else 0)
    yield each


def _pipeline_metrics(
    figures: Mapping[str, float | Durations | Labelled | LabelledDurations],
) -> Iterator[Metric]:
    for name, value in sorted(figures.items()):
        described = PIPELINE_HELP.get(name, name)
        counter = name.endswith("_total")
        family = f"oms_{name.removesuffix('_total')}" if counter else f"oms_{name}"
        if isinstance(value, LabelledDurations):
            histogram = HistogramMetricFamily(f"oms_{name}", described, labels=[value.label])
            for key, durations in value.values.items():
                histogram.add_metric([key], durations.cumulative(), durations.total_s)
            yield histogram
        elif isinstance(value, Durations):
            yield HistogramMetricFamily(
                f"oms_{name}", described, buckets=value.cumulative(), sum_value=value.total_s
            )
        elif isinstance(value, Labelled):
            labelled: CounterMetricFamily | GaugeMetricFamily = (
                CounterMetricFamily(family, described, labels=[value.label])
                if counter
                else GaugeMetricFamily(family, described, labels=[value.label])
            )
            for key, figure in sorted(value.values.items()):
                labelled.add_metric([key], figure)
            yield labelled
        elif counter:
            yield CounterMetricFamily(family, described, value=value)
        else:
            yield GaugeMetricFamily(family, described, value=value)


class ApiMetrics:
    """The app's registry and its instruments."""

    def __init__(self, sources: Sources, readiness: ReadyChecks | None = None) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "oms_http_request_duration_seconds",
            "HTTP request latency by route, method and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._scraped = _Scraped(sources)
        self.registry.register(self._scraped)
        self._readiness = readiness
        self._probed_at: float | None = None
        # (method, route, status) -> its histogram: ``labels()`` locks and builds a key each time.
        self._children: dict[tuple[str, str, int], Any] = {}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time every request but WebSockets (their duration is a session, not a latency)."""
        if request.path.startswith("/ws/"):
            return await handler(request)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            raise
        else:
            status = response.status
            return response
        finally:
            self.observe(request, status, time.perf_counter() - started)

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        """Count one answered request's latency by method, route and status (also called by
        ``oms.api.door``'s folded middleware)."""
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        slot = (request.method, name, status)
        child = self._children.get(slot)
        if child is None:
            child = self._children[slot] = self.latency.labels(request.method, name, str(status))
        child.observe(seconds)

    async def handle(self, _request: web.Request) -> web.Response:
        """``GET /metrics`` (readiness probed again when the last probe is old enough)."""
        readiness = self._readiness
        now = time.monotonic()
        if readiness is not None and (
            self._probed_at is None or now - self._probed_at >= READY_REFRESH_S
        ):
            self._probed_at = now
            self._scraped.ready = await readiness()
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


METRICS_KEY = web.AppKey("metrics", ApiMetrics)
