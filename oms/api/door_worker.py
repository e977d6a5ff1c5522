"""A door process's HTTP application (``OMS_HTTP_WORKERS``): the public port without the engine.

With ``OMS_HTTP_WORKERS=N`` (N >= 1) ``oms serve`` runs N door processes beside its engine
process, all bound to the public port with ``SO_REUSEPORT`` (``oms.doors``). A door mounts the
very routes and middlewares of ``build_app`` (auth, rate limits in Redis, access log, metrics,
the web app's files), so every refusal it makes is the answer the engine's process would give,
and does one thing itself: ``POST /api/orders`` (validate, claim in Redis, produce to
``orders``, cache the NEW order, 202), which is where REST spends its CPU. Everything else needs
the engine's memory and is relayed, with the caller the door resolved signed under the pod's
door token (``X-OMS-Door``), to its engine process's internal port; the engine answers it as it
would have on the public port (and forwards an account's read to its owner replica, one hop on).

A placement is relayed too (``route_of``) when the door cannot check it exactly: a network
venue (the engine's instruments come from the exchange), a stop order (its side is checked
against the engine's last price), a MARKET order on a symbol whose feed the engine last said
was stale or when the door has not heard from the engine lately, and a request whose
idempotency key or client order id an earlier request holds (the first order's answer is the
engine's: ``FirstAnswer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from oms import correlation
from oms.api import identity
from oms.api.access import DOOR_VIEW_PATH, REQUEST_ID_KEY, add_access
from oms.api.app import MAX_BODY_BYTES, middleware_stack
from oms.api.credentials import AUTHENTICATOR_KEY, Authenticator
from oms.api.forwarding import relay_socket_messages
from oms.api.health import SETTINGS_KEY
from oms.api.identity import CREDENTIALS_KEY, DOOR_HEADER, DOOR_HOP_KEY, ROUTE_ACTIONS
from oms.api.internal_hop import HopSigner
from oms.api.metrics import METRICS_KEY, ApiMetrics, LabelledDurations, Sources
from oms.api.order_request import OrderRequest
from oms.api.orders import parse_placement, place
from oms.api.outages import OUTAGES_KEY, Dependency, Outages
from oms.api.problems import DependencyUnavailable
from oms.api.rate_limits import RATE_LIMITER_KEY, RateLimiter, counts_itself, settle
from oms.api.services import OrderEntry
from oms.config import Settings
from oms.domain.enums import OrderType
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument
from oms.engine import Engine
from oms.engine.ports import IdempotencyStore, OrderCache
from oms.legs import Legs
from oms.stream.bus import CommandBus

logger = logging.getLogger(__name__)

# The routes ``build_app`` mounts besides ROUTE_ACTIONS' (open ones, no credential needed); a
# unit test checks that a door mounts exactly the routes of the engine's app.
OPEN_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/api/openapi.json"),
)
PLACE_ROUTE = ("POST", "/api/orders")
VIEW_PATH = DOOR_VIEW_PATH  # the engine process's market view for its doors (not logged)
VIEW_POLL_S = 0.5
# A door that has not heard the engine's view for this long relays MARKET orders (the engine
# checks their feed itself), rather than trust a view that may have gone stale.
VIEW_MAX_AGE_S = 3.0
# The answer's headers aiohttp sets again for the client (the rest pass back as they are).
_NOT_PASSED_BACK = frozenset(
    h.lower()
    for h in (
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "Date",
        "Server",
        "Content-Encoding",
        correlation.HTTP_HEADER,
    )
)
_PASSED_ON = ("Content-Type", "Accept", "Idempotency-Key")


class Route(StrEnum):
    """Where a placement is answered."""

    DOOR = "door"  # checked, claimed, sent and cached here
    ENGINE = "engine"  # relayed to the engine process


@dataclass(slots=True)
class EngineView:
    """What a door knows of its engine's market: which symbols' feeds are stale, and when it
    last heard (monotonic; 0: never). ``instruments`` are the listed ones (simulated venue)."""

    instruments: Mapping[str, Instrument]
    stale: frozenset[str] = frozenset()
    heard_at: float = 0.0
    monotonic: Callable[[], float] = field(default=time.monotonic)

    def fresh(self) -> bool:
        """True when the engine's view is recent enough to check a MARKET order against."""
        return self.heard_at > 0 and self.monotonic() - self.heard_at <= VIEW_MAX_AGE_S

    def last_price(self, _symbol: str) -> Decimal | None:
        """Never asked: a stop order is relayed (``route_of``), so nothing here checks one."""
        return None

    def market_data_stale(self, symbol: str) -> bool:
        """Whether the engine last said ``symbol``'s feed had stopped."""
        return symbol in self.stale


def parses_here(settings: Settings) -> bool:
    """Whether a door checks an order's body itself: only against the simulated venue's
    instruments (a network venue's come from the exchange, which only the engine asked)."""
    return settings.venue == "simulated"


def route_of(settings: Settings, order: OrderRequest, view: EngineView) -> Route:
    """Where a placement is answered: here when the door checks it exactly as the engine's
    process would, else there."""
    if not parses_here(settings):
        return Route.ENGINE
    if order.stop_price is not None:  # its side is checked against the engine's last price
        return Route.ENGINE
    if order.type is OrderType.MARKET and (
        not view.fresh() or view.market_data_stale(order.symbol)
    ):
        return Route.ENGINE  # the engine answers 422 MARKET_DATA_STALE (or takes it) itself
    return Route.DOOR


def listed_instruments(settings: Settings) -> dict[str, Instrument]:
    """The simulated venue's instruments, as the engine lists them (``EngineCore``)."""
    return {i.symbol: i for i in DEFAULT_INSTRUMENTS if i.symbol in settings.symbols}


@dataclass(slots=True)
class DoorServices(OrderEntry):
    """What a door places orders with: the same claims, send and cache as the engine's
    process (``OrderEntry``), on the door's own clients."""

    settings: Settings
    bus: CommandBus
    idempotency: IdempotencyStore
    cache: OrderCache
    clock: Callable[[], float] = field(default=time.time)
    outages: Outages = field(default_factory=Outages)
    legs: Legs = field(default_factory=Legs)


class EngineHop:
    """Relays a request to the engine process's internal port with its caller signed."""

    def __init__(self, settings: Settings, signer: HopSigner) -> None:
        """``signer``: the pod's door token (``DOOR_HEADER``)."""
        self.settings = settings
        self.signer = signer
        self.base = settings.engine_url()
        # The engine may itself wait on its dependencies and on an owner replica.
        self.timeout_s = settings.dependency_timeout_s + settings.forward_timeout_s + 1.0
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The one client session to the engine (made on first use, on the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=self.timeout_s),
                connector=aiohttp.TCPConnector(limit=0),
            )
        return self._session

    async def close(self) -> None:
        """Close the session (the app's cleanup)."""
        if self._session is not None:
            await self._session.close()

    def headers(self, request: web.Request, body: bytes) -> dict[str, str]:
        """The relayed request's headers: the caller signed (open paths have none), its id."""
        headers = {h: request.headers[h] for h in _PASSED_ON if h in request.headers}
        request_id = request.get(REQUEST_ID_KEY)
        if request_id is not None:
            headers[correlation.HTTP_HEADER] = request_id
        who = identity.known_caller(request)
        if who is not None:
            headers[DOOR_HEADER] = self.signer.sign(who, request.method, request.path_qs, body)
        return headers

    def _unavailable(self, error: BaseException) -> DependencyUnavailable:
        logger.warning("the engine process did not answer: %r", error)
        retry_after_s = self.settings.retry_after_s
        return DependencyUnavailable(Dependency.ENGINE, retry_after_s, "engine unavailable")

    async def relay(self, request: web.Request) -> web.StreamResponse:
        """The engine process's answer to ``request`` (503 naming the engine if none)."""
        if request.path.startswith("/ws/"):
            return await self.relay_socket(request)
        body = await request.read()
        url = URL(self.base + request.path_qs, encoded=True)  # signed as sent
        try:
            async with self.session().request(
                request.method,
                url,
                data=body or None,
                headers=self.headers(request, body),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as answer:
                payload = await answer.read()
                passed = {
                    k: v for k, v in answer.headers.items() if k.lower() not in _NOT_PASSED_BACK
                }
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self._unavailable(error) from None
        return web.Response(body=payload, status=status, headers=passed)

    async def relay_socket(self, request: web.Request) -> web.StreamResponse:
        """The engine's WebSocket relayed to the client; opened first, so an engine that
        refuses (401, 403, 404 problem) is that answer on the client's handshake."""
        headers = self.headers(request, b"")
        url = URL(self.base + request.path_qs, encoded=True)
        try:
            upstream = await self.session().ws_connect(url, headers=headers, heartbeat=30.0)
        except aiohttp.WSServerHandshakeError as refused:
            # Refused (401, 403, 503 ...): the client gets the engine's problem+json, asked
            # again without the upgrade (the checks run before the handshake there).
            return await self.relay_plain(request, refused.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self._unavailable(error) from None
        ws = web.WebSocketResponse(heartbeat=30.0)
        try:
            await ws.prepare(request)
            await relay_socket_messages(upstream, ws)
        finally:
            await upstream.close()
            await ws.close()
        return ws

    async def relay_plain(self, request: web.Request, expected: int) -> web.Response:
        """The engine's answer to ``request`` without the upgrade (its refusal, ``expected``)."""
        url = URL(self.base + request.path_qs, encoded=True)
        headers = self.headers(request, b"")
        try:
            async with self.session().get(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            ) as answer:
                payload = await answer.read()
                passed = {
                    k: v for k, v in answer.headers.items() if k.lower() not in _NOT_PASSED_BACK
                }
                status = answer.status if answer.status >= 400 else expected
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self._unavailable(error) from None
        return web.Response(body=payload, status=status, headers=passed)


class ViewPoller:
    """Keeps the door's ``EngineView`` fresh: asks the engine process every ``VIEW_POLL_S``."""

    def __init__(self, hop: EngineHop, view: EngineView) -> None:
        """Poll ``hop``'s engine into ``view``."""
        self.hop = hop
        self.view = view
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> None:
        """One look at the engine's view (a failure leaves the old one to age)."""
        url = self.hop.base + VIEW_PATH
        timeout = aiohttp.ClientTimeout(total=VIEW_MAX_AGE_S)
        try:
            async with self.hop.session().get(url, timeout=timeout) as answer:
                if answer.status != 200:
                    return
                payload = orjson.loads(await answer.read())
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
            return
        self.view.stale = frozenset(str(s) for s in payload.get("stale", ()))
        self.view.heard_at = self.view.monotonic()

    async def _run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(VIEW_POLL_S)

    async def start(self, _app: web.Application) -> None:
        """Start polling (the app's startup)."""
        self._task = asyncio.create_task(self._run(), name="oms-door-view")

    async def stop(self, _app: web.Application) -> None:
        """Stop polling (the app's cleanup)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def door_metrics(settings: Settings, legs: Legs) -> ApiMetrics:
    """A door's own figures: its requests, its ``post`` leg, named ``<replica>-door-<i>``."""
    sources = Sources(
        orders=lambda: None,
        pipeline=lambda: {"order_leg_seconds": LabelledDurations("leg", legs.durations)},
        replica=f"{settings.replica_name()}-door-{settings.door_index}",
    )
    return ApiMetrics(sources)


def build_door_app(
    settings: Settings,
    services: DoorServices,
    authenticator: Authenticator,
    rate_limiter: RateLimiter,
    metrics: ApiMetrics,
) -> web.Application:
    """A door's application: ``build_app``'s routes and middlewares, placing orders itself."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=middleware_stack(settings, metrics)
    )
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = metrics
    app[OUTAGES_KEY] = services.outages
    app[CREDENTIALS_KEY] = authenticator
    app[AUTHENTICATOR_KEY] = authenticator
    app[RATE_LIMITER_KEY] = rate_limiter
    add_access(app)
    hop = EngineHop(settings, HopSigner(settings.door_token, header=DOOR_HEADER))
    view = EngineView(listed_instruments(settings))
    poller = ViewPoller(hop, view)

    @counts_itself  # counted here (the engine does not count what a door relays), once
    async def place_order(request: web.Request) -> web.StreamResponse:
        if not parses_here(settings):
            await settle(request)
            return await hop.relay(request)  # not parsed: the door lacks the exchange's rules
        order_request = await parse_placement(request, view.instruments, services.clock)
        if route_of(settings, order_request, view) is Route.ENGINE:
            await settle(request)
            return await hop.relay(request)

        async def first_answer(_order: OrderRequest, _holder: str, _at: float) -> web.Response:
            response = await hop.relay(request)
            assert isinstance(response, web.Response)  # not a socket: a POST
            return response

        return await place(request, order_request, services, view, first_answer)

    for method, path in (*ROUTE_ACTIONS, *OPEN_ROUTES):
        handler = place_order if (method, path) == PLACE_ROUTE else hop.relay
        app.router.add_route(method, path, handler)
    app.on_startup.append(poller.start)
    app.on_cleanup.append(poller.stop)

    async def close(_app: web.Application) -> None:
        await hop.close()

    app.on_cleanup.append(close)
    return app


def metrics_app(metrics: ApiMetrics) -> web.Application:
    """The door's own ``/metrics``, on its own port (``door_metrics_port_of``)."""
    app = web.Application()
    app.router.add_get("/metrics", metrics.handle, allow_head=False)
    return app


def with_door_side(app: web.Application, settings: Settings, engine: Engine) -> web.Application:
    """The engine process's half (``build_app``, with ``OMS_HTTP_WORKERS``): trust its doors'
    hop, and tell them which symbols' feeds are stale. Nothing without doors."""
    if not settings.http_workers:
        return app
    app[DOOR_HOP_KEY] = HopSigner(settings.door_token, header=DOOR_HEADER)

    async def door_view(_request: web.Request) -> web.Response:
        stale = [symbol for symbol in engine.instruments if engine.market_data_stale(symbol)]
        return web.Response(body=orjson.dumps({"stale": stale}), content_type="application/json")

    app.router.add_get(VIEW_PATH, door_view, allow_head=False)
    return app
