"""The fake Binance spot API on a loop of its own, and a limit buy through oms: what the venue
e2e tests share (``test_venue_ccxt``, ``test_venue_reconciliation``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

import aiohttp

from tests.e2e.conftest import Replica
from tests.fake_binance import FakeBinance

SYMBOL = "BTC-USDT"
T = TypeVar("T")


class FakeOnItsLoop:
    """The fake exchange on an event loop of its own thread (``oms serve`` is another process)."""

    def __init__(self) -> None:
        self.fake = FakeBinance(prices={"BTCUSDT": Decimal(1)}, hang_s=5.0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(10)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the fake's loop (its state is that loop's) and return its result."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def place_limit_buy(
    http: aiohttp.ClientSession, replica: Replica, account: str, price: Decimal
) -> str:
    """A 0.01 ``SYMBOL`` limit buy at ``price`` for ``account``, answered 202; its order id."""
    placed = await http.post(
        f"{replica.base}/api/orders",
        json={"account_id": account, "symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
              "quantity": "0.01", "price": str(price)},
    )  # fmt: skip
    assert placed.status == 202, await placed.text()
    order_id: str = (await placed.json())["order_id"]
    return order_id
