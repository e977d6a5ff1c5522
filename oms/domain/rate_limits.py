"""Rate limits as GCRA (the generic cell rate algorithm): pure, so every store runs the same one.

A bucket keeps one number, its *theoretical arrival time* (TAT): when it would be empty again
if no more requests came. A request is let through when, counting it, the TAT stays within
``burst`` emission intervals of now; then the TAT moves one interval on. So a quiet bucket lets
``burst`` requests through at once and ``per_s`` a second after that, and a refused request
learns exactly how long to wait (``Retry-After``). One number per bucket, no counters to reset
and no window edges where twice the rate passes.

Times here are integer microseconds: the Redis script (``oms.store.redis_rate_limits``) does the
same sums on numbers Lua holds exactly (doubles: exact up to 2**53 us, ~285 years).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

MICROS = 1_000_000


class LimitScope(StrEnum):
    """What a bucket counts the requests of; the ``limit`` of a 429 names it."""

    KEY = "key"  # one caller's credential (an API key, or a JWT's subject)
    ADDRESS = "address"  # one client IP address, whoever it claims to be


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_s`` requests a second, after a burst of up to ``burst`` at once."""

    per_s: float
    burst: int

    def __post_init__(self) -> None:
        if not self.per_s > 0 or self.burst < 1:
            raise ValueError(f"a rate needs per_s > 0 and burst >= 1, not {self}")

    @property
    def interval_us(self) -> int:
        """Microseconds between two requests at the steady rate (at least 1)."""
        return max(1, round(MICROS / self.per_s))


@dataclass(frozen=True, slots=True)
class Bucket:
    """One limit a request must pass: its store key (``scope`` and who), and its rate."""

    scope: LimitScope
    key: str
    rate: Rate


@dataclass(frozen=True, slots=True)
class Verdict:
    """A request let through (``retry_after_us`` 0), or refused by ``refused_by`` until then."""

    retry_after_us: int
    refused_by: LimitScope | None = None

    @property
    def allowed(self) -> bool:
        """True when every bucket let the request through."""
        return self.refused_by is None


ALLOWED = Verdict(0)


def admit(
    tats: Sequence[int | None], now_us: int, buckets: Sequence[Bucket]
) -> tuple[Verdict, list[int]]:
    """One request against every bucket at once; the verdict and the buckets' new TATs.

    Either every bucket counts the request or none does: a request refused by its address's
    limit does not use up its key's (and the other way round). ``tats[i]`` is bucket i's stored
    TAT (None: never used, or expired). The new TATs are to be stored only when allowed.
    """
    wait_us, refused_by = 0, None
    moved: list[int] = []
    for tat, bucket in zip(tats, buckets, strict=True):
        interval = bucket.rate.interval_us
        start = now_us if tat is None or tat < now_us else tat
        allow_at = start + interval - bucket.rate.burst * interval
        if allow_at > now_us and allow_at - now_us > wait_us:
            wait_us, refused_by = allow_at - now_us, bucket.scope
        moved.append(start + interval)
    if refused_by is not None:
        return Verdict(wait_us, refused_by), moved
    return ALLOWED, moved
