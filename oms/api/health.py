"""Liveness and readiness: ``/health`` answers while the process runs, ``/ready`` when it can work."""

from __future__ import annotations

import orjson
from aiohttp import web

from oms.config import Settings
from oms.probes import probe_all

SETTINGS_KEY = web.AppKey("settings", Settings)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def health(_request: web.Request) -> web.Response:
    """Liveness: the process is up and its event loop turns."""
    return _json({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: Kafka, MongoDB and Redis each answer a real request."""
    checks = await probe_all(request.app[SETTINGS_KEY])
    ok = all(checks.values())
    return _json({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)


def add_health_routes(app: web.Application) -> None:
    """Mount /health and /ready."""
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
