"""Build the aiohttp application for ``oms serve``.

``build_app(settings)`` alone serves the operations routes (health, readiness, metrics, the
OpenAPI document); handed an engine, a command bus and the order-entry stores, it serves the
whole contract of the design.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from oms.api.access import access_middleware, add_access
from oms.api.accounts import add_account_routes
from oms.api.audit import AuditLog, add_audit_routes
from oms.api.cluster import add_cluster_routes
from oms.api.credentials import AUTHENTICATOR_KEY, Authenticator, whoami, ws_ticket
from oms.api.door import folded_middlewares
from oms.api.forwarding import add_forwarding, with_forwarding
from oms.api.global_limits import add_global_limit_routes
from oms.api.health import (
    READINESS_KEY,
    SETTINGS_KEY,
    Readiness,
    add_health_routes,
    readiness_checks,
)
from oms.api.identity import CREDENTIALS_KEY, auth_middleware
from oms.api.listener import body_deadline
from oms.api.live import ORDER_FEED_KEY, OrderFeed, ws_orders
from oms.api.market import MARKET_FEED_KEY, MarketFeed, add_market_routes
from oms.api.metrics import METRICS_KEY, ApiMetrics, Pipeline, Sources
from oms.api.openapi import get_openapi
from oms.api.orders import add_order_routes
from oms.api.outages import OUTAGES_KEY, Outages, failed_dependency
from oms.api.problems import DependencyUnavailable, Problem, internal_error, problem_middleware
from oms.api.rate_limits import RATE_LIMITER_KEY, RateLimiter, rate_limit_middleware
from oms.api.services import SERVICES_KEY, ApiServices, ConsumerLag, ReadyProbe
from oms.api.venue import add_venue_routes
from oms.api.webapp import web_app_middleware
from oms.config import Settings
from oms.engine import Engine
from oms.engine.owners import OwnerMap
from oms.engine.ports import AccountRepository, GlobalLimitStore, IdempotencyStore, OrderCache
from oms.engine.reconciliation import Reconciliation
from oms.legs import Legs
from oms.probes import probe_all
from oms.stream.bus import CommandBus, RiskEventSink

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # an order is a few hundred bytes; anything far bigger is refused


@web.middleware
async def _unexpected_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A bug answers a 500 problem (logged), never an HTML page or a dropped connection.

    An error that says Redis, Kafka or MongoDB cannot be reached is no bug: wherever a route
    met it unguarded, it answers 503 with ``Retry-After`` and counts towards that dependency's
    outage (logged once, not per request).
    """
    try:
        return await handler(request)
    except (web.HTTPException, Problem):
        raise
    except Exception as exc:
        dependency = failed_dependency(exc)
        if dependency is None:
            logger.exception("unexpected error in %s %s", request.method, request.path)
            return internal_error().response()
        request.app[OUTAGES_KEY].failed(dependency, exc)
        retry_after_s = request.app[SETTINGS_KEY].retry_after_s
        return DependencyUnavailable(
            dependency, retry_after_s, f"{dependency} unavailable"
        ).response()


def build_app(
    settings: Settings,
    engine: Engine | None = None,
    bus: CommandBus | None = None,
    idempotency: IdempotencyStore | None = None,
    cache: OrderCache | None = None,
    *,
    partitions_assigned: Callable[[], bool] | None = None,
    consumer_lag: ConsumerLag | None = None,
    pipeline: Pipeline | None = None,
    ready_probe: ReadyProbe | None = None,
    clock: Callable[[], float] = time.time,
    market_poll_s: float | None = 0.25,
    accounts: AccountRepository | None = None,
    risk_events: RiskEventSink | None = None,
    authenticator: Authenticator | None = None,
    rate_limiter: RateLimiter | None = None,
    audit_log: AuditLog | None = None,
    legs: Legs | None = None,
    owners: OwnerMap | None = None,
    owned: Callable[[], frozenset[int] | None] | None = None,
    global_limits: GlobalLimitStore | None = None,
    reconciliation: Reconciliation | None = None,
) -> web.Application:
    """The HTTP application with every route mounted.

    ``engine`` must be started by the caller (and stopped after the app); the app only
    subscribes to its journal while it runs. ``partitions_assigned`` and ``consumer_lag`` come
    from the stream layer, ``pipeline`` (figures for ``/metrics``) from the service; ``ready_probe`` defaults to probing Kafka, MongoDB and Redis.
    ``authenticator`` resolves callers (``oms.api.identity``); without it every guarded path
    answers 401. ``rate_limiter`` counts their requests (none: no limits); ``audit_log`` keeps
    who changed accounts, limits and kill switches (``oms.api.audit``). ``legs`` is where the
    door and the order feed time their legs of an order (``oms.legs``; the service shares it
    with the ingestion, the store and the event sink). ``owners`` (the owner map) and ``owned``
    (the partitions this replica owns now) make account reads the owner's
    (``oms.api.forwarding``); without them this replica answers for every account.
    ``reconciliation`` is what reconciliation found (``oms.api.venue``; none: nothing
    reconciles here).
    """
    feed_holder: list[OrderFeed] = []
    sources = Sources(
        orders=lambda: feed_holder[0] if feed_holder else None,
        lag=consumer_lag,
        pipeline=with_forwarding(pipeline, lambda: app),
        kill_switches=None if engine is None else engine.kill_switches,
        replica=settings.replica_name(),
    )
    # /metrics shows readiness as /ready answers it (``app`` is bound below, before any request).
    metrics = ApiMetrics(sources, readiness=lambda: readiness_checks(app))
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=middleware_stack(settings, metrics)
    )
    outages = Outages()
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = metrics
    app[OUTAGES_KEY] = outages
    app[READINESS_KEY] = Readiness(
        ready_probe or (lambda: probe_all(settings)),
        partitions_assigned,
        None if engine is None else engine.trouble,
    )
    if authenticator is not None:
        app[CREDENTIALS_KEY] = authenticator
        app[AUTHENTICATOR_KEY] = authenticator
    if rate_limiter is not None:
        app[RATE_LIMITER_KEY] = rate_limiter
    add_access(app)
    add_forwarding(app, settings, owners, owned)
    add_health_routes(app)
    app.router.add_get("/metrics", metrics.handle, allow_head=False)
    app.router.add_get("/api/openapi.json", get_openapi, allow_head=False)
    if engine is None:
        return app
    if (
        bus is None
        or idempotency is None
        or cache is None
        or accounts is None
        or risk_events is None
        or authenticator is None
        or audit_log is None
    ):
        raise ValueError(
            "an app with an engine needs its bus, idempotency store, cache, accounts, "
            "risk event sink, authenticator and audit log"
        )
    app[SERVICES_KEY] = ApiServices(
        settings,
        engine,
        bus,
        idempotency,
        cache,
        accounts,
        risk_events,
        clock,
        outages,
        legs or Legs(),
        global_limits,
    )
    order_feed = OrderFeed(engine, app[SERVICES_KEY].legs)
    feed_holder.append(order_feed)
    market_feed = MarketFeed(engine, market_poll_s)
    app[ORDER_FEED_KEY] = order_feed
    app[MARKET_FEED_KEY] = market_feed
    add_order_routes(app)
    add_account_routes(app)
    add_global_limit_routes(app)
    add_market_routes(app)
    add_audit_routes(app, audit_log)
    add_venue_routes(app, reconciliation)
    app.router.add_get("/ws/orders", ws_orders, allow_head=False)
    app.router.add_post("/api/ws-ticket", ws_ticket)
    app.router.add_get("/api/me", whoami, allow_head=False)
    add_cluster_routes(app)

    async def start_feeds(_app: web.Application) -> None:
        await order_feed.start()
        await market_feed.start()

    async def stop_feeds(_app: web.Application) -> None:
        await market_feed.stop()
        await order_feed.stop()

    app.on_startup.append(start_feeds)
    app.on_shutdown.append(stop_feeds)
    return app


def middleware_stack(settings: Settings, metrics: ApiMetrics) -> list[Middleware]:
    """The door's middleware stack, outermost first (``OMS_HTTP_MIDDLEWARE`` picks the frames)."""
    middle = [
        problem_middleware,
        web_app_middleware(settings),  # the web app's files, where no API route matched
        body_deadline(settings.http_body_timeout_s),
        _unexpected_middleware,  # around the caller's resolution: MongoDB/Redis down is a 503
    ]
    if settings.http_middleware == "folded":  # the same four, in two frames (oms.api.door)
        outer, inner = folded_middlewares(metrics)
        return [outer, *middle, inner]
    return [
        access_middleware,  # outermost: it names the request and logs what was answered
        metrics.middleware,
        *middle,
        auth_middleware,  # every /api and /ws route runs with a known caller
        rate_limit_middleware,  # innermost: counts a known caller's requests (429 past)
    ]
