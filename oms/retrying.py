"""The one retry policy of the process: retry a step until it succeeds, backing off exponentially.

Used wherever giving up would lose something accepted (the ingestion's durability barrier, the
store's writes and recovery-log inserts): such a step is retried for as long as it fails, each
failure reported to the caller (for its counters and logs: the caller decides how often to log,
so an outage is logged once, not once per attempt), the pause doubling from ``initial_s`` up to
``max_s`` (equal figures give a fixed pause). Built on tenacity, so every such loop shares one
tested implementation.

A retry that is not a loop (the directory re-asks the store for an order by scheduling a new
load, its engine thread must not block) takes its pause from ``backoff_s``: the same tenacity
wait, so every back-off of the process follows one curve.

The one step that may give up is a start's topic creation (``oms.stream.topics``: a replica
must not start without its topics): tenacity's own loop with a stop after a few attempts, on
the same doubling curve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

__all__ = ["backoff_s", "retry_until_done"]

T = TypeVar("T")

OnFailure = Callable[[BaseException, int, float], None]
"""Told of each failure: the error, the attempt that failed (0 first) and the pause before the next."""


def backoff_s(failures: int, *, initial_s: float, max_s: float) -> float:
    """The pause after the ``failures``-th failure in a row (1 first): ``initial_s``, doubling,
    capped at ``max_s``; the pause ``retry_until_done`` takes after as many failures (tenacity's
    ``wait_exponential``, checked equal in tests/unit/test_retrying.py)."""
    return float(min(max_s, initial_s * 2 ** (failures - 1)))


async def retry_until_done(
    step: Callable[[], Awaitable[T]],
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    initial_s: float,
    max_s: float,
    on_failure: OnFailure,
) -> T:
    """``await step()`` until it returns; an error other than ``retry_on`` propagates at once.

    The first attempt runs on its own: tenacity's loop (a retrying object, its state, a
    future, a condition and a lock, all in reference cycles) is built only once a step has
    failed. On the hot path (every store write, every commit barrier's steps) those cycles were
    most of the garbage the collector had to find: 4,500 loops in a few seconds of load, and
    young collections of 40-160 ms with the engine's thresholds (issue 19).
    """
    try:
        return await step()
    except retry_on as error:
        pause = backoff_s(1, initial_s=initial_s, max_s=max_s)
        on_failure(error, 0, pause)
    await asyncio.sleep(pause)

    def report(state: RetryCallState) -> None:
        outcome, action = state.outcome, state.next_action
        assert outcome is not None  # tenacity sets both before a sleep
        assert action is not None
        error = outcome.exception()
        assert error is not None
        # Tenacity counts from 1 again after the first attempt above: that one was attempt 0.
        on_failure(error, state.attempt_number, action.sleep)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(retry_on),
        # The curve goes on from the second failure: twice the first pause, doubling.
        wait=wait_exponential(multiplier=initial_s * 2, max=max_s),
        before_sleep=report,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await step()
    raise AssertionError("unreachable: tenacity retries until the step returns or raises")
