"""Durations: a histogram's counts, as Prometheus reads them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.durations import Durations


def test_a_duration_is_counted_under_the_first_bound_it_does_not_exceed() -> None:
    durations = Durations((0.01, 0.05))

    for seconds in (0.01, 0.011, 0.05, 0.2):
        durations.observe(seconds)

    assert durations.cumulative() == [("0.01", 1), ("0.05", 3), ("+Inf", 4)]
    assert durations.total_s == pytest.approx(0.271)


def test_bounds_that_do_not_increase_are_refused() -> None:
    with pytest.raises(ValueError, match="increasing"):
        Durations((0.05, 0.01))


# Invariant, in words: the buckets never decrease, the last holds every duration, and each
# bucket holds exactly the durations at or under its bound.
@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=50))
def test_cumulative_buckets_count_every_duration_at_or_under_their_bound(
    seconds: list[float],
) -> None:
    durations = Durations()
    for value in seconds:
        durations.observe(value)

    buckets = durations.cumulative()

    counts = [count for _, count in buckets]
    assert counts == sorted(counts)
    assert buckets[-1] == ("+Inf", len(seconds))
    assert durations.count == len(seconds)
    for (bound, count), limit in zip(buckets, durations.bounds, strict=False):
        assert count == sum(1 for value in seconds if value <= limit), bound
