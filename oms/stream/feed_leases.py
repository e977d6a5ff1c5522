"""One publisher per symbol however many replicas run: a lease per symbol in a shared store.

Every replica runs ``SymbolLeases`` over every symbol. Each round (a third of the lease's
length) it renews the leases it holds and tries to take the free ones; it publishes a symbol
only while it holds that symbol's lease. A replica that dies stops renewing, its leases expire
in Redis after ``lease_s``, and the next replica to try takes each over (so a symbol's feed
moves within ``lease_s`` plus a round). A clean stop releases its leases at once.

When the store does not answer, a held lease is kept only until its local deadline: the time
the last successful renewal was *sent* plus ``lease_s``, which is never later than the moment
Redis expires it. So a replica cut off from Redis stops publishing before another can take the
symbol over, and two replicas never publish one symbol at once (barring clocks that run at
different rates by more than the margin a round leaves).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

logger = logging.getLogger(__name__)


class LeaseStore(Protocol):
    """Named leases with one holder each (``oms.store.redis_leases.RedisLeases``).

    Each call answers True (done), False (refused: another holds it, or it was not held) or
    None (the store did not answer).
    """

    async def acquire(self, name: str, owner: str, ttl_ms: int) -> bool | None:
        """Take ``name`` for ``ttl_ms`` if nobody holds it."""
        ...

    async def renew(self, name: str, owner: str, ttl_ms: int) -> bool | None:
        """Extend ``name`` to ``ttl_ms`` from now if ``owner`` holds it."""
        ...

    async def release(self, name: str, owner: str) -> bool | None:
        """Drop ``name`` if ``owner`` holds it."""
        ...


Change = Callable[[str], None]
"""Told a symbol whose lease this replica gained (or lost)."""


class SymbolLeases:
    """Which of ``symbols`` this replica publishes, kept in ``store`` under ``owner``."""

    def __init__(
        self,
        store: LeaseStore,
        symbols: Iterable[str],
        owner: str,
        *,
        lease_s: float,
        on_gained: Change,
        on_lost: Change,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Leases of ``lease_s`` seconds; ``on_gained``/``on_lost`` start and stop a symbol."""
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self._store = store
        self.symbols = tuple(symbols)
        self.owner = owner
        self.lease_s = lease_s
        self._ttl_ms = max(1, round(lease_s * 1000))
        self._on_gained = on_gained
        self._on_lost = on_lost
        self._clock = clock
        self._deadline: dict[str, float] = {}  # held symbol -> when it stops counting as held
        self.moves = 0  # leases gained and lost, for /metrics

    @property
    def held(self) -> frozenset[str]:
        """The symbols this replica holds now."""
        return frozenset(self._deadline)

    def holds(self, symbol: str) -> bool:
        """Whether this replica may publish ``symbol`` now (held, and within its deadline)."""
        deadline = self._deadline.get(symbol)
        return deadline is not None and self._clock() < deadline

    @staticmethod
    def lease_name(symbol: str) -> str:
        """The store's name of ``symbol``'s lease."""
        return f"market-data:{symbol}"

    async def step(self) -> None:
        """One round: renew what is held, drop what is lost, take what is free."""
        for symbol in self.symbols:
            name = self.lease_name(symbol)
            sent = self._clock()
            deadline = self._deadline.get(symbol)
            if deadline is not None:
                renewed = await self._store.renew(name, self.owner, self._ttl_ms)
                if renewed:
                    self._deadline[symbol] = sent + self.lease_s
                elif renewed is False or self._clock() >= deadline:
                    self._lose(symbol, "taken over" if renewed is False else "store unanswered")
                continue
            if await self._store.acquire(name, self.owner, self._ttl_ms):
                self._deadline[symbol] = sent + self.lease_s
                self.moves += 1
                logger.info("market data: this replica now publishes %s", symbol)
                self._on_gained(symbol)

    async def run(self) -> None:
        """Rounds every third of ``lease_s`` until cancelled."""
        while True:
            await self.step()
            await asyncio.sleep(self.lease_s / 3)

    async def release_all(self) -> None:
        """A clean stop: give every held lease back so that another replica takes it at once."""
        for symbol in tuple(self._deadline):
            self._lose(symbol, "released")
            await self._store.release(self.lease_name(symbol), self.owner)

    def _lose(self, symbol: str, why: str) -> None:
        del self._deadline[symbol]
        self.moves += 1
        logger.info("market data: this replica no longer publishes %s (%s)", symbol, why)
        self._on_lost(symbol)
