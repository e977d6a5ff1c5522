"""Timing the garbage collector's pauses (oms.gc_pauses)."""

from __future__ import annotations

import gc

from oms.gc_pauses import PAUSES, record_gc_pauses


def test_collection_when_pauses_are_recorded_then_each_counts_once_in_its_generation() -> None:
    # Arrange: recording asked for twice (the engine and a test may both ask)
    record_gc_pauses()
    record_gc_pauses()
    full_before, young_before = PAUSES[2].count, PAUSES[0].count

    # Act
    gc.collect()

    # Assert
    assert PAUSES[2].count == full_before + 1
    assert PAUSES[0].count >= young_before
    assert PAUSES[2].total_s > 0
