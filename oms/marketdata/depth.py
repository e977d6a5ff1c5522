"""An exchange's order book kept from a snapshot and diff-depth events, never across a gap.

Binance's documented procedure for a local book: buffer the stream's events, fetch a REST
snapshot (``lastUpdateId``), drop the events it already covers, and from then on every event
must continue where the previous one ended. An event covers update ids ``U``..``u`` and carries
each changed level's new absolute quantity, so applying one that overlaps the book is harmless,
while one that starts past ``last_id + 1`` means updates were lost: the book is then unknown,
and ``SequenceGap`` says so instead of letting a broken book become a tick. The caller fetches
a snapshot again (``load``) while the stream keeps buffering.

Pure and synchronous: one feed task owns an instance.
"""

from __future__ import annotations

from decimal import Decimal

from oms.domain.errors import DomainError
from oms.marketdata.binance import DepthSnapshot, DepthUpdate, Level
from oms.marketdata.tick import BookLevel, Tick

# Events kept while no snapshot is loaded. At 10 events a second this is well over a minute: a
# snapshot that takes longer is retried anyway, and the oldest events are the ones it covers.
MAX_PENDING = 1000


class SequenceGap(DomainError):
    """Diff-depth updates were lost between the book and this event: resync from a snapshot."""

    code = "FEED_SEQUENCE_GAP"


class DepthBook:
    """The full book of one exchange symbol, synced from a snapshot (``load``) and events."""

    __slots__ = ("_asks", "_bids", "_pending", "exchange_symbol", "last_id")

    def __init__(self, exchange_symbol: str) -> None:
        """An empty book that buffers events until its first snapshot."""
        self.exchange_symbol = exchange_symbol
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._pending: list[DepthUpdate] = []
        self.last_id: int | None = None  # None: no snapshot yet (or a gap since)

    @property
    def synced(self) -> bool:
        """Whether the book holds a snapshot and every event since."""
        return self.last_id is not None

    def reset(self) -> None:
        """Forget the book: events are buffered again until the next snapshot."""
        self._bids.clear()
        self._asks.clear()
        self._pending.clear()
        self.last_id = None

    def on_update(self, update: DepthUpdate) -> bool:
        """Apply ``update`` (or buffer it before a snapshot); whether the book changed.

        Raises ``SequenceGap`` (the book reset, ``update`` kept for the next snapshot) when
        updates between the book and ``update`` are missing.
        """
        if self.last_id is None:
            self._pending.append(update)
            del self._pending[:-MAX_PENDING]
            return False
        if update.last_id <= self.last_id:
            return False  # the book already has it
        if update.first_id > self.last_id + 1:
            missing_from = self.last_id + 1
            self.reset()
            self._pending.append(update)
            raise SequenceGap(
                f"{self.exchange_symbol}: updates {missing_from}..{update.first_id - 1} are missing"
            )
        _apply(self._bids, update.bids)
        _apply(self._asks, update.asks)
        self.last_id = update.last_id
        return True

    def load(self, snapshot: DepthSnapshot) -> None:
        """Take ``snapshot`` as the book, then the buffered events after it, in order.

        Raises ``SequenceGap`` when the snapshot is older than the first buffered event that
        follows it (fetch a newer one).
        """
        pending = self._pending
        self._pending = []
        self._bids = {price: qty for price, qty in snapshot.bids if qty}
        self._asks = {price: qty for price, qty in snapshot.asks if qty}
        self.last_id = snapshot.last_id
        for update in pending:
            self.on_update(update)

    def levels(self, depth: int) -> tuple[tuple[BookLevel, ...], tuple[BookLevel, ...]]:
        """The best ``depth`` bid levels (highest first) and ask levels (lowest first)."""
        bids = sorted(self._bids.items(), reverse=True)[:depth]
        asks = sorted(self._asks.items())[:depth]
        return (
            tuple(BookLevel(price, qty) for price, qty in bids),
            tuple(BookLevel(price, qty) for price, qty in asks),
        )

    def tick(self, symbol: str, last_price: Decimal | None, ts: float, depth: int) -> Tick | None:
        """The book as our ``Tick`` of ``symbol``; None until it is synced and has traded.

        A tick needs a last trade price and there is no honest one before the first trade (a
        mid price would be a price nobody paid). A crossed book raises ``InvalidTick``: the
        caller resyncs rather than publish it.
        """
        if self.last_id is None or last_price is None:
            return None
        bids, asks = self.levels(depth)
        return Tick(
            symbol,
            last_price,
            bids[0].price if bids else None,
            asks[0].price if asks else None,
            bids,
            asks,
            ts,
        )


def _apply(side: dict[Decimal, Decimal], levels: tuple[Level, ...]) -> None:
    for price, quantity in levels:
        if quantity:
            side[price] = quantity
        else:
            side.pop(price, None)
