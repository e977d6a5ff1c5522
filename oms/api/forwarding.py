"""Reads answered by the account's owner, from any replica: here if it owns the account, else
forwarded to it over the internal hop.

Only the replica that owns an account's partition of ``orders`` holds its balances,
reservations, positions, PnL, limits, trading state and live orders. A read of an account
(``GET /api/accounts/{id}``, positions, limits, ``POST /api/risk/validate``, an order and its
history, one account's order list, ``/ws/orders``) therefore asks ``where``: this replica if
it owns the partition (and has rebuilt it), else the owner the map in Redis names
(``oms.engine.owners``), to which the request goes with its caller signed
(``oms.api.internal_hop``), over one shared aiohttp session, within ``OMS_FORWARD_TIMEOUT_S``.

Never a stale answer: no owner known, an owner that does not answer in time, a map that names
this replica while it does not own the partition (a rebalance is under way), or a forwarded
request reaching a replica that no longer owns it, each answers 503 ``OWNER_UNAVAILABLE`` with
``Retry-After``. A forwarded request is never forwarded again (no loops across a rebalance).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError
from yarl import URL

from oms.api import identity
from oms.api.identity import FORWARD_HEADER, HOP_KEY
from oms.api.internal_hop import HopSigner
from oms.api.problems import Problem
from oms.config import Settings
from oms.correlation import HTTP_HEADER as REQUEST_ID_HEADER
from oms.engine.owners import Owner, OwnerMap
from oms.stream.partitioner import partition_of

logger = logging.getLogger(__name__)

# The answer's headers a forwarded read passes back as they are (the rest aiohttp sets again).
_PASSED_BACK = ("Content-Type", "Retry-After", "Location", "WWW-Authenticate")


class RoutingRefusal(StrEnum):
    """Why a read could not be answered by its account's owner: the problem's ``code``."""

    OWNER_UNAVAILABLE = "OWNER_UNAVAILABLE"  # 503: no owner known, or it did not answer


class OwnerUnavailable(Problem):
    """503 ``OWNER_UNAVAILABLE``: the owner of the account is not known or did not answer."""

    __slots__ = ("retry_after_s",)

    def __init__(self, retry_after_s: int, detail: str) -> None:
        """The 503, to be retried after ``retry_after_s`` seconds."""
        code = RoutingRefusal.OWNER_UNAVAILABLE.value
        Problem.__init__(self, 503, code, "Owner unavailable", detail)
        self.retry_after_s = retry_after_s

    def response(self) -> web.Response:
        """The answer, with ``Retry-After`` (seconds)."""
        response = Problem.response(self)
        response.headers["Retry-After"] = str(self.retry_after_s)
        return response


class Forwarder:
    """Decides where an account's read is answered and forwards it there."""

    def __init__(
        self,
        settings: Settings,
        owners: OwnerMap,
        owned: Callable[[], frozenset[int] | None],
        signer: HopSigner,
    ) -> None:
        """``owned``: the partitions this replica owns and has rebuilt (None: rebalancing)."""
        self.settings = settings
        self.owners = owners
        self.owned = owned
        self.signer = signer
        self.address = settings.advertised_url()
        self._session: aiohttp.ClientSession | None = None
        self.forwarded = 0  # reads sent to their owner
        self.unavailable = 0  # reads answered 503 OWNER_UNAVAILABLE

    def _unavailable(self, detail: str) -> OwnerUnavailable:
        self.unavailable += 1
        return OwnerUnavailable(self.settings.retry_after_s, detail)

    def partition(self, account_id: str) -> int:
        """The partition of ``orders`` that holds ``account_id``."""
        return partition_of(account_id, self.settings.orders_partitions)

    async def where(self, account_id: str, *, forwarded: bool) -> Owner | None:
        """None when this replica answers for ``account_id``; else the owner to forward to.

        Raises ``OwnerUnavailable`` when no replica can answer the truth now.
        """
        partition = self.partition(account_id)
        owned = self.owned()
        if owned is not None and partition in owned:
            return None
        if forwarded:  # the map named this replica, which no longer (or not yet) owns it
            raise self._unavailable(f"partition {partition} is not owned here now")
        if not self.signer.enabled:
            raise self._unavailable("another replica owns this account (no internal token set)")
        try:
            async with asyncio.timeout(self.settings.forward_timeout_s):
                owner = await self.owners.owner(partition)
        except (RedisError, OSError, TimeoutError) as error:
            raise self._unavailable(f"the owner map could not be read: {error!r}") from None
        if owner is None or owner.address == self.address:
            raise self._unavailable(f"no replica owns partition {partition} now")
        return owner

    def session(self) -> aiohttp.ClientSession:
        """The one client session of the hop (made on first use, on the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.forward_timeout_s)
            )
        return self._session

    async def close(self) -> None:
        """Close the session (the app's cleanup)."""
        if self._session is not None:
            await self._session.close()

    def signed_headers(
        self, request: web.Request, body: bytes, path_qs: str | None = None
    ) -> dict[str, str]:
        """The headers of a forwarded request (to ``path_qs``, the request's own by default):
        its caller signed, and its request id."""
        who = identity.caller(request)
        path_qs = request.path_qs if path_qs is None else path_qs
        headers = {FORWARD_HEADER: self.signer.sign(who, request.method, path_qs, body)}
        for name in ("Content-Type", "Accept", REQUEST_ID_HEADER):
            if name in request.headers:
                headers[name] = request.headers[name]
        return headers

    async def forward(self, request: web.Request, owner: Owner) -> web.Response:
        """The owner's answer to ``request`` (503 ``OWNER_UNAVAILABLE`` if it gives none)."""
        body = await request.read()
        # As sent (encoded=True): the owner checks the signature over the path it receives.
        url = URL(owner.address + request.path_qs, encoded=True)
        try:
            async with self.session().request(
                request.method, url, data=body or None, headers=self.signed_headers(request, body)
            ) as answer:
                payload = await answer.read()
                headers = {k: answer.headers[k] for k in _PASSED_BACK if k in answer.headers}
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("owner %s did not answer %s: %r", owner.replica, request.path, error)
            raise self._unavailable(f"the owner ({owner.replica}) did not answer") from None
        self.forwarded += 1
        return web.Response(body=payload, status=status, headers=headers)

    async def proxy_socket(
        self, request: web.Request, owner: Owner, path_qs: str
    ) -> web.WebSocketResponse:
        """The owner's WebSocket at ``path_qs``, relayed to the client (text messages, as the
        owner sends them) until either side closes.

        The owner's socket is opened first: an owner that refuses or does not answer is a 503
        ``OWNER_UNAVAILABLE`` on the client's handshake, not a socket that never speaks.
        """
        headers = self.signed_headers(request, b"", path_qs)
        try:
            upstream = await self.session().ws_connect(
                URL(owner.address + path_qs, encoded=True),
                headers=headers,
                heartbeat=_SOCKET_HEARTBEAT_S,
                timeout=aiohttp.ClientWSTimeout(ws_close=self.settings.forward_timeout_s),
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("owner %s refused %s: %r", owner.replica, request.path, error)
            raise self._unavailable(f"the owner ({owner.replica}) did not open the feed") from None
        self.forwarded += 1
        ws = web.WebSocketResponse(heartbeat=_SOCKET_HEARTBEAT_S)
        try:
            await ws.prepare(request)
            await relay_socket_messages(upstream, ws)
        finally:
            await upstream.close()
            await ws.close()
        return ws


_SOCKET_HEARTBEAT_S = 30.0  # as the owner's own socket: a silent peer is noticed within it


async def relay_socket_messages(
    upstream: aiohttp.ClientWebSocketResponse, ws: web.WebSocketResponse
) -> None:
    """Text from the owner to the client until either closes (the client only pings)."""

    async def downstream() -> None:
        async for message in upstream:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            await ws.send_str(message.data)

    async def client() -> None:
        async for message in ws:
            if message.type is aiohttp.WSMsgType.ERROR:
                break

    tasks = {asyncio.create_task(downstream()), asyncio.create_task(client())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


FORWARDER_KEY = web.AppKey("forwarder", Forwarder)


async def from_owner(request: web.Request, account_id: str) -> web.Response | None:
    """The owner's answer when another replica owns ``account_id``; None: answer here.

    Call it once the caller's access to the account is checked (the owner trusts the check).
    An app without a forwarder (one replica, the unit tests' app) answers everything itself.
    """
    forwarder = request.app.get(FORWARDER_KEY)
    if forwarder is None:
        return None
    owner = await forwarder.where(account_id, forwarded=identity.forwarded(request))
    if owner is None:
        return None
    return await forwarder.forward(request, owner)


def with_forwarding(
    pipeline: Callable[[], Mapping[str, Any]] | None, app: Callable[[], web.Application]
) -> Callable[[], Mapping[str, Any]]:
    """The pipeline's figures and, once the app forwards reads, how many it sent to their
    owner and how many found none (``oms_reads_*`` on ``/metrics``)."""

    def figures() -> Mapping[str, Any]:
        found: Mapping[str, Any] = {} if pipeline is None else pipeline()
        forwarder = app().get(FORWARDER_KEY)
        if forwarder is None:
            return found
        return {
            **found,
            "reads_forwarded_total": forwarder.forwarded,
            "reads_owner_unavailable_total": forwarder.unavailable,
        }

    return figures


def add_forwarding(
    app: web.Application,
    settings: Settings,
    owners: OwnerMap | None,
    owned: Callable[[], frozenset[int] | None] | None,
) -> None:
    """Check every request that claims another replica sent it (refused without a token), and,
    given the owner map and this replica's share, answer account reads from their owner."""
    signer = HopSigner(settings.internal_token)
    app[HOP_KEY] = signer
    if owners is None or owned is None:
        return
    forwarder = Forwarder(settings, owners, owned, signer)
    app[FORWARDER_KEY] = forwarder

    async def close(_app: web.Application) -> None:
        await forwarder.close()

    app.on_cleanup.append(close)
