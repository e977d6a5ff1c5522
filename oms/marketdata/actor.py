"""The market-data actor: a thin message wrapper around ``MarketData`` and an optional feed.

All logic lives in the pure classes; this module only maps each message type to one call, so
the actor runtime can change without touching what the actor does. Replies are immutable
(``Tick``, ``Decimal``) because pykka hands them across threads without copying.

Protocol (``ref.tell`` or ``ref.ask`` with one of these; anything else raises ``UnknownMessage``):

- ``Tick``: apply it; if the book changed, forward the same tick to every subscriber. Answers
  whether the book changed. A tick for an unlisted symbol raises ``UnknownInstrument`` (ask to
  see it; inside a tell pykka stops the actor, so the stream layer validates first).
- ``AdvanceFeed(now)``: step the simulated feed once, apply and forward its ticks; answers them.
- ``GetBook(symbol, depth=None)``: the latest snapshot, cut to ``depth`` levels, or ``None``.
- ``GetLastPrice(symbol)``: the last trade price or ``None``.
- ``Subscribe(ref)`` / ``Unsubscribe(ref)``: start or stop forwarding ticks to an actor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pykka

from oms.marketdata.book import MarketData
from oms.marketdata.feed import SimulatedFeed
from oms.marketdata.tick import Tick


class UnknownMessage(TypeError):
    """An actor was sent a message that is not part of its protocol (a programming error)."""

    code = "UNKNOWN_MESSAGE"


class NoFeed(RuntimeError):
    """``AdvanceFeed`` was sent to a market-data actor started without a simulated feed."""

    code = "NO_FEED"


@dataclass(frozen=True, slots=True)
class AdvanceFeed:
    """Step the simulated feed once, stamping its ticks ``now`` (epoch seconds)."""

    now: float


@dataclass(frozen=True, slots=True)
class GetBook:
    """Ask for the latest snapshot of ``symbol``, cut to ``depth`` levels per side if given."""

    symbol: str
    depth: int | None = None


@dataclass(frozen=True, slots=True)
class GetLastPrice:
    """Ask for the last trade price of ``symbol``."""

    symbol: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Forward every accepted tick to ``subscriber`` (told, in arrival order)."""

    subscriber: pykka.ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Stop forwarding ticks to ``subscriber``."""

    subscriber: pykka.ActorRef[Any]


class MarketDataActor(pykka.ThreadingActor):
    """Owns one ``MarketData`` (and optionally a ``SimulatedFeed``); see the module protocol."""

    def __init__(self, market_data: MarketData, feed: SimulatedFeed | None = None) -> None:
        """Wrap ``market_data``; ``feed`` is what ``AdvanceFeed`` steps."""
        super().__init__()
        self._market_data = market_data
        self._feed = feed
        self._subscribers: list[pykka.ActorRef[Any]] = []

    def on_receive(self, message: Any) -> Any:
        """Dispatch ``message`` by its type; an unknown type is an error, never ignored."""
        handler = _HANDLERS.get(type(message))
        if handler is None:
            raise UnknownMessage(f"MarketDataActor does not handle {type(message).__name__}")
        return handler(self, message)

    def _on_tick(self, tick: Tick) -> bool:
        changed = self._market_data.apply(tick)
        if changed:
            self._forward(tick)
        return changed

    def _on_advance_feed(self, message: AdvanceFeed) -> list[Tick]:
        if self._feed is None:
            raise NoFeed("this market-data actor was started without a simulated feed")
        ticks = self._feed.step(message.now)
        for tick in ticks:
            self._on_tick(tick)
        return ticks

    def _on_get_book(self, message: GetBook) -> Tick | None:
        return self._market_data.book(message.symbol).snapshot(message.depth)

    def _on_get_last_price(self, message: GetLastPrice) -> Decimal | None:
        return self._market_data.last_price(message.symbol)

    def _on_subscribe(self, message: Subscribe) -> None:
        if message.subscriber not in self._subscribers:
            self._subscribers.append(message.subscriber)

    def _on_unsubscribe(self, message: Unsubscribe) -> None:
        if message.subscriber in self._subscribers:
            self._subscribers.remove(message.subscriber)

    def _forward(self, tick: Tick) -> None:
        for subscriber in tuple(self._subscribers):
            try:
                subscriber.tell(tick)
            except pykka.ActorDeadError:
                # A stopped subscriber can never read again: drop it instead of failing the feed.
                self._subscribers.remove(subscriber)


# The protocol as a table: one handler per message type, nothing else is accepted.
_HANDLERS: dict[type[Any], Callable[[MarketDataActor, Any], Any]] = {
    Tick: MarketDataActor._on_tick,
    AdvanceFeed: MarketDataActor._on_advance_feed,
    GetBook: MarketDataActor._on_get_book,
    GetLastPrice: MarketDataActor._on_get_last_price,
    Subscribe: MarketDataActor._on_subscribe,
    Unsubscribe: MarketDataActor._on_unsubscribe,
}
