"""``iso_time`` formats the second once and must say exactly what ``datetime`` says."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from oms.api.encoding import iso_time


def _datetime_says(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False, allow_infinity=False))
def test_iso_time_when_given_any_epoch_time_then_writes_it_as_datetime_does(epoch_s: float) -> None:
    # Invariant: the cached-second formatting never differs from datetime's, rounding included.
    assert iso_time(epoch_s) == _datetime_says(epoch_s)


def test_iso_time_when_the_fraction_rounds_up_then_moves_to_the_next_second() -> None:
    assert iso_time(1_767_225_599.9999996) == "2026-01-01T00:00:00.000000Z"
