"""The ingestion's fetch pacing: gather while orders come, wait for the first one once they stop.

Plain words: a paced consumer starts out waiting (its first order is fetched as soon as the broker
has it); a fetch that brought records makes the next ones gather for the configured bytes or
milliseconds; one that brought nothing makes them wait again; a consumer whose fetcher lacks the
two figures is refused with a reason, never paced silently wrong.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from oms.stream.fetch_pacing import (
    IDLE_MAX_WAIT_MS,
    IDLE_MIN_BYTES,
    FetchPacing,
    FetchPacingUnsupported,
)


def consumer() -> SimpleNamespace:
    """What aiokafka's consumer holds: a fetcher reading these two per fetch request."""
    return SimpleNamespace(_fetcher=SimpleNamespace(_fetch_min_bytes=7, _fetch_max_wait_ms=9))


def figures(held: SimpleNamespace) -> tuple[int, int]:
    return held._fetcher._fetch_min_bytes, held._fetcher._fetch_max_wait_ms


def test_pace_when_started_then_fetches_wait_for_the_first_record() -> None:
    held = consumer()
    pacing = FetchPacing(held, min_bytes=65_536, max_wait_ms=5)
    assert figures(held) == (IDLE_MIN_BYTES, IDLE_MAX_WAIT_MS)
    assert not pacing.gathering


def test_fetched_when_records_came_then_fetches_gather() -> None:
    held = consumer()
    pacing = FetchPacing(held, min_bytes=65_536, max_wait_ms=5)
    pacing.fetched(3)
    assert figures(held) == (65_536, 5)
    assert pacing.gathering


def test_fetched_when_nothing_came_then_fetches_wait_again() -> None:
    held = consumer()
    pacing = FetchPacing(held, min_bytes=65_536, max_wait_ms=5)
    pacing.fetched(1)
    pacing.fetched(0)
    assert figures(held) == (IDLE_MIN_BYTES, IDLE_MAX_WAIT_MS)
    assert not pacing.gathering


def test_fetched_when_records_keep_coming_then_the_figures_stay() -> None:
    held = consumer()
    pacing = FetchPacing(held, min_bytes=65_536, max_wait_ms=5)
    pacing.fetched(2)
    held._fetcher._fetch_max_wait_ms = 6  # nothing rewrites them while the mode holds
    pacing.fetched(4)
    assert figures(held) == (65_536, 6)


@pytest.mark.parametrize(
    "held",
    [
        SimpleNamespace(),
        SimpleNamespace(_fetcher=None),
        SimpleNamespace(_fetcher=SimpleNamespace(_fetch_min_bytes=1)),
    ],
)
def test_pace_when_the_fetcher_lacks_the_figures_then_refused(held: SimpleNamespace) -> None:
    with pytest.raises(FetchPacingUnsupported) as refused:
        FetchPacing(held, min_bytes=65_536, max_wait_ms=5)
    assert refused.value.code == "FETCH_PACING_UNSUPPORTED"
