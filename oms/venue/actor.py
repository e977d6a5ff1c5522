"""The venue actor: a thin message wrapper around a ``Matcher`` and the books it matches against.

The actor keeps its own ``MarketData`` (fed by the ticks it is sent, e.g. as a subscriber of the
market-data actor), so an arrival is matched against the latest book this actor saw, on its own
thread, without asking another actor. All logic is in ``Matcher``; this module only maps message
types to calls.

Protocol (``tell`` or ``ask``; anything else raises ``UnknownMessage``):

- ``Tick``: update the book, fill the resting orders it crosses; if there were executions and
  a ``reports_to`` actor was given, tell it ``ExecutionsReported``. Answers the executions.
- ``SubmitOrder(order)``: match an accepted order now; answers its ``MatchResult`` (ask it).
- ``CancelResting(order_id)``: answers the quantity removed, or ``None`` if it was not resting.
- ``CountResting()``: answers how many orders rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pykka

from oms.marketdata.actor import UnknownMessage
from oms.marketdata.book import MarketData
from oms.marketdata.tick import Tick
from oms.venue.matcher import Matcher
from oms.venue.model import Execution, MatchResult, VenueOrder


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Match an accepted order against the current book (resting a GTC LIMIT remainder)."""

    order: VenueOrder


@dataclass(frozen=True, slots=True)
class CancelResting:
    """Take a resting order out of the index."""

    order_id: str


@dataclass(frozen=True, slots=True)
class CountResting:
    """Ask how many orders rest."""


@dataclass(frozen=True, slots=True)
class ExecutionsReported:
    """What the venue tells ``reports_to`` after a tick filled resting orders."""

    executions: tuple[Execution, ...]
    ts: float


class VenueActor(pykka.ThreadingActor):
    """Owns one ``Matcher`` and the books it matches against; see the module protocol."""

    def __init__(
        self,
        matcher: Matcher,
        market_data: MarketData,
        reports_to: pykka.ActorRef[Any] | None = None,
    ) -> None:
        """Wrap ``matcher``; ``reports_to`` receives the executions ticks cause."""
        super().__init__()
        self._matcher = matcher
        self._market_data = market_data
        self._reports_to = reports_to

    def on_receive(self, message: Any) -> Any:
        """Dispatch ``message`` by its type; an unknown type is an error, never ignored."""
        handler = _HANDLERS.get(type(message))
        if handler is None:
            raise UnknownMessage(f"VenueActor does not handle {type(message).__name__}")
        return handler(self, message)

    def _on_tick(self, tick: Tick) -> list[Execution]:
        if not self._market_data.apply(tick):
            return []  # a stale tick is not the market any more: it fills nothing
        executions = self._matcher.on_tick(tick)
        if executions and self._reports_to is not None:
            self._reports_to.tell(ExecutionsReported(tuple(executions), tick.ts))
        return executions

    def _on_submit(self, message: SubmitOrder) -> MatchResult:
        order = message.order
        return self._matcher.on_arrival(order, self._market_data.book(order.symbol))

    def _on_cancel(self, message: CancelResting) -> Decimal | None:
        return self._matcher.cancel(message.order_id)

    def _on_count(self, _message: CountResting) -> int:
        return self._matcher.resting_count()


# The protocol as a table: one handler per message type, nothing else is accepted.
_HANDLERS: dict[type[Any], Callable[[VenueActor, Any], Any]] = {
    Tick: VenueActor._on_tick,
    SubmitOrder: VenueActor._on_submit,
    CancelResting: VenueActor._on_cancel,
    CountResting: VenueActor._on_count,
}
