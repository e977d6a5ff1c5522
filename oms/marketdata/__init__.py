"""Market data: L2 order books per symbol, the ticks that update them, a simulated feed and
the actor that owns them.

The pure parts (``Tick``, ``OrderBook``, ``MarketData``, ``SimulatedFeed``) are synchronous and
deterministic; ``MarketDataActor`` only wraps them in an explicit message protocol.
"""

from oms.marketdata.actor import (
    AdvanceFeed,
    GetBook,
    GetLastPrice,
    MarketDataActor,
    NoFeed,
    Subscribe,
    UnknownMessage,
    Unsubscribe,
)
from oms.marketdata.book import L2Book, MarketData, OrderBook
from oms.marketdata.feed import DEFAULT_START_PRICES, SimulatedFeed
from oms.marketdata.tick import BookLevel, InvalidTick, Tick

__all__ = [
    "DEFAULT_START_PRICES",
    "AdvanceFeed",
    "BookLevel",
    "GetBook",
    "GetLastPrice",
    "InvalidTick",
    "L2Book",
    "MarketData",
    "MarketDataActor",
    "NoFeed",
    "OrderBook",
    "SimulatedFeed",
    "Subscribe",
    "Tick",
    "UnknownMessage",
    "Unsubscribe",
]
