"""Market data: L2 order books per symbol, the ticks that update them and a simulated feed.

The pure parts (``Tick``, ``OrderBook``, ``MarketData``, ``SimulatedFeed``) are synchronous and
deterministic; the simulated venue actor (``oms.actors.venue``) owns the engine's copy.
"""

from oms.marketdata.book import L2Book, MarketData, OrderBook
from oms.marketdata.feed import DEFAULT_START_PRICES, SimulatedFeed
from oms.marketdata.tick import BookLevel, InvalidTick, Tick

__all__ = [
    "DEFAULT_START_PRICES",
    "BookLevel",
    "InvalidTick",
    "L2Book",
    "MarketData",
    "OrderBook",
    "SimulatedFeed",
    "Tick",
]
