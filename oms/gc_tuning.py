"""Garbage-collector settings for a process that serves: the engine, which holds many
long-lived objects, and each door, whose long-lived objects are its libraries.

A door holds no orders, but Python's default thresholds (700, 10, 10) scanned its start-up heap
(aiohttp, aiokafka, redis, pymongo, pydantic) again and again: over REST at 1,000 orders/s the
doors and the engine paused over 10 ms 8-18 times in 40 s; with the doors tuned as the engine
is, 3-4 times, and the doors' throughput rose by a fifth (README "Speed", session 16).
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["tune_gc"]


def tune_gc(young_threshold: int = 20_000, *, freeze_survivors: bool = True) -> None:
    """Collect young objects only, in short pauses; call once at start-up, after the
    long-lived set-up is built (it is frozen out of every scan).

    An engine under load holds hundreds of thousands of long-lived objects: orders in flight,
    the store's recent terminal orders with their events (``oms.store.batcher``), risk's
    memory of finished orders (``oms.risk.records.Recent``). CPython's generations scan them
    again and again: measured under ``bench/e2e.py --via kafka`` (issue 19), young collections
    at a threshold of 200,000 paused every thread for 44-62 ms every few seconds and found
    nothing to free, and a full one over ~720,000 objects paused 350-400 ms: those pauses were
    most of the p99.

    With ``freeze_survivors`` every collection ends by freezing what survived it (``gc.freeze``:
    moved to the permanent generation, never scanned again; freed as usual when its reference
    count drops), so only the young generation is ever scanned and a pause is bounded by
    ``young_threshold`` (5.9-18.0 ms at 20,000 here). The price: a reference cycle that forms
    among objects older than one young collection is not reclaimed. Measured by unfreezing and
    collecting at exit after 100,000 orders over Kafka and 30,000 over REST: 385-406 cyclic
    objects found, against 521-527 with the plain thresholds: nothing accumulates (the process
    breaks its own cycles: tenacity's retry loop is built only after a failure,
    ``oms.retrying``; a stopped actor drops its inbox).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, 10, 10)
    if freeze_survivors and _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)


def _freeze_survivors(phase: str, _info: dict[str, Any]) -> None:
    if phase == "stop":
        gc.freeze()
