"""Order books: the latest L2 snapshot per symbol, pure and synchronous.

The feed (simulated or the ``prices`` topic) sends whole snapshots, so a book is simply its
latest accepted ``Tick``. Replacing one immutable reference per update keeps ``apply`` O(1) and
lets readers keep a snapshot that never changes under them.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

from oms.domain.errors import UnknownInstrument
from oms.marketdata.tick import BookLevel, InvalidTick, Tick

_NO_LEVELS: tuple[BookLevel, ...] = ()
_TWO = Decimal(2)


class L2Book(Protocol):
    """Anything that shows bid and ask levels, best first: an ``OrderBook`` or a ``Tick``."""

    @property
    def bids(self) -> tuple[BookLevel, ...]:
        """Bid levels, highest price first."""
        ...

    @property
    def asks(self) -> tuple[BookLevel, ...]:
        """Ask levels, lowest price first."""
        ...

    @property
    def last_price(self) -> Decimal | None:
        """Price of the last trade (None: none yet)."""
        ...


class OrderBook:
    """The L2 book of one symbol: the latest tick applied to it, or nothing yet."""

    __slots__ = ("_tick", "symbol")

    def __init__(self, symbol: str) -> None:
        """An empty book for ``symbol``."""
        self.symbol = symbol
        self._tick: Tick | None = None

    def apply(self, tick: Tick) -> bool:
        """Take ``tick`` as the new snapshot; an older tick than the current one is ignored.

        Returns whether the book changed. Ignoring stale ticks makes a replayed ``prices``
        partition harmless: the book never steps back in time.
        """
        if tick.symbol != self.symbol:
            raise InvalidTick(
                f"tick for {tick.symbol} applied to the {self.symbol} book", code="SYMBOL_MISMATCH"
            )
        current = self._tick
        if current is not None and tick.ts < current.ts:
            return False
        self._tick = tick
        return True

    @property
    def tick(self) -> Tick | None:
        """The latest snapshot, whole, or ``None`` before the first tick."""
        return self._tick

    @property
    def last_price(self) -> Decimal | None:
        """Price of the last trade."""
        return None if self._tick is None else self._tick.last_price

    @property
    def best_bid(self) -> Decimal | None:
        """Highest bid."""
        return None if self._tick is None else self._tick.best_bid

    @property
    def best_ask(self) -> Decimal | None:
        """Lowest ask."""
        return None if self._tick is None else self._tick.best_ask

    @property
    def mid_price(self) -> Decimal | None:
        """Halfway between best bid and best ask, when both sides are quoted."""
        bid, ask = self.best_bid, self.best_ask
        if bid is None or ask is None:
            return None
        return (bid + ask) / _TWO

    @property
    def ts(self) -> float | None:
        """Time of the latest snapshot (epoch seconds)."""
        return None if self._tick is None else self._tick.ts

    @property
    def bids(self) -> tuple[BookLevel, ...]:
        """Bid levels, highest price first (empty before the first tick)."""
        return _NO_LEVELS if self._tick is None else self._tick.bids

    @property
    def asks(self) -> tuple[BookLevel, ...]:
        """Ask levels, lowest price first (empty before the first tick)."""
        return _NO_LEVELS if self._tick is None else self._tick.asks

    def depth(self, n: int) -> tuple[tuple[BookLevel, ...], tuple[BookLevel, ...]]:
        """The best ``n`` bid levels and the best ``n`` ask levels."""
        if n < 0:
            raise ValueError("depth must not be negative")
        return self.bids[:n], self.asks[:n]

    def snapshot(self, depth: int | None = None) -> Tick | None:
        """The latest tick, its levels cut to ``depth`` if given: an immutable value to hand out."""
        tick = self._tick
        if tick is None or depth is None:
            return tick
        bids, asks = self.depth(depth)
        return Tick(tick.symbol, tick.last_price, tick.best_bid, tick.best_ask, bids, asks, tick.ts)


class MarketData:
    """Every symbol's book. Pure and single-threaded: one actor owns an instance.

    With ``symbols`` given, only those symbols are listed and a tick for another one is refused
    with ``UnknownInstrument``; with ``symbols=None`` any symbol gets a book on its first tick.
    """

    __slots__ = ("_books", "_listed")

    def __init__(self, symbols: Iterable[str] | None = None) -> None:
        """Books for ``symbols`` (all empty), or an open listing when ``None``."""
        self._listed = symbols is not None
        self._books: dict[str, OrderBook] = {s: OrderBook(s) for s in symbols or ()}

    def apply(self, tick: Tick) -> bool:
        """Apply ``tick`` to its symbol's book; returns whether the book changed."""
        book = self._books.get(tick.symbol)
        if book is None:
            if self._listed:
                raise UnknownInstrument(f"{tick.symbol!r} is not a listed instrument")
            book = self._books[tick.symbol] = OrderBook(tick.symbol)
        return book.apply(tick)

    def book(self, symbol: str) -> OrderBook:
        """The book of ``symbol`` (empty if no tick came yet)."""
        book = self._books.get(symbol)
        if book is not None:
            return book
        if self._listed:
            raise UnknownInstrument(f"{symbol!r} is not a listed instrument")
        # Open listing: answer an empty book without storing it, so reads never grow the map.
        return OrderBook(symbol)

    def last_price(self, symbol: str) -> Decimal | None:
        """Last trade price of ``symbol``, ``None`` before its first tick."""
        return self.book(symbol).last_price

    def symbols(self) -> tuple[str, ...]:
        """The symbols that have a book."""
        return tuple(self._books)
