"""The collector settings of a process that serves, the engine's and its doors' (oms.gc_tuning.tune_gc).

Invariants, in plain words: after tuning, only the young generation is scanned, because what
survives a collection is frozen; an object frozen that way is still freed by its reference count.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from oms.gc_tuning import _freeze_survivors, tune_gc


class _Survivor:
    pass


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """The test process's collector as it was, whatever the test tuned."""
    thresholds = gc.get_threshold()
    yield
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_collection_when_survivors_are_frozen_then_they_leave_the_scans_and_still_free() -> None:
    # Arrange
    tune_gc(1_000)
    frozen_before = gc.get_freeze_count()
    survivor = _Survivor()
    alive = weakref.ref(survivor)

    # Act: a young collection the survivor lives through
    gc.collect(0)

    # Assert: frozen (out of every later scan), yet freed once its last reference goes
    assert gc.get_threshold()[0] == 1_000
    assert gc.get_freeze_count() > frozen_before
    del survivor
    assert alive() is None


@pytest.mark.usefixtures("restored_gc")
def test_tuning_when_survivors_are_not_frozen_then_the_generations_work_as_usual() -> None:
    # Act
    tune_gc(5_000, freeze_survivors=False)

    # Assert
    assert gc.get_threshold()[0] == 5_000
    assert _freeze_survivors not in gc.callbacks
