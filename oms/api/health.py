"""Liveness and readiness: ``/health`` answers while the process runs, ``/ready`` when it can work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import web

from oms.config import Settings
from oms.probes import probe_all

SETTINGS_KEY = web.AppKey("settings", Settings)


@dataclass(frozen=True, slots=True)
class Readiness:
    """What ``/ready`` asks: the servers (probe) and, when the service hands it in, whether
    this replica's consumer has its partitions assigned."""

    probe: Callable[[], Awaitable[dict[str, bool]]]
    partitions_assigned: Callable[[], bool] | None = None


READINESS_KEY = web.AppKey("readiness", Readiness)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def health(_request: web.Request) -> web.Response:
    """Liveness: the process is up and its event loop turns."""
    return _json({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: Kafka, MongoDB and Redis each answer a real request; partitions assigned."""
    readiness = request.app.get(READINESS_KEY)
    if readiness is None:
        checks = await probe_all(request.app[SETTINGS_KEY])
    else:
        checks = dict(await readiness.probe())
        if readiness.partitions_assigned is not None:
            checks["partitions"] = bool(readiness.partitions_assigned())
    ok = all(checks.values())
    return _json({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)


def add_health_routes(app: web.Application) -> None:
    """Mount /health and /ready."""
    app.router.add_get("/health", health, allow_head=False)
    app.router.add_get("/ready", ready, allow_head=False)
