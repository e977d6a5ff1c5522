"""The market-data publisher of a replica: ticks on ``prices`` for the symbols it holds a lease on.

Every replica runs one; ``SymbolLeases`` decides which symbols each publishes, so each symbol
has one publisher however many replicas run (``oms.stream.feed_leases``). Gaining a symbol's
lease starts its source (the simulated walk or the exchange's stream); losing it cancels that
source, and every tick is checked against the lease's deadline on its way out, so a replica
that lost touch with Redis stops publishing before another can take the symbol over. Ticks are
keyed by symbol, so one symbol's ticks stay in order on one partition of ``prices``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Protocol

import aiohttp
from aiokafka import AIOKafkaProducer

from oms.config import Settings
from oms.marketdata import SimulatedFeed, Tick
from oms.stream.codecs import encode_tick
from oms.stream.exchange_feed import BinanceSymbolFeed, FeedStats
from oms.stream.feed_leases import LeaseStore, SymbolLeases
from oms.stream.partitioner import reliable_producer

logger = logging.getLogger(__name__)

Publish = Callable[[Tick], Awaitable[None]]
FEED_INTERVAL_S = 0.1  # ten simulated ticks a second per symbol: resting orders see it move
RELEASE_TIMEOUT_S = 2.0  # a clean stop gives its leases back within this, or lets them expire
RESTART_AFTER_S = 1.0  # a source that failed is started again after this, while still held


class TickSource(Protocol):
    """Where one symbol's ticks come from while this replica holds its lease."""

    async def run(self, symbol: str, publish: Publish) -> None:
        """Produce ``symbol``'s ticks through ``publish`` until cancelled."""
        ...


class SimulatedSource:
    """The seeded random walk, resumed from the last price the engine saw (another replica's
    walk, when the lease moved here), so a hand-over does not jump the market."""

    def __init__(self, feed: SimulatedFeed, last_price: Callable[[str], Decimal | None]) -> None:
        self._feed = feed
        self._last_price = last_price

    async def run(self, symbol: str, publish: Publish) -> None:
        """A tick every ``FEED_INTERVAL_S``."""
        price = self._last_price(symbol)
        if price is not None:
            self._feed.resume(symbol, price)
        while True:
            await publish(self._feed.next_tick(symbol, time.time()))
            await asyncio.sleep(FEED_INTERVAL_S)


class ExchangeSource:
    """Binance spot's streams (``oms.stream.exchange_feed``), our symbols mapped to its pairs."""

    def __init__(self, settings: Settings, stats: FeedStats) -> None:
        self._settings = settings
        self._pairs: Mapping[str, str] = dict(settings.market_data_symbols)
        self.stats = stats
        self._session: aiohttp.ClientSession | None = None

    @property
    def symbols(self) -> tuple[str, ...]:
        """Our symbols that have a pair on the exchange."""
        return tuple(self._pairs)

    async def run(self, symbol: str, publish: Publish) -> None:
        """Stream ``symbol``'s pair, reconnecting, until cancelled."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        feed = BinanceSymbolFeed(
            self._settings,
            self._session,
            symbol=symbol,
            exchange_symbol=self._pairs[symbol],
            publish=publish,
            stats=self.stats,
        )
        await feed.run()

    async def close(self) -> None:
        """Close the HTTP session (after every symbol's task has stopped)."""
        if self._session is not None:
            await self._session.close()


class PricePublisher:
    """Runs ``source`` for each symbol whose lease this replica holds; publishes on ``topic``."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        source: TickSource,
        *,
        symbols: tuple[str, ...],
        leases: LeaseStore,
        owner: str,
    ) -> None:
        """Publish ``symbols`` from ``source`` when ``owner`` holds their lease in ``leases``."""
        self._topic = topic
        self._source = source
        self._producer: AIOKafkaProducer = reliable_producer(settings)
        self.leases = SymbolLeases(
            leases,
            symbols,
            owner,
            lease_s=settings.market_data_lease_s,
            on_gained=self._start_symbol,
            on_lost=self._stop_symbol,
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._rounds: asyncio.Task[None] | None = None
        self.published: dict[str, int] = {}
        self.dropped = 0  # ticks made after the lease's deadline, never sent

    async def start(self) -> None:
        """Connect to Kafka and start taking leases."""
        await self._producer.start()
        self._rounds = asyncio.create_task(self.leases.run(), name="oms-feed-leases")

    async def stop(self, *, release: bool = True) -> None:
        """Stop every source, give the leases back, disconnect. ``release=False`` leaves the
        leases to expire, as a crash would (tests of the hand-over)."""
        if self._rounds is not None:
            self._rounds.cancel()
            await asyncio.gather(self._rounds, return_exceptions=True)
        if release:
            try:
                async with asyncio.timeout(RELEASE_TIMEOUT_S):
                    await self.leases.release_all()
            except TimeoutError:
                logger.warning("market data: leases not released in time; they expire anyway")
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        await self._producer.stop()

    def _start_symbol(self, symbol: str) -> None:
        task = asyncio.create_task(
            self._source.run(symbol, self._publish), name=f"oms-feed-{symbol}"
        )
        task.add_done_callback(lambda done: self._ended(symbol, done))
        self._tasks[symbol] = task

    def _stop_symbol(self, symbol: str) -> None:
        task = self._tasks.pop(symbol, None)
        if task is not None:
            task.cancel()

    def _ended(self, symbol: str, task: asyncio.Task[None]) -> None:
        """A source ends only when cancelled: anything else is a bug, said loudly, and the
        source is started again while the lease is held (else the symbol would go stale)."""
        if task.cancelled() or self._tasks.get(symbol) is not task:
            return
        del self._tasks[symbol]
        logger.error(
            "market data %s: the source ended; starting it again in %.1fs",
            symbol, RESTART_AFTER_S, exc_info=task.exception(),
        )  # fmt: skip
        asyncio.get_running_loop().call_later(RESTART_AFTER_S, self._restart, symbol)

    def _restart(self, symbol: str) -> None:
        if symbol in self.leases.held and symbol not in self._tasks:
            self._start_symbol(symbol)

    async def _publish(self, tick: Tick) -> None:
        if not self.leases.holds(tick.symbol):
            self.dropped += 1
            return
        await self._producer.send(self._topic, key=tick.symbol.encode(), value=encode_tick(tick))
        self.published[tick.symbol] = self.published.get(tick.symbol, 0) + 1
