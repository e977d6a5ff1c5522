"""Stale-feed detection: when each symbol's book last moved, on its owner's clock.

Judged where the book lives (the venue actor, on the engine's dispatcher) and by the clock it is
given, not by the ticks' own timestamps: an exchange's clock, or the publishing replica's, may
be skewed from this one, and a feed that died leaves no tick to compare with. A symbol with no
tick yet is not stale here: it has no price at all, and risk refuses a MARKET order on it with
``NO_MARKET_PRICE`` already.

Written only on the dispatcher thread; read from any thread (the REST door, ``/metrics``): each
entry is one float swapped whole, so a reader sees an old or a new time, never a torn one.
"""

from __future__ import annotations


class Freshness:
    """The last update time of every symbol, and whether it is older than ``stale_s``."""

    __slots__ = ("_seen", "stale_s")

    def __init__(self, stale_s: float) -> None:
        """A symbol is stale after ``stale_s`` seconds without an update (0: never)."""
        if stale_s < 0:
            raise ValueError("stale_s must not be negative")
        self.stale_s = stale_s
        self._seen: dict[str, float] = {}

    def saw(self, symbol: str, now: float) -> None:
        """``symbol``'s book changed at ``now``."""
        self._seen[symbol] = now

    def age(self, symbol: str, now: float) -> float | None:
        """Seconds since ``symbol``'s last update (None: none yet)."""
        seen = self._seen.get(symbol)
        return None if seen is None else max(0.0, now - seen)

    def stale(self, symbol: str, now: float) -> bool:
        """Whether ``symbol`` had updates and then none for longer than ``stale_s``."""
        if not self.stale_s:
            return False
        seen = self._seen.get(symbol)
        return seen is not None and now - seen > self.stale_s

    def ages(self, now: float) -> dict[str, float]:
        """Every symbol seen so far and its age."""
        return {symbol: max(0.0, now - seen) for symbol, seen in list(self._seen.items())}
