"""Rate limits in this process's memory: the bound while Redis is away, and the unit tests' store.

The same GCRA as Redis (``oms.domain.rate_limits.admit``) on this process's monotonic clock. It
holds one replica's requests only: with N replicas, a caller spread over all of them gets up to
N times its rate through while they fall back to it (bounded, as the README says).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from oms.domain.rate_limits import ALLOWED, MICROS, Bucket, Verdict, admit
from oms.engine.ports import Claim, IdempotencyStore

__all__ = ["MemoryAdmission", "MemoryRateLimits"]

# Buckets kept before the idle ones are dropped (an idle bucket is one whose TAT is past: it
# would start afresh anyway). Bounds the memory a flood of client addresses can take.
MAX_BUCKETS = 100_000


class MemoryRateLimits:
    """``RateLimitStore`` in memory (``oms.api.rate_limits``), one replica's view."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` in seconds."""
        self._clock = clock
        self._tats: dict[tuple[str, str], int] = {}

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        """Count one request against every bucket, or refuse it saying for how long."""
        return self.acquire_now(buckets)

    def acquire_now(self, buckets: Sequence[Bucket]) -> Verdict:
        """``acquire`` without awaiting (it never waits on anything)."""
        if not buckets:
            return ALLOWED
        now = int(self._clock() * MICROS)
        names = [(bucket.scope.value, bucket.key) for bucket in buckets]
        verdict, moved = admit([self._tats.get(n) for n in names], now, buckets)
        if verdict.allowed:
            if len(self._tats) >= MAX_BUCKETS:
                self._forget_idle(now)
            self._tats.update(zip(names, moved, strict=True))
        return verdict

    def _forget_idle(self, now: int) -> None:
        self._tats = {name: tat for name, tat in self._tats.items() if tat > now}
        if len(self._tats) >= MAX_BUCKETS:  # all busy: a flood; start over rather than grow
            self._tats.clear()


class MemoryAdmission:
    """``ClaimingRateLimits`` in memory (``oms.api.rate_limits``), the twin of
    ``RedisAdmission``: the claims are taken only if the buckets let the request through."""

    def __init__(self, limits: MemoryRateLimits, idempotency: IdempotencyStore) -> None:
        """The buckets of ``limits``, the claims of ``idempotency``."""
        self._limits = limits
        self._idempotency = idempotency

    async def acquire_and_claim(
        self,
        buckets: Sequence[Bucket],
        keys: Sequence[str],
        order_id: str,
        fingerprint: bytes,
        ttl_s: int,
    ) -> tuple[Verdict, list[Claim]]:
        """The verdict; when it lets the request through, who holds each key."""
        verdict = self._limits.acquire_now(buckets)
        if not verdict.allowed:
            return verdict, []
        claims = [await self._idempotency.claim(k, order_id, fingerprint, ttl_s) for k in keys]
        return verdict, claims
