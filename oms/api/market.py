"""Market data: last price and order book per symbol, and live ticks over ``/ws/market-data``.

Ticks reach the engine from the simulated feed or the ``prices`` topic; the API does not sit on
that path. ``MarketFeed`` reads the venue's books while someone is subscribed (every
``poll_s``) and pushes each new tick; whoever feeds the engine may also ``publish`` ticks
directly (thread-safe), which reaches subscribers without waiting for the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiohttp import web

from oms.api.encoding import book_json, price_json
from oms.api.live import SUBSCRIBER_QUEUE, pump
from oms.api.params import bounded_int
from oms.api.problems import FieldError, Problem, invalid_query, not_found
from oms.api.services import SERVICES_KEY
from oms.engine import Engine
from oms.marketdata import Tick

logger = logging.getLogger(__name__)

DEFAULT_DEPTH = 20
MAX_DEPTH = 500
LIVE_DEPTH = 10


class MarketFeed:
    """Ticks to ``/ws/market-data`` subscribers, each with its set of symbols."""

    def __init__(self, engine: Engine, poll_s: float | None = 0.25) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self._subscribers: dict[asyncio.Queue[str | None], frozenset[str]] = {}
        self._last: dict[str, float] = {}  # per symbol, the time of the last tick pushed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        """Start polling (only while someone listens)."""
        self._loop = asyncio.get_running_loop()
        if self.poll_s is not None:
            self._task = asyncio.create_task(self._poll(), name="oms-market-feed")

    async def stop(self) -> None:
        """Stop polling and close every subscriber."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for queue in self._subscribers:
            queue.put_nowait(None)

    def publish(self, tick: Tick) -> None:
        """Push a tick to subscribers; callable from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._push, tick)

    def subscribe(self, symbols: frozenset[str]) -> asyncio.Queue[str | None]:
        """A queue of encoded ticks of ``symbols``."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers[queue] = symbols
        self._wake.set()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        """Forget a subscriber."""
        self._subscribers.pop(queue, None)

    def _push(self, tick: Tick) -> None:
        if self._last.get(tick.symbol, float("-inf")) >= tick.ts:
            return  # already pushed (or older than what was)
        self._last[tick.symbol] = tick.ts
        message: str | None = None
        for queue, symbols in list(self._subscribers.items()):
            if tick.symbol not in symbols:
                continue
            if message is None:
                message = orjson.dumps({"type": "tick", **book_json(tick)}).decode()
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self.unsubscribe(queue)

    async def _poll(self) -> None:
        assert self.poll_s is not None
        while True:
            if not self._subscribers:
                self._wake.clear()
                await self._wake.wait()
            for symbol in self.engine.instruments:
                try:
                    tick = await self.engine.order_book(symbol, LIVE_DEPTH)
                except Exception:
                    logger.exception("market feed could not read %s", symbol)
                    tick = None
                if tick is not None:
                    self._push(tick)
            await asyncio.sleep(self.poll_s)


MARKET_FEED_KEY = web.AppKey("market_feed", MarketFeed)


def _symbol(request: web.Request) -> str:
    symbol = request.match_info["symbol"]
    if symbol not in request.app[SERVICES_KEY].engine.instruments:
        raise not_found(f"instrument {symbol}")
    return symbol


async def _tick(request: web.Request, symbol: str, depth: int | None) -> Tick:
    tick = await request.app[SERVICES_KEY].engine.order_book(symbol, depth)
    if tick is None:
        raise Problem(404, "NO_MARKET_DATA", "No market data", f"no tick for {symbol} yet")
    return tick


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def get_price(request: web.Request) -> web.Response:
    """``GET /api/market-data/prices/{symbol}``: last price, best bid and ask, time."""
    symbol = _symbol(request)
    return _json(price_json(await _tick(request, symbol, 0)))


async def get_order_book(request: web.Request) -> web.Response:
    """``GET /api/market-data/orderbook/{symbol}?depth=``: bids and asks."""
    symbol = _symbol(request)
    errors: list[FieldError] = []
    depth = bounded_int(
        request.query, "depth", default=DEFAULT_DEPTH, low=1, high=MAX_DEPTH, errors=errors
    )
    if errors:
        raise invalid_query(errors)
    return _json(book_json(await _tick(request, symbol, depth)))


async def ws_market_data(request: web.Request) -> web.WebSocketResponse:
    """``WS /ws/market-data?symbols=A,B``: live ticks (every listed symbol by default)."""
    listed = request.app[SERVICES_KEY].engine.instruments
    raw = request.query.get("symbols")
    symbols = frozenset(listed) if raw is None else frozenset(s for s in raw.split(",") if s)
    unknown = sorted(symbols - set(listed))
    if unknown or not symbols:
        raise invalid_query(
            [FieldError("symbols", f"not listed: {', '.join(unknown) or '(none given)'}")]
        )
    feed = request.app[MARKET_FEED_KEY]
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    queue = feed.subscribe(symbols)
    try:
        await ws.send_str(orjson.dumps({"type": "subscribed", "symbols": sorted(symbols)}).decode())
        await pump(ws, queue)
    finally:
        feed.unsubscribe(queue)
    return ws


def add_market_routes(app: web.Application) -> None:
    """Mount market data."""
    router = app.router
    router.add_get("/api/market-data/prices/{symbol}", get_price, allow_head=False)
    router.add_get("/api/market-data/orderbook/{symbol}", get_order_book, allow_head=False)
    router.add_get("/ws/market-data", ws_market_data, allow_head=False)
