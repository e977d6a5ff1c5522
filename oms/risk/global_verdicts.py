"""Redis's answers on the firm-wide caps, handed from the event loop to the risk book.

The engine's dispatcher thread never waits on Redis: the ingestion reserves each order against
the caps on its event loop (``oms.engine.global_gate``) before handing the order to the engine,
and leaves the answer here; the book takes it when it accepts the order. A plain dict between
two threads: one ``put`` and one ``pop`` per order, each a single step under the GIL.
"""

from __future__ import annotations

from oms.domain.reasons import RejectReason

__all__ = ["GlobalVerdicts"]


class GlobalVerdicts:
    """Per order about to reach risk: reserved (None) or the cap it would pass."""

    __slots__ = ("_verdicts", "active")

    def __init__(self) -> None:
        # False while no firm-wide cap is set: the book then asks nothing (and costs nothing).
        self.active = False
        self._verdicts: dict[str, RejectReason | None] = {}

    def put(self, order_id: str, verdict: RejectReason | None) -> None:
        """Redis's answer for ``order_id`` (the event loop)."""
        self._verdicts[order_id] = verdict

    def take(self, order_id: str) -> RejectReason | None:
        """The answer for ``order_id``, once (the engine thread). An order nobody reserved for
        (one resumed by a recovery, or Redis silent) is refused: fail closed."""
        return self._verdicts.pop(order_id, RejectReason.GLOBAL_LIMITS_UNAVAILABLE)

    def forget(self, order_id: str) -> None:
        """Drop an answer the book never took (the order did not reach risk)."""
        self._verdicts.pop(order_id, None)

    def waiting(self, order_id: str) -> bool:
        """True while the answer for ``order_id`` has not been taken."""
        return order_id in self._verdicts

    def pending(self) -> int:
        """Answers not taken yet."""
        return len(self._verdicts)
