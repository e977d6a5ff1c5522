"""Durations: a histogram's counts, as Prometheus reads them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.durations import Durations


def test_observe_when_a_duration_is_recorded_then_counts_it_under_the_first_bound_it_fits() -> None:
    durations = Durations((0.01, 0.05))

    for seconds in (0.01, 0.011, 0.05, 0.2):
        durations.observe(seconds)

    assert durations.cumulative() == [("0.01", 1), ("0.05", 3), ("+Inf", 4)]
    assert durations.total_s == pytest.approx(0.271)


def test_durations_when_bounds_do_not_increase_then_refuses_them() -> None:
    with pytest.raises(ValueError, match="increasing"):
        Durations((0.05, 0.01))


# Invariant, in words: the buckets never decrease, the last holds every duration, and each
# bucket holds exactly the durations at or under its bound.
@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=50))
def test_cumulative_when_durations_observed_then_each_bucket_counts_those_at_or_under_it(
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


def test_observe_many_when_a_batch_shared_one_wait_then_counts_it_once_per_order() -> None:
    durations = Durations((0.01, 0.05))

    durations.observe_many(0.02, 3)

    assert durations.cumulative() == [("0.01", 0), ("0.05", 3), ("+Inf", 3)]
    assert durations.total_s == pytest.approx(0.06)
