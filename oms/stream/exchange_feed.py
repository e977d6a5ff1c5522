"""Binance spot's public WebSocket (diff depth and trades) of one symbol, as our ticks.

Why Binance's own streams through aiohttp rather than ccxt's ``watch_order_book``: ccxt.pro
needs ``load_markets`` (a REST ``exchangeInfo`` of every listed pair) before it subscribes and
rebuilds its URLs from per-exchange templates, so pointing it at 127.0.0.1 means faking far
more of the exchange than the feed uses, and its reconnect and resync happen out of sight. The
raw streams are two documented URLs (``/stream?streams=<s>@depth@100ms/<s>@trade`` and
``GET /api/v3/depth``) that a test serves from recorded frames, and the resync on a gap is ours
to test (``oms.marketdata.depth``).

Per connection: every depth event goes into the local book (buffered until the REST snapshot
is loaded, fetched on the first event); a trade sets the last price; each change that leaves a
synced book with a last price is published as a ``Tick`` stamped with this process's clock at
receipt (judged against by nobody: staleness is the engine's own clock, see
``oms.marketdata.freshness``). A gap in the update ids, a malformed frame or a crossed book
resets the book and fetches a snapshot again, publishing nothing until it is whole. A closed or
failed connection, or one silent for ``market_data_idle_s``, is made again after a back-off
(``oms.retrying.backoff_s``: doubling from ``market_data_reconnect_initial_s`` to
``market_data_reconnect_max_s``, reset once a connection has published), and resubscribes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import aiohttp
import orjson

from oms.config import Settings
from oms.marketdata import InvalidTick, Tick
from oms.marketdata.binance import FeedFrameError, Trade, parse_event, parse_snapshot
from oms.marketdata.depth import DepthBook, SequenceGap
from oms.retrying import backoff_s

logger = logging.getLogger(__name__)

Publish = Callable[[Tick], Awaitable[None]]
BOOK_DEPTH = 5  # levels a side in each tick, as the simulated feed sends
SNAPSHOT_LIMIT = 100  # levels a side of the REST snapshot (Binance's weight 5 tier)


@dataclass
class FeedStats:
    """What the exchange feeds of this replica did, for ``/metrics``, by our symbol."""

    connects: dict[str, int] = field(default_factory=dict)
    disconnects: dict[str, int] = field(default_factory=dict)
    resyncs: dict[str, int] = field(default_factory=dict)
    published: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def count(figures: dict[str, int], symbol: str) -> None:
        """One more of ``figures`` for ``symbol``."""
        figures[symbol] = figures.get(symbol, 0) + 1


class _Resync(Exception):
    """The book cannot be trusted: fetch a snapshot."""


class BinanceSymbolFeed:
    """One of our symbols fed from its Binance pair, until cancelled."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        *,
        symbol: str,
        exchange_symbol: str,
        publish: Publish,
        stats: FeedStats,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Feed ``symbol`` from ``exchange_symbol`` at the settings' URLs through ``publish``."""
        self.symbol = symbol
        self.exchange_symbol = exchange_symbol.upper()
        stream = self.exchange_symbol.lower()
        base = settings.market_data_url.rstrip("/")
        self.stream_url = f"{base}/stream?streams={stream}@depth@100ms/{stream}@trade"
        rest = settings.market_data_rest_url.rstrip("/")
        self.snapshot_url = f"{rest}/api/v3/depth"
        self._settings = settings
        self._session = session
        self._publish = publish
        self._stats = stats
        self._clock = clock
        self._book = DepthBook(self.exchange_symbol)
        self._last_price: Decimal | None = None
        # Snapshots that did not sync the book in a row, and when the next may be fetched: a
        # snapshot older than the stream is fetched again, but not on every event.
        self._snapshot_failures = 0
        self._snapshot_after = 0.0

    async def run(self) -> None:
        """Connect, stream, and reconnect after a back-off, for ever."""
        settings = self._settings
        failures = 0
        while True:
            try:
                published = await self._connection()
                why = "closed by the exchange"
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                published = False
                why = repr(error)
            FeedStats.count(self._stats.disconnects, self.symbol)
            failures = 1 if published else failures + 1
            pause = backoff_s(
                failures,
                initial_s=settings.market_data_reconnect_initial_s,
                max_s=settings.market_data_reconnect_max_s,
            )
            logger.warning(
                "market data %s: connection lost (%s); reconnecting in %.2fs",
                self.symbol, why, pause,
            )  # fmt: skip
            await asyncio.sleep(pause)

    async def _connection(self) -> bool:
        """One connection, until it ends; whether it published anything."""
        published = False
        # What was missed while away is unknown: a snapshot again, and no last price until
        # the first trade of this connection (the old one may be long gone).
        self._book.reset()
        self._last_price = None
        async with self._session.ws_connect(
            self.stream_url,
            timeout=aiohttp.ClientWSTimeout(ws_receive=self._settings.market_data_idle_s),
            autoping=True,
        ) as ws:
            FeedStats.count(self._stats.connects, self.symbol)
            logger.info("market data %s: subscribed to %s", self.symbol, self.stream_url)
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break  # closed, closing or an error: reconnect
                try:
                    tick = await self._on_frame(message.data)
                except _Resync as why:
                    # The book has reset itself (keeping a gap's event for the snapshot).
                    FeedStats.count(self._stats.resyncs, self.symbol)
                    logger.warning("market data %s: resync from a snapshot: %s", self.symbol, why)
                    continue
                if tick is not None:
                    await self._publish(tick)
                    FeedStats.count(self._stats.published, self.symbol)
                    published = True
        return published

    async def _on_frame(self, text: str) -> Tick | None:
        """Apply one frame; the tick to publish, if the book changed and is whole."""
        try:
            frame = orjson.loads(text)
            event = parse_event(frame) if isinstance(frame, dict) else None
        except (orjson.JSONDecodeError, FeedFrameError) as error:
            self._book.reset()  # the frame may have been an update: the book is unknown
            raise _Resync(f"unreadable frame: {error}") from None
        if event is None or event.exchange_symbol != self.exchange_symbol:
            return None
        book = self._book
        if isinstance(event, Trade):
            self._last_price = event.price
        else:
            try:
                changed = book.on_update(event)
            except SequenceGap as gap:
                raise _Resync(str(gap)) from None
            if not book.synced and time.monotonic() >= self._snapshot_after:
                await self._load_snapshot()
                changed = book.synced
            if not changed:
                return None  # buffered, or already in the book: nothing new to say
        try:
            return book.tick(self.symbol, self._last_price, self._clock(), BOOK_DEPTH)
        except InvalidTick as error:
            self._book.reset()
            raise _Resync(f"{error.code}: {error}") from None

    async def _load_snapshot(self) -> None:
        """Fetch the REST snapshot and load it. One that does not sync the book (older than
        the stream, unreadable) leaves it buffering; the next is fetched after a back-off. A
        failed request raises (``aiohttp.ClientError``): the connection is made again."""
        settings = self._settings
        params = {"symbol": self.exchange_symbol, "limit": str(SNAPSHOT_LIMIT)}
        timeout = aiohttp.ClientTimeout(total=settings.market_data_idle_s)
        async with self._session.get(self.snapshot_url, params=params, timeout=timeout) as answer:
            answer.raise_for_status()
            raw = await answer.read()
        try:
            self._book.load(parse_snapshot(orjson.loads(raw)))
        except (orjson.JSONDecodeError, FeedFrameError, SequenceGap) as error:
            self._snapshot_failures += 1
            pause = backoff_s(
                self._snapshot_failures,
                initial_s=settings.market_data_reconnect_initial_s,
                max_s=settings.market_data_reconnect_max_s,
            )
            self._snapshot_after = time.monotonic() + pause
            FeedStats.count(self._stats.resyncs, self.symbol)
            logger.warning(
                "market data %s: snapshot did not sync the book (%s); next in %.2fs",
                self.symbol, error, pause,
            )  # fmt: skip
            return
        self._snapshot_failures = 0
        logger.info("market data %s: book synced at update %s", self.symbol, self._book.last_id)
