"""Credentials to callers: API keys (with a bounded cache), JWTs, and WebSocket tickets.

An API key ``oms_<key_id>_<secret>`` is looked up by its id and proved by its secret's digest
(``oms.domain.access``). What a replica read of a key it keeps ``api_key_cache_ttl_s`` (5 s by
default), so MongoDB is read about once per key per replica per TTL, and a revoked key stops
working on every replica within that TTL (the issue's bound is 10 s). Unknown ids are
remembered as well (a client retrying a wrong key costs one read per TTL, not one per request).

A WebSocket ticket is 256 random bits held in Redis for ``ws_ticket_ttl_s`` with the caller
it was issued to, and taken with ``GETDEL``: any replica honours it, and only once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from aiohttp import web

from oms.api.identity import Caller, caller
from oms.api.jwt_tokens import JwtVerifier
from oms.api.outages import Dependency
from oms.api.problems import DependencyUnavailable
from oms.config import Settings
from oms.domain.access import ApiKey, Role, split_key

# Keys (and unknown key ids) remembered at once: bounds the memory a flood of made-up ids takes.
_CACHE_ENTRIES = 10_000


class KeyDirectory(Protocol):
    """Where API keys are stored (``oms.store.api_keys.MongoKeyDirectory`` in ``oms serve``)."""

    async def find_key(self, key_id: str) -> ApiKey | None:
        """The stored key with this id (revoked ones too), or None."""


class TicketStore(Protocol):
    """Where WebSocket tickets wait for their socket (Redis in ``oms serve``)."""

    async def put_ticket(self, ticket: str, payload: bytes, ttl_s: int) -> None:
        """Hold ``payload`` under ``ticket`` for ``ttl_s`` seconds."""

    async def take_ticket(self, ticket: str) -> bytes | None:
        """The payload of ``ticket``, removed in the same step (None: unknown, used, expired)."""


class Authenticator:
    """``oms.api.identity.Credentials`` over a key directory, a ticket store and a JWT verifier."""

    def __init__(
        self,
        settings: Settings,
        keys: KeyDirectory,
        tickets: TicketStore,
        jwt: JwtVerifier | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Check keys in ``keys``, tickets in ``tickets``, JWTs with ``jwt`` (None: refused)."""
        self._settings = settings
        self._keys = keys
        self._tickets = tickets
        self._jwt = jwt
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._reading: dict[str, asyncio.Task[ApiKey | None]] = {}

    async def bearer(self, token: str, client: str | None) -> Caller | None:
        """The caller an API key or a JWT proves, or None."""
        parts = split_key(token)
        if parts is not None:
            key_id, secret = parts
            key = await self._key(key_id)
            if key is None or key.revoked or not key.proves(secret):
                return None
            return Caller(key.role, key.accounts, key_id=key.key_id, client=client)
        if self._jwt is not None and token.count(".") == 2:
            return await self._jwt.verify(token, client)
        return None

    async def _key(self, key_id: str) -> ApiKey | None:
        now = self._clock()
        held = self._cache.get(key_id)
        if held is not None and now - held[0] < self._settings.api_key_cache_ttl_s:
            return held[1]
        # One read per key id at a time: a burst of requests with a key not cached yet (or
        # just expired) waits on the same read instead of sending one each.
        reading = self._reading.get(key_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(key_id))
            self._reading[key_id] = reading
            reading.add_done_callback(lambda _done: self._reading.pop(key_id, None))
        return await asyncio.shield(reading)

    async def _read(self, key_id: str) -> ApiKey | None:
        settings = self._settings
        try:
            async with asyncio.timeout(settings.dependency_timeout_s):
                key = await self._keys.find_key(key_id)
        except TimeoutError:
            raise DependencyUnavailable(
                Dependency.MONGODB, settings.retry_after_s, "mongodb unavailable (api keys)"
            ) from None
        self._cache[key_id] = (self._clock(), key)
        self._cache.move_to_end(key_id)
        while len(self._cache) > _CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return key

    @property
    def ticket_ttl_s(self) -> int:
        """How long a ticket stays good."""
        return self._settings.ws_ticket_ttl_s

    async def issue_ticket(self, who: Caller) -> str:
        """A single-use ticket that opens one WebSocket as ``who``, within its TTL."""
        ticket = secrets.token_urlsafe(32)
        payload = orjson.dumps(
            {
                "role": who.role.value,
                "accounts": sorted(who.accounts),
                "key_id": who.key_id,
                "subject": who.subject,
            }
        )
        await self._tickets.put_ticket(ticket, payload, self._settings.ws_ticket_ttl_s)
        return ticket

    async def ticket(self, ticket: str, client: str | None) -> Caller | None:
        """The caller a ticket was issued to, once."""
        if not 16 <= len(ticket) <= 128:
            return None
        raw = await self._tickets.take_ticket(ticket)
        if raw is None:
            return None
        held: dict[str, Any] = orjson.loads(raw)
        return Caller(
            Role(held["role"]),
            frozenset(held["accounts"]),
            key_id=held["key_id"],
            subject=held["subject"],
            client=client,
        )


AUTHENTICATOR_KEY = web.AppKey("authenticator", Authenticator)


async def whoami(request: web.Request) -> web.Response:
    """``GET /api/me``: the caller's role, accounts and key id or JWT subject (never a secret)."""
    who = caller(request)
    body = {
        "role": who.role.value,
        "accounts": sorted(who.accounts),
        "key_id": who.key_id,
        "subject": who.subject,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def ws_ticket(request: web.Request) -> web.Response:
    """``POST /api/ws-ticket``: ``{"ticket", "expires_in_s"}`` for ``/ws/*?ticket=``."""
    authenticator = request.app[AUTHENTICATOR_KEY]
    ticket = await authenticator.issue_ticket(caller(request))
    body = {"ticket": ticket, "expires_in_s": authenticator.ticket_ttl_s}
    return web.Response(
        body=orjson.dumps(body),
        status=200,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
