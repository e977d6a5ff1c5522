"""What the routes are handed: the engine facade, the command bus and the order-entry stores."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web

from oms.api.outages import Dependency, Outages, Waits
from oms.api.problems import DependencyUnavailable
from oms.api.rate_limits import Admission
from oms.config import Settings
from oms.domain.orders import Order
from oms.engine import Engine
from oms.engine.ports import (
    AccountRepository,
    Claim,
    GlobalLimitStore,
    IdempotencyStore,
    OrderCache,
)
from oms.legs import Legs
from oms.stream.bus import CommandBus, OrderCommand, RiskEventSink

T = TypeVar("T")

ConsumerLag = Callable[[], Mapping[tuple[str, int], int]]
"""Per (topic, partition) the consumer group's lag in messages, read at every scrape."""

ReadyProbe = Callable[[], Awaitable[dict[str, bool]]]
"""Reachability of the servers the process needs (``oms.probes.probe_all`` by default)."""


# A cache write after the send gets what is left of the request's time, but at least this: a
# local Redis answers in a millisecond, and a slow Kafka should not cost the read-your-writes
# entry. So a POST answers within ``dependency_timeout_s`` plus at most this.
_CACHE_FLOOR_S = 0.2


class OrderEntry:
    """What placing an order needs: the claims, the send and the cache, each within the
    request's deadline (``ApiServices`` in the engine's process; ``oms.api.door_worker``'s
    services in a door process, which has no engine)."""

    __slots__ = ()

    settings: Settings
    bus: CommandBus
    idempotency: IdempotencyStore
    cache: OrderCache
    clock: Callable[[], float]
    outages: Outages
    legs: Legs

    def deadline(self) -> float:
        """When a request starting now must have its answer from the dependencies (monotonic)."""
        return time.monotonic() + self.settings.dependency_timeout_s

    async def _guard(self, dependency: Dependency, call: Awaitable[T], deadline: float) -> T:
        return await self.outages.guard(
            dependency, call, deadline - time.monotonic(), self.settings.retry_after_s
        )

    def waits(self, deadline: float) -> Waits:
        """One timer for a placement's claim and send, up to ``deadline`` (``Waits``)."""
        return Waits(self.outages, deadline - time.monotonic(), self.settings.retry_after_s)

    async def claim(
        self,
        keys: Sequence[str],
        order_id: str,
        fingerprint: bytes,
        waits: Waits,
        admission: Admission | None = None,
    ) -> list[Claim]:
        """Claim every key for ``order_id``; per key, who holds it (503 if Redis cannot say).

        The claims are made together, so Redis gets them in one call (``RedisIdempotencyStore``
        batches a loop turn's claims), and with the request's rate-limit count when it has not
        been made (``admission``: 429 past its limits, nothing claimed then). Nothing is cached
        here: the order is cached only once its command is on Kafka (``remember``), so a cached
        order is always one that was sent.
        """
        store, ttl_s = self.idempotency, self.settings.idempotency_ttl_s
        if admission is not None:
            held = await admission.claim(keys, order_id, fingerprint, ttl_s)
            if held is not None:
                return held
        if len(keys) == 1:  # the usual case: no task per claim for gather to make
            claim = store.claim(keys[0], order_id, fingerprint, ttl_s)
            return [await waits.wait(Dependency.REDIS, claim)]
        claims = asyncio.gather(*(store.claim(k, order_id, fingerprint, ttl_s) for k in keys))
        return await waits.wait(Dependency.REDIS, claims)

    async def send(self, commands: Sequence[OrderCommand], deadline: float) -> None:
        """Hand the commands to the bus; return once they cannot be lost (503 if not in time).

        A 503 here is an unknown outcome: the command may still reach Kafka (the producer keeps
        it), which is why a retry must name the same order (``oms.api.ids.order_id_for``).
        """
        await self._guard(Dependency.KAFKA, self.bus.send(commands), deadline)

    async def send_within(self, commands: Sequence[OrderCommand], waits: Waits) -> None:
        """``send``, bounded by a placement's ``waits`` rather than a timer of its own (nor the
        bus's)."""
        await waits.wait(Dependency.KAFKA, self.bus.send_bounded_by_caller(commands))

    async def remember(self, order: Order, deadline: float) -> None:
        """Cache a sent order for the GET right after the 202; a failure is logged, not raised:
        the command is on Kafka, so the 202 is the truth, and the engine will know the order."""
        budget = max(deadline - time.monotonic(), _CACHE_FLOOR_S)
        put = self.cache.put(order, self.settings.order_cache_ttl_s)
        with contextlib.suppress(DependencyUnavailable):
            await self._guard(Dependency.REDIS, put, time.monotonic() + budget)


@dataclass(slots=True)
class ApiServices(OrderEntry):
    """Everything a route may use; one instance per application."""

    settings: Settings
    engine: Engine
    bus: CommandBus
    idempotency: IdempotencyStore
    cache: OrderCache
    # Where accounts are recorded so that a restart can re-open them (MongoDB in `oms serve`).
    accounts: AccountRepository
    # Where kill-switch and limits changes are announced once recorded (``risk-events``).
    risk_events: RiskEventSink
    clock: Callable[[], float] = field(default=time.time)
    # One log line per outage of a dependency, not one per request (shared with the middleware).
    outages: Outages = field(default_factory=Outages)
    # The door's ``post`` leg (and the order feed's ``engine`` leg): oms.legs.
    legs: Legs = field(default_factory=Legs)
    # The firm-wide caps (Redis in `oms serve`; None: the routes answer 503).
    global_limits: GlobalLimitStore | None = None

    async def find_order(self, order_id: str, deadline: float | None = None) -> Order | None:
        """The freshest state known of an order: the engine's store, else the cache's.

        Never on the engine's thread: the store answers from its memory (every open order, the
        recent finished ones; at most one dispatcher round behind the order's actor), else from
        MongoDB within its read timeout (``StoreUnavailable``, a 503 naming MongoDB, if it does
        not answer: the cache is not asked then, it may hold a NEW state the order left long
        ago). The cache answers right after a 202, while the command may still be on its way to
        the engine. Only the NEW state of a sent order is cached: a later state is the engine's
        until it is durable, and a cache must not keep one a crash could take back. An engine
        that cannot answer is a 503; a cache that cannot is a miss (Redis down: orders the
        engine holds are still served, unknown ones are 404). ``deadline``: the request's, if
        it started before (else one starts now).
        """
        deadline = self.deadline() if deadline is None else deadline
        live = await self._guard(Dependency.ENGINE, self.engine.get_order(order_id), deadline)
        if live is not None:
            return live
        return await self._cached(order_id, deadline)

    async def _cached(self, order_id: str, deadline: float) -> Order | None:
        try:
            return await self._guard(Dependency.REDIS, self.cache.get(order_id), deadline)
        except DependencyUnavailable:
            return None


SERVICES_KEY = web.AppKey("services", ApiServices)
