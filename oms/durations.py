"""How long something took, counted per upper bound: a Prometheus histogram's data, kept by the
part that times it (the store's writer) and exported by ``/metrics``."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# From a few milliseconds (a small insert_many on an idle server) to seconds (a server away).
WRITE_BOUNDS_S = (0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Durations:
    """Counts of durations per upper bound (``le``), and their sum.

    Written by one thread only; a reader on another thread may see a count one observation
    ahead of the sum, which a scrape tolerates.
    """

    bounds: tuple[float, ...] = WRITE_BOUNDS_S
    counts: list[int] = field(init=False)  # one per bound, then the overflow (+Inf)
    total_s: float = 0.0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError("bounds must be strictly increasing")
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        """Count one duration."""
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total_s += seconds

    def observe_many(self, seconds: float, times: int) -> None:
        """Count the same duration ``times`` times (a batch's orders that shared one wait)."""
        self.counts[bisect_left(self.bounds, seconds)] += times
        self.total_s += seconds * times

    @property
    def count(self) -> int:
        """How many durations were counted."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count of durations <= le)`` per bound, then ``("+Inf", count)``: Prometheus's
        bucket form."""
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets
