"""The server ``oms loadgen`` loads, as the load generator sees it: every call bounded in time,
every failure a kind, and whether the server is gone.

A call answers an ``Answer`` (the server said something: a status and a JSON body) or a
``Failure``. A failure says whether the request may have reached the server: a refused or timed
out *connection* never did (the order was not placed), while a connection dropped or a read
timed out after the request went out leaves its outcome unknown. The server is *gone* once
nothing it was asked has been answered for ``give_up_s``: the load generator then stops asking
and reports what it saw, instead of hammering a dead address or dying on a traceback.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson


@dataclass(frozen=True, slots=True)
class Answer:
    """The server answered: its status and JSON body (None when the body was not JSON)."""

    status: int
    body: Any


@dataclass(frozen=True, slots=True)
class Failure:
    """No answer: ``kind`` says why; ``maybe_delivered`` whether the server may have the request."""

    kind: str
    maybe_delivered: bool


def failure_of(error: BaseException) -> Failure:
    """The kind of a failed call, and whether its request may have been delivered."""
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return Failure("connect_timeout", maybe_delivered=False)
    if isinstance(error, aiohttp.ClientConnectorError):
        return Failure("connect_refused", maybe_delivered=False)
    if isinstance(error, TimeoutError):  # aiohttp's read and total timeouts are ones too
        return Failure("timeout", maybe_delivered=True)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return Failure("disconnected", maybe_delivered=True)
    return Failure("connection_error", maybe_delivered=True)


class Target:
    """Calls to one running ``oms serve``, each bounded by the session's timeout."""

    def __init__(self, http: aiohttp.ClientSession, base: str, *, give_up_s: float) -> None:
        """Call ``base`` (``http://host:port``) through ``http``; gone after ``give_up_s``."""
        self.http = http
        self.base = base
        self.give_up_s = give_up_s
        self.errors: Counter[str] = Counter()
        self._failing_since: float | None = None  # first failure since the last answer
        self.lost = False  # set once the server was gone at least once

    @property
    def gone(self) -> bool:
        """True when nothing has been answered for ``give_up_s``."""
        since = self._failing_since
        if since is not None and time.monotonic() - since >= self.give_up_s:
            self.lost = True
            return True
        return False

    async def call(
        self,
        method: str,
        path: str,
        json: Mapping[str, Any] | None = None,
        *,
        probe: bool = False,
    ) -> Answer | Failure:
        """One request; a failure is counted by kind (not a ``probe``'s), never raised."""
        try:
            async with self.http.request(method, self.base + path, json=json) as response:
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            failed = failure_of(error)
            if not probe:
                self.errors[failed.kind] += 1
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
            return failed
        self._failing_since = None
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        return Answer(response.status, body)

    async def wait_back(self, within_s: float, poll_s: float = 0.5) -> bool:
        """Poll ``/health`` until it answers 200 (True) or ``within_s`` passes (False)."""
        deadline = time.monotonic() + within_s
        while True:
            answer = await self.call("GET", "/health", probe=True)
            if isinstance(answer, Answer) and answer.status == 200:
                return True
            if time.monotonic() + poll_s > deadline:
                return False
            await asyncio.sleep(poll_s)
