"""The HTTP listener's bounds on slow clients and on how many connect at once.

aiohttp 3.14 has no setting named for either, so each bound is built from what it does offer:

- **Request head** (``http_header_timeout_s``): aiohttp's keep-alive timer starts when a
  connection opens and again after each answer, and when it fires it closes a connection still
  waiting for a complete request head; bytes arriving meanwhile do not postpone it. So the
  runner's ``keepalive_timeout`` is the head's deadline: half a request line, or headers
  trickled a byte at a time, are cut off at the bound (an idle keep-alive connection too).
  Without it a client held a connection for aiohttp's default of an hour.
- **Request body** (``http_body_timeout_s``): a middleware reads the body within the bound
  before any handler runs (handlers then read it from memory) and answers 408, closing the
  connection, when it does not arrive in time.
- **Connections** (``http_max_connections``): ``CappedSite`` answers a connection beyond the
  cap with a 503 problem and closes it, before aiohttp spends anything on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from oms.api.problems import PROBLEM_CONTENT_TYPE, Problem
from oms.config import Settings

# After an early answer (408, 413) aiohttp reads and drops what the client still sends, so that
# the client sees the answer rather than a reset, for this long before closing: its default of
# 10 s would add as much to every slow body.
LINGER_S = 2.0
RETRY_AFTER_S = 1


def body_deadline(seconds: float) -> Middleware:
    """A middleware that reads a request's body within ``seconds``, else answers 408 and closes."""

    @web.middleware
    async def read_body_in_time(request: web.Request, handler: Handler) -> web.StreamResponse:
        # A small body usually arrives with its headers: already whole, it needs no timer (one
        # fewer timer scheduled and cancelled per POST: ~1% of the service's CPU under load).
        if request.body_exists and not request.content.is_eof():
            try:
                async with asyncio.timeout(seconds):
                    await request.read()  # kept by the request: the handler's read is free
            except TimeoutError:
                response = Problem(
                    408,
                    "REQUEST_TIMEOUT",
                    "Request timeout",
                    f"the request body did not arrive within {seconds:g}s",
                ).response()
                response.force_close()
                return response
        return await handler(request)

    return read_body_in_time


def _busy_answer() -> bytes:
    body = orjson.dumps(
        Problem(
            503,
            "TOO_MANY_CONNECTIONS",
            "Too many connections",
            "the server holds as many connections as it takes; retry shortly",
        ).body()
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {RETRY_AFTER_S}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


_BUSY = _busy_answer()


class _Busy(asyncio.Protocol):
    """A connection over the cap: the 503 problem, then closed (asyncio sends what it holds)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.close()


class CappedSite(web.BaseSite):
    """aiohttp's ``TCPSite`` with a cap on the connections open at once."""

    __slots__ = ("_cap", "_host", "_port", "_reuse_port", "refused")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int,
        reuse_port: bool = False,
    ) -> None:
        """Listen on ``host:port`` (0: any free port) once started; ``reuse_port``: beside the
        other door processes on the same port (SO_REUSEPORT: the kernel spreads connections)."""
        super().__init__(runner)
        self._host = host
        self._port = port
        self._cap = max_connections
        self._reuse_port = reuse_port
        self.refused = 0  # connections answered 503 for the cap, for /metrics

    @property
    def name(self) -> str:
        """The URL it serves."""
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The port it listens on (the one bound, once started)."""
        server = self._server
        if isinstance(server, asyncio.Server) and server.sockets:
            return int(server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        """Listen; each connection beyond the cap gets ``_Busy`` instead of a request handler."""
        await super().start()
        server = self._runner.server
        assert server is not None  # the runner was set up

        def protocol() -> Any:
            if len(server.connections) >= self._cap:
                self.refused += 1
                return _Busy()
            return server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            protocol,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )


async def start_listener(
    app: web.Application, settings: Settings, *, reuse_port: bool = False
) -> tuple[web.AppRunner, CappedSite]:
    """Serve ``app`` on ``settings``' address with the bounds above; stop with
    ``runner.cleanup()``. ``reuse_port``: a door process, sharing the port with the others."""
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=settings.http_header_timeout_s,
        lingering_time=min(LINGER_S, settings.http_body_timeout_s),
    )
    await runner.setup()
    site = CappedSite(
        runner,
        settings.http_host,
        settings.http_port,
        max_connections=settings.http_max_connections,
        reuse_port=reuse_port,
    )
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site
