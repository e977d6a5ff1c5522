"""What the door does when Redis, Kafka, MongoDB or the engine do not answer: 503, logged once.

A failed dependency becomes a ``DependencyUnavailable`` problem (503, ``Retry-After``), never a
500 and never a hang: every call is bounded (``guard``). ``Outages`` keeps the log readable:
one warning when a dependency starts failing, one line when it answers again with how many
requests failed meanwhile, instead of a traceback per request (a Redis outage under load
wrote 94,459 lines in 12 s before this). A placement bounds its waits by one timer, not one
per wait (``Waits``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import TypeVar

import redis.exceptions as redis_errors
from aiohttp import web
from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError

from oms.api.problems import DependencyUnavailable
from oms.domain.errors import EngineUnavailable, StoreError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Dependency(StrEnum):
    """What the door waits on; the ``dependency`` member of a 503."""

    KAFKA = "kafka"
    REDIS = "redis"
    MONGODB = "mongodb"
    ENGINE = "engine"  # the order engine's thread, asked for an order's state


# Redis errors that say "not reachable now", not "this request is wrong": a connection refused,
# reset or timed out, a server loading, read-only (a replica during a failover) or out of memory.
# A ResponseError (a script's bug) is not among them: that is a 500.
REDIS_DOWN: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
)


def failed_dependency(error: BaseException) -> Dependency | None:
    """Which dependency ``error`` says is unreachable, or None (it is something else)."""
    if isinstance(error, REDIS_DOWN):
        return Dependency.REDIS
    if isinstance(error, KafkaError):
        return Dependency.KAFKA
    if isinstance(error, StoreError | PyMongoError):
        return Dependency.MONGODB
    if isinstance(error, EngineUnavailable):  # the engine is stopping, or one of its actors died
        return Dependency.ENGINE
    return None


@dataclass(slots=True)
class _Outage:
    started: float
    last: float
    failures: int


class Outages:
    """Logs each dependency's outage twice: when it starts, and when it ends with a count.

    An outage ends when the dependency answers again (``answered``), or, for one nothing reports
    answers of, when a failure comes more than ``quiet_s`` after the previous one (then the old
    outage is reported ended and a new one starts).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, quiet_s: float = 60.0
    ) -> None:
        """``clock`` in seconds (monotonic)."""
        self._clock = clock
        self._quiet_s = quiet_s
        self._down: dict[Dependency, _Outage] = {}

    def is_down(self, dependency: Dependency) -> bool:
        """True while ``dependency`` is in an outage (its last call failed)."""
        return dependency in self._down

    def failed(self, dependency: Dependency, error: BaseException | str) -> None:
        """One call to ``dependency`` failed: log it if an outage starts, else count it."""
        now = self._clock()
        outage = self._down.get(dependency)
        if outage is not None and now - outage.last > self._quiet_s:
            self._end(dependency, outage, now)
            outage = None
        if outage is None:
            self._down[dependency] = _Outage(now, now, 1)
            logger.warning(
                "%s unavailable: %s; answering 503 until it answers again", dependency, error
            )
            return
        outage.failures += 1
        outage.last = now

    def answered(self, dependency: Dependency) -> None:
        """A call to ``dependency`` succeeded: ends its outage, if any (one log line)."""
        outage = self._down.pop(dependency, None)  # the hot path: one dict lookup
        if outage is not None:
            self._end(dependency, outage, self._clock())

    def _end(self, dependency: Dependency, outage: _Outage, now: float) -> None:
        self._down.pop(dependency, None)
        logger.warning(
            "%s answers again after %.1f s; %d call(s) failed meanwhile",
            dependency,
            now - outage.started,
            outage.failures,
        )

    async def guard(
        self, dependency: Dependency, call: Awaitable[T], timeout_s: float, retry_after_s: int
    ) -> T:
        """Await ``call`` for at most ``timeout_s``; a timeout or an error saying a dependency is
        unreachable raises ``DependencyUnavailable`` (a 503), any other error passes through."""
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                return await self.awaited(dependency, call, retry_after_s)
        except TimeoutError:
            raise self.timed_out(dependency, timeout_s, retry_after_s) from None

    async def awaited(self, dependency: Dependency, call: Awaitable[T], retry_after_s: int) -> T:
        """``guard`` without its timer (the caller's bounds the wait): an error saying a
        dependency is unreachable raises ``DependencyUnavailable``, any other passes through."""
        try:
            result = await call
        except Exception as exc:
            failed = failed_dependency(exc)
            if failed is None:
                raise
            self.failed(failed, exc)
            raise DependencyUnavailable(failed, retry_after_s, f"{failed} unavailable") from exc
        self.answered(dependency)
        return result

    def timed_out(
        self, dependency: Dependency, timeout_s: float, retry_after_s: int
    ) -> DependencyUnavailable:
        """The 503 of a wait on ``dependency`` that ran out of its ``timeout_s`` (counted)."""
        detail = f"{dependency} did not answer within {timeout_s:.1f} s"
        self.failed(dependency, detail)
        return DependencyUnavailable(dependency, retry_after_s, detail)


class Waits:
    """A request's waits on its dependencies under one timer: its deadline.

    Each ``asyncio.timeout`` schedules and cancels a timer, and a POST waits on Redis and on
    Kafka in turn: a py-spy of a door under load put the timers at about 7% of its CPU (issue
    19). A placement opens one ``Waits`` for its claim and its send instead; ``wait`` notes the
    dependency it waits on, and a deadline passed is the 503 naming that one, as its own timer
    would have named it.
    """

    __slots__ = ("_outages", "_retry_after_s", "_timeout", "_timeout_s", "waiting")

    def __init__(self, outages: Outages, timeout_s: float, retry_after_s: int) -> None:
        """Bound every wait inside by ``timeout_s`` from now, together."""
        self._outages = outages
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._timeout = asyncio.timeout(max(timeout_s, 0.0))
        self.waiting = Dependency.REDIS  # the first a placement waits on

    async def __aenter__(self) -> Waits:
        await self._timeout.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            outages, waiting = self._outages, self.waiting
            raise outages.timed_out(waiting, self._timeout_s, self._retry_after_s) from None

    async def wait(self, dependency: Dependency, call: Awaitable[T]) -> T:
        """Await ``call`` on ``dependency`` within the deadline (``Outages.awaited``)."""
        self.waiting = dependency
        return await self._outages.awaited(dependency, call, self._retry_after_s)


OUTAGES_KEY = web.AppKey("outages", Outages)
