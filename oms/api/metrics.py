"""``/metrics`` in Prometheus text: orders by status, request latency, consumer lag, and the
counters of the pipeline behind the API (store, ingestion, event sink).

Each application has its own registry (several apps in one test process must not clash).
Orders by status and consumer lag are read at scrape time from what the app is handed, so the
hot paths do no metric work beyond one histogram observation per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from oms.api.live import OrderFeed
from oms.api.services import ConsumerLag
from oms.durations import Durations

Pipeline = Callable[[], Mapping[str, float | Durations]]

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
    "dead_letters_total": "Records put on a dead-letter topic",
    "events_published_total": "Order and risk event records acknowledged by Kafka",
    "events_failed_total": "Order and risk event records Kafka did not take",
    "http_connections_refused_total": "Connections answered 503 because the listener was full",
    "recovery_skipped_records": (
        "Distinct stored accounts and orders start-up or recovery left out (a reserved or"
        " malformed id, an unreadable document, an opening the engine refused): see the log"
    ),
    "store_write_duration_seconds": (
        "Time to write one drained batch of order documents to MongoDB (its insert_many calls,"
        " retries included): events are published only after it"
    ),
}

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Scraped(Collector):
    """Gauges computed when Prometheus scrapes."""

    def __init__(
        self,
        orders: Callable[[], OrderFeed | None],
        lag: ConsumerLag | None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self._orders = orders
        self._lag = lag
        self._pipeline = pipeline

    def collect(
        self,
    ) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        """Orders by status, and the consumer group's lag per topic and partition."""
        feed = self._orders()
        if feed is not None:
            orders = GaugeMetricFamily(
                "oms_orders",
                "Orders by status: open ones now, ended ones since the process started",
                labels=["status"],
            )
            for status, count in feed.counts().items():
                orders.add_metric([status.value], count)
            yield orders
        if self._lag is not None:
            lag = GaugeMetricFamily(
                "oms_consumer_lag",
                "Messages behind, per topic and partition",
                labels=["topic", "partition"],
            )
            for (topic, partition), behind in sorted(self._lag().items()):
                lag.add_metric([topic, str(partition)], behind)
            yield lag
        if self._pipeline is not None:
            yield from _pipeline_metrics(self._pipeline())


def _pipeline_metrics(
    figures: Mapping[str, float | Durations],
) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
    for name, value in sorted(figures.items()):
        described = PIPELINE_HELP.get(name, name)
        if isinstance(value, Durations):
            yield HistogramMetricFamily(
                f"oms_{name}", described, buckets=value.cumulative(), sum_value=value.total_s
            )
        elif name.endswith("_total"):
            yield CounterMetricFamily(f"oms_{name.removesuffix('_total')}", described, value=value)
        else:
            yield GaugeMetricFamily(f"oms_{name}", described, value=value)


class ApiMetrics:
    """The app's registry and its instruments."""

    def __init__(
        self,
        orders: Callable[[], OrderFeed | None],
        lag: ConsumerLag | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "oms_http_request_duration_seconds",
            "HTTP request latency by route, method and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Scraped(orders, lag, pipeline))
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
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            slot = (request.method, name, status)
            child = self._children.get(slot)
            if child is None:
                child = self._children[slot] = self.latency.labels(
                    request.method, name, str(status)
                )
            child.observe(time.perf_counter() - started)

    async def handle(self, _request: web.Request) -> web.Response:
        """``GET /metrics``."""
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


METRICS_KEY = web.AppKey("metrics", ApiMetrics)
