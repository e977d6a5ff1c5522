"""Every request's id and its access-log line.

The request id is the caller's ``X-Request-ID`` when it is a sane one (``oms.correlation``),
else a new one; it is echoed in the answer's ``X-Request-ID`` (WebSocket upgrades and problem
answers included), set in the logging context for every line written while the request is
handled, and the routes put it on the commands they send (``oms.correlation.get``).

One line per request goes to the ``oms.access`` logger once it is answered: method, path (never
the query: it may name accounts), status, duration and the caller's key id when there is one.
Never a header's value: an ``Authorization`` header carries the key itself.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from oms import correlation
from oms.api import identity
from oms.logs import ACCESS_LOGGER

access_log = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID_KEY = web.RequestKey("request_id", str)  # where a request keeps its id


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Name the request, handle it inside its logging context, then log one line for it.

    The outermost middleware: the status it logs is the one the client got, problem answers
    included. The context is reset afterwards, so the next request on a kept-alive connection
    starts clean.
    """
    request_id = begin(request)
    started = time.perf_counter()
    status = 500
    with correlation.request(request_id):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            raise
        else:
            status = response.status
            return response
        finally:
            if access_log.isEnabledFor(logging.INFO):
                log_access(request, status, time.perf_counter() - started)


def begin(request: web.Request) -> str:
    """Name the request (its id kept on it for the answer's header): the caller's sane id or a
    new one."""
    request_id = correlation.from_caller(request.headers.get(correlation.HTTP_HEADER))
    request[REQUEST_ID_KEY] = request_id
    return request_id


# The engine process's market view, polled by its door processes (``oms.api.door_worker``)
# several times a second: an access line each would drown the log.
DOOR_VIEW_PATH = "/internal/door-view"


def log_access(request: web.Request, status: int, seconds: float) -> None:
    if request.path == DOOR_VIEW_PATH:
        return
    duration_ms = round(seconds * 1000, 3)
    who = identity.known_caller(request)
    access_log.info(
        "%s %s %d %.1fms",
        request.method, request.path, status, duration_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": duration_ms,
            "key_id": None if who is None else who.key_id,
            "subject": None if who is None else who.subject,
        },
    )  # fmt: skip


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the answer names the request, whatever produced it (a route, a
    problem, a WebSocket upgrade), just before its headers go out."""
    request_id = request.get(REQUEST_ID_KEY)
    if request_id is not None:
        response.headers[correlation.HTTP_HEADER] = request_id


def add_access(app: web.Application) -> None:
    """Echo the request id on every answer (the middleware is mounted by ``build_app``)."""
    app.on_response_prepare.append(echo_request_id)
