"""Build the aiohttp application for ``oms serve``."""

from __future__ import annotations

from aiohttp import web

from oms.api.health import SETTINGS_KEY, add_health_routes
from oms.config import Settings

MAX_BODY_BYTES = 64 * 1024  # an order is a few hundred bytes; anything far bigger is refused


def build_app(settings: Settings) -> web.Application:
    """The HTTP application with every route mounted."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    add_health_routes(app)
    return app
