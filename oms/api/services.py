"""What the routes are handed: the engine facade, the command bus and the order-entry stores."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from oms.actors.aio import reply
from oms.config import Settings
from oms.domain.orders import Order
from oms.engine import Engine
from oms.store.memory import MemoryAccountRepository
from oms.store.ports import AccountRepository, Claim, IdempotencyStore, OrderCache
from oms.store.redis_store import ClaimAndCache, claim_and_cache
from oms.stream.bus import CommandBus

ConsumerLag = Callable[[], Mapping[tuple[str, int], int]]
"""Per (topic, partition) the consumer group's lag in messages, read at every scrape."""

ReadyProbe = Callable[[], Awaitable[dict[str, bool]]]
"""Reachability of the servers the process needs (``oms.probes.probe_all`` by default)."""


@dataclass(slots=True)
class ApiServices:
    """Everything a route may use; one instance per application."""

    settings: Settings
    engine: Engine
    bus: CommandBus
    idempotency: IdempotencyStore
    cache: OrderCache
    clock: Callable[[], float] = field(default=time.time)
    # Where accounts are recorded so that a restart can re-open them (MongoDB in `oms serve`).
    accounts: AccountRepository = field(default_factory=MemoryAccountRepository)
    # Claim and cache in one store call, when the stores can (both Redis, one client).
    _claim_and_cache: ClaimAndCache | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self._claim_and_cache = claim_and_cache(self.idempotency, self.cache)

    async def claim(self, key: str, order: Order, fingerprint: bytes) -> Claim:
        """Claim ``key`` for ``order``; if the claim wins, the order is cached before this returns.

        Caching only a winner keeps the cache free of orders that were never sent; caching
        before the command is sent is what lets a GET right after the 202 find the order.
        """
        settings = self.settings
        fused = self._claim_and_cache
        if fused is not None:
            return await fused(
                key, order, fingerprint, settings.idempotency_ttl_s, settings.order_cache_ttl_s
            )
        claim = await self.idempotency.claim(
            key, order.order_id, fingerprint, settings.idempotency_ttl_s
        )
        if claim.first:
            await self.cache.put(order, settings.order_cache_ttl_s)
        return claim

    async def find_order(self, order_id: str) -> Order | None:
        """The freshest state known of an order: the engine's, else the cache's.

        The cache answers right after a 202, while the command may still be on its way to the
        engine. Only the NEW state taken at the claim is cached: a later state is the engine's
        until it is durable, and a cache must not keep one a crash could take back.
        """
        live = await reply(self.engine.get_order(order_id))
        if live is not None:
            return live
        return await self.cache.get(order_id)


SERVICES_KEY = web.AppKey("services", ApiServices)
