"""GCRA: a burst at once, then the steady rate; every bucket counts a request or none does."""

from __future__ import annotations

import pytest

from oms.domain.rate_limits import MICROS, Bucket, LimitScope, Rate, admit

KEY = Bucket(LimitScope.KEY, "key:k1", Rate(per_s=10, burst=3))
ADDRESS = Bucket(LimitScope.ADDRESS, "10.0.0.1", Rate(per_s=1, burst=5))


def _run(buckets: list[Bucket], times_us: list[int]) -> list[bool]:
    tats: list[int | None] = [None] * len(buckets)
    passed = []
    for now in times_us:
        verdict, moved = admit(tats, now, buckets)
        if verdict.allowed:
            tats = list(moved)
        passed.append(verdict.allowed)
    return passed


def test_admit_when_burst_at_once_then_burst_passes_and_next_waits_one_interval() -> None:
    # Arrange
    now = 1_000 * MICROS
    tats: list[int | None] = [None]

    # Act
    for _ in range(3):
        verdict, moved = admit(tats, now, [KEY])
        assert verdict.allowed
        tats = list(moved)
    refused, _ = admit(tats, now, [KEY])

    # Assert
    assert refused.refused_by is LimitScope.KEY
    assert refused.retry_after_us == MICROS // 10


def test_admit_when_requests_come_at_the_rate_then_all_pass() -> None:
    # Act
    passed = _run([KEY], [i * MICROS // 10 for i in range(100)])

    # Assert
    assert all(passed)


def test_admit_when_one_second_of_flood_then_burst_plus_rate_pass() -> None:
    # Act: 1,000 requests spread evenly over one second
    passed = _run([KEY], [i * 1_000 for i in range(1_000)])

    # Assert: the burst of 3, then 10 a second (the first refill lands at 0.1 s)
    assert sum(passed) == 3 + 10 - 1


def test_admit_when_address_refuses_then_key_bucket_is_not_used_up() -> None:
    # Arrange: the address allows 5 at once, the key 3 at once
    tats: list[int | None] = [None, None]
    now = 5 * MICROS

    # Act
    verdicts = []
    for _ in range(4):
        verdict, moved = admit(tats, now, [ADDRESS, KEY])
        if verdict.allowed:
            tats = list(moved)
        verdicts.append(verdict)

    # Assert: the fourth is refused by the key; the address counted only three
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[-1].refused_by is LimitScope.KEY
    assert tats[0] == now + 3 * MICROS  # three intervals of the address's 1/s


def test_rate_when_not_positive_then_refused() -> None:
    with pytest.raises(ValueError, match="per_s > 0"):
        Rate(per_s=0, burst=1)
