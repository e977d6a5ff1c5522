"""How long the garbage collector stopped the process, per generation: a histogram ``/metrics``
exports as ``oms_gc_pause_seconds{generation}``.

A collection holds the GIL from start to end, so while it runs no thread of the process moves:
the event loop, the engine's dispatcher and the store's writer all wait. Those pauses were the
Kafka path's p99 before ``oms.gc_tuning.tune_gc`` bounded them (issue 19); this is how an
operator sees that they stay bounded.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from oms.durations import Durations

__all__ = ["PAUSES", "record_gc_pauses"]

# From a young collection of a few thousand objects to a full one over a large heap.
PAUSE_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)

# Written only by the collector's callback: collections never overlap (each holds the GIL
# throughout and the collector does not re-enter), so one writer at a time, as Durations needs.
PAUSES: dict[int, Durations] = {generation: Durations(PAUSE_BOUNDS_S) for generation in (0, 1, 2)}
_began = [0.0]


def _time_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _began[0] = time.perf_counter()
        return
    PAUSES[info["generation"]].observe(time.perf_counter() - _began[0])


def record_gc_pauses() -> None:
    """Time every collection from now on (once per process; later calls change nothing)."""
    if _time_collection not in gc.callbacks:
        # First, so the time covers the other callbacks' start phase; at the stop it runs
        # first too, so what others do then (tune_gc's freeze, a list splice) is not in it.
        gc.callbacks.insert(0, _time_collection)
