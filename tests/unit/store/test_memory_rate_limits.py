"""The in-memory buckets: this replica's bound while Redis is away."""

from __future__ import annotations

from oms.domain.rate_limits import Bucket, LimitScope, Rate
from oms.store import memory_rate_limits
from oms.store.memory_rate_limits import MemoryRateLimits


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_acquire_when_burst_used_then_refused_until_an_interval_passes() -> None:
    # Arrange
    clock = _Clock()
    store = MemoryRateLimits(clock)
    bucket = [Bucket(LimitScope.KEY, "key:a", Rate(per_s=2, burst=2))]

    # Act
    first = [(await store.acquire(bucket)).allowed for _ in range(3)]
    clock.now += 0.5
    later = (await store.acquire(bucket)).allowed

    # Assert
    assert first == [True, True, False]
    assert later


async def test_acquire_when_too_many_buckets_then_idle_ones_are_dropped(monkeypatch) -> None:
    # Arrange
    monkeypatch.setattr(memory_rate_limits, "MAX_BUCKETS", 10)
    clock = _Clock()
    store = MemoryRateLimits(clock)
    rate = Rate(per_s=1, burst=1)
    for n in range(10):
        await store.acquire([Bucket(LimitScope.ADDRESS, f"10.0.0.{n}", rate)])
    clock.now += 5  # every bucket idle again

    # Act
    verdict = await store.acquire([Bucket(LimitScope.ADDRESS, "10.0.1.1", rate)])

    # Assert
    assert verdict.allowed
    assert len(store._tats) == 1
