"""Credentials for tests: API keys made by the same code as ``oms keys create``.

Unit tests keep keys in memory (``MemoryKeyDirectory``); integration and e2e tests store them in
the run's MongoDB database with ``oms.store.api_keys.create_key``. Either way a test holds the
token and sends it as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from yarl import URL

from oms.api.credentials import Authenticator
from oms.config import Settings
from oms.domain.access import Role
from oms.store.api_keys import create_key, mint_key
from oms.store.memory import MemoryKeyDirectory, MemoryTicketStore


def bearer(token: str) -> dict[str, str]:
    """The header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}


class MemoryKeys:
    """An authenticator over keys in memory, and a way to make them."""

    def __init__(self, settings: Settings) -> None:
        self.directory = MemoryKeyDirectory()
        self.tickets = MemoryTicketStore()
        self.authenticator = Authenticator(settings, self.directory, self.tickets, None)

    def token(self, role: Role = Role.ADMIN, accounts: tuple[str, ...] = (), name: str = "") -> str:
        """A new key's token (stored as its digest, as ``oms keys create`` does)."""
        issued = mint_key(role, frozenset(accounts), name, time.time())
        self.directory.add(issued.record)
        return issued.key

    def headers(self, role: Role = Role.ADMIN, accounts: tuple[str, ...] = ()) -> dict[str, str]:
        """``Authorization`` for a new key."""
        return bearer(self.token(role, accounts))


# Where each real ``oms serve`` a test started answers, and an admin token of its database:
# ``authenticated_session`` sends it to that address (``start_replica`` and the fault harness
# fill it in). A request that sets its own Authorization keeps it.
_TOKENS: dict[str, str] = {}


def _origin(url: URL) -> str:
    return f"{url.scheme}://{url.host}:{url.port}"


def register_server(base: str, token: str) -> None:
    """Send ``token`` to the server at ``base`` (``http://127.0.0.1:<port>``) from now on."""
    _TOKENS[_origin(URL(base))] = token


async def _authorize(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    if "Authorization" not in request.headers:
        token = _TOKENS.get(_origin(request.url))
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
    return await handler(request)


def authenticated_session(**kwargs: Any) -> aiohttp.ClientSession:
    """An HTTP client that presents each registered server's admin token to it."""
    return aiohttp.ClientSession(middlewares=(_authorize,), **kwargs)


def admin_for(base: str, settings: Settings) -> str:
    """Make an admin key in ``settings``' database and send it to the server at ``base``."""
    token = create_key(settings, Role.ADMIN, name="tests").key
    register_server(base, token)
    return token
