"""Leases in memory and a settable clock, for the feed leases' tests and the price publisher's."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MemoryLeases:
    """``LeaseStore`` in memory with Redis's expiry, on the test's clock."""

    clock: Clock
    leases: dict[str, tuple[str, float]] = field(default_factory=dict)  # name -> owner, expiry
    answering: bool = True

    def _live(self, name: str) -> str | None:
        held = self.leases.get(name)
        if held is None or held[1] <= self.clock.now:
            self.leases.pop(name, None)
            return None
        return held[0]

    async def acquire(self, name: str, owner: str, ttl_ms: int) -> bool | None:
        if not self.answering:
            return None
        if self._live(name) is not None:
            return False
        self.leases[name] = (owner, self.clock.now + ttl_ms / 1000)
        return True

    async def renew(self, name: str, owner: str, ttl_ms: int) -> bool | None:
        if not self.answering:
            return None
        if self._live(name) != owner:
            return False
        self.leases[name] = (owner, self.clock.now + ttl_ms / 1000)
        return True

    async def release(self, name: str, owner: str) -> bool | None:
        if self._live(name) != owner:
            return False
        del self.leases[name]
        return True


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now
