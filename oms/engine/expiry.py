"""The GTD timer: when each good-till-date order's time comes, it is told to expire.

A heap of ``(expire_at, order_id, account_id)`` and one daemon thread that wakes when the
earliest is due (or every ``poll_s`` at the latest, so a clock that jumps is noticed) and hands
the due ones to ``submit`` as ``ExpireOrder`` commands. What it holds is not durable and need
not be: recovery schedules every stored open GTD order again (one due while the process was down
expires at once), and a command for an order that ended meanwhile changes nothing (its id,
``expire:<order_id>``, is one per order).
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable, Sequence

from oms.domain.commands import ExpireOrder

logger = logging.getLogger(__name__)


class ExpiryTimer:
    """Due GTD orders become ``ExpireOrder`` commands, handed to ``submit``."""

    def __init__(
        self,
        clock: Callable[[], float],
        submit: Callable[[Sequence[ExpireOrder]], None],
        *,
        poll_s: float = 0.25,
    ) -> None:
        self._clock = clock
        self._submit = submit
        self._poll_s = poll_s
        self._heap: list[tuple[float, str, str]] = []
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def schedule(self, order_id: str, account_id: str, expire_at: float) -> None:
        """Expire ``order_id`` at ``expire_at`` (epoch seconds, the engine's clock)."""
        with self._wake:
            heapq.heappush(self._heap, (expire_at, order_id, account_id))
            if self._heap[0][1] == order_id:
                self._wake.notify()

    def clear(self) -> None:
        """Forget every scheduled expiry (the replica's share of the accounts changed)."""
        with self._wake:
            self._heap.clear()

    def pending(self) -> int:
        """How many expiries wait."""
        with self._wake:
            return len(self._heap)

    def fire_due(self) -> int:
        """Submit every expiry due by now; how many."""
        now = self._clock()
        due: list[ExpireOrder] = []
        with self._wake:
            heap = self._heap
            while heap and heap[0][0] <= now:
                _, order_id, account_id = heapq.heappop(heap)
                due.append(ExpireOrder(f"expire:{order_id}", order_id, account_id, now))
        if due:
            try:
                self._submit(due)
            except BaseException:
                with self._wake:  # not handed on: due again next round
                    for command in due:
                        heapq.heappush(
                            self._heap, (command.at, command.order_id, command.account_id)
                        )
                raise
        return len(due)

    def start(self) -> None:
        """Start the timer's thread."""
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="oms-expiry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (what is scheduled stays: recovery would schedule it again anyway)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                wait = self._poll_s
                if self._heap:
                    wait = min(wait, max(self._heap[0][0] - self._clock(), 0.0))
                self._wake.wait(wait)
                if self._stopping:
                    return
            try:
                self.fire_due()
            except Exception:
                logger.exception("could not hand due expiries to the engine")
