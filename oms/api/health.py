"""Liveness and readiness: ``/health`` answers 200 while the process can be trusted (its loop
turns, its engine has not failed and makes progress), ``/ready`` when it can work."""

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
    # Why the process can no longer be trusted (the engine failed or its thread is stuck), or
    # None: both probes answer 503 then, so the orchestrator stops routing to it and restarts it.
    trouble: Callable[[], str | None] | None = None


READINESS_KEY = web.AppKey("readiness", Readiness)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def health(request: web.Request) -> web.Response:
    """Liveness: the event loop turns, and the engine is sound and its thread makes progress."""
    readiness = request.app.get(READINESS_KEY)
    trouble = None if readiness is None or readiness.trouble is None else readiness.trouble()
    if trouble is not None:
        return _json({"status": "failed", "reason": trouble}, 503)
    return _json({"status": "ok"})


async def readiness_checks(app: web.Application) -> dict[str, bool]:
    """What ``/ready`` answers, check by check (``/metrics`` shows it too)."""
    readiness = app.get(READINESS_KEY)
    if readiness is None:
        return await probe_all(app[SETTINGS_KEY])
    checks = dict(await readiness.probe())
    if readiness.partitions_assigned is not None:
        checks["partitions"] = bool(readiness.partitions_assigned())
    if readiness.trouble is not None:
        checks["engine"] = readiness.trouble() is None
    return checks


async def ready(request: web.Request) -> web.Response:
    """Readiness: Kafka, MongoDB and Redis each answer a real request; partitions assigned."""
    checks = await readiness_checks(request.app)
    ok = all(checks.values())
    return _json({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)


def add_health_routes(app: web.Application) -> None:
    """Mount /health and /ready."""
    app.router.add_get("/health", health, allow_head=False)
    app.router.add_get("/ready", ready, allow_head=False)
