"""A replica killed hard and started again, and the orders placed through it: what the crash
tests share (``test_crash_recovery``, ``test_outbox_after_sigkill``, ``test_restart_bounded``,
``test_loadgen``).

``Serve`` is one ``oms serve`` process that can be SIGKILLed and started again with the same
settings; the rest places a random mix of MARKET and resting LIMIT orders (``place_orders`` can
kill the replica mid-flow) and cancels what rests until every order is terminal.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import aiohttp

from oms.config import Settings
from tests.credentials import admin_for
from tests.e2e.conftest import wait_ready

TERMINAL_EVENTS = {"OrderSettled", "OrderCancelled", "OrderRejected"}
PRICE_STEP = {"BTC-USD": Decimal("0.01"), "ETH-USD": Decimal("0.01")}
QUANTITY = {"BTC-USD": ("0.001", "0.002", "0.005"), "ETH-USD": ("0.01", "0.02", "0.05")}
DEADLINE_S = 40.0


class Serve:
    """One ``oms serve`` process that can be killed and started again with the same settings."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.base = f"http://127.0.0.1:{env['OMS_HTTP_PORT']}"
        self.process: subprocess.Popen[bytes] | None = None
        admin_for(self.base, Settings.from_env(env))

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "oms.cli", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_ready(self.base, self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def order_body(rng: random.Random, account: str, prices: dict[str, Decimal]) -> dict[str, str]:
    symbol = rng.choice(list(prices))
    side = rng.choice(("BUY", "SELL"))
    body = {
        "account_id": account,
        "symbol": symbol,
        "side": side,
        "quantity": rng.choice(QUANTITY[symbol]),
    }
    if rng.random() < 0.5:
        body["type"] = "MARKET"
        return body
    # LIMIT GTC: most rest a little away from the market, some near it (the feed may cross them)
    away = Decimal(rng.choice(("0.001", "0.003", "0.02", "0.03")))
    factor = 1 - away if side == "BUY" else 1 + away
    price = (prices[symbol] * factor).quantize(PRICE_STEP[symbol], ROUND_DOWN)
    body.update(type="LIMIT", price=str(price), time_in_force="GTC")
    return body


async def place_orders(
    http: aiohttp.ClientSession,
    serve: Serve,
    bodies: list[dict[str, str]],
    accepted: list[str],
    kill_after: int | None = None,
) -> None:
    """Place ``bodies`` (20 in flight); SIGKILL the replica once ``kill_after`` more were
    accepted (what was in flight then may or may not have reached Kafka)."""
    killed = asyncio.Event()
    target = None if kill_after is None else len(accepted) + kill_after
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker() -> None:
        while not killed.is_set() and not queue.empty():
            body = queue.get_nowait()
            try:
                response = await http.post(f"{serve.base}/api/orders", json=body)
                if response.status == 202:
                    accepted.append((await response.json())["order_id"])
            except (TimeoutError, aiohttp.ClientError):
                continue  # the replica is gone
            if target is not None and len(accepted) >= target and not killed.is_set():
                killed.set()
                serve.kill()

    await asyncio.gather(*(worker() for _ in range(20)))
    if target is not None and not killed.is_set():
        serve.kill()


async def order_events(
    http: aiohttp.ClientSession, base: str, order_id: str
) -> list[dict[str, Any]]:
    response = await http.get(f"{base}/api/orders/{order_id}/events")
    if response.status != 200:
        return []
    events: list[dict[str, Any]] = (await response.json())["events"]
    return events


async def order_histories(
    http: aiohttp.ClientSession, base: str, order_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    gate = asyncio.Semaphore(20)

    async def one(order_id: str) -> list[dict[str, Any]]:
        async with gate:
            return await order_events(http, base, order_id)

    found = await asyncio.gather(*(one(order_id) for order_id in order_ids))
    return dict(zip(order_ids, found, strict=True))


async def account_orders(http: aiohttp.ClientSession, base: str, account: str) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = {"account_id": account, "limit": "500"}
        if cursor is not None:
            params["cursor"] = cursor
        response = await http.get(f"{base}/api/orders", params=params)
        assert response.status == 200, await response.text()
        page = await response.json()
        ids.extend(item["order_id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def is_terminal(history: list[dict[str, Any]]) -> bool:
    return bool(history) and history[-1]["type"] in TERMINAL_EVENTS


async def settle_everything(
    http: aiohttp.ClientSession, base: str, accounts: list[str], accepted: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Cancel what rests until every order (accepted or found listed) is terminal.

    A cancel may cross a fill or the order's recovery; asking again each round is harmless
    (a second cancel is a no-op or answered 409).
    """
    deadline = time.monotonic() + DEADLINE_S
    while True:
        listed = [oid for account in accounts for oid in await account_orders(http, base, account)]
        order_ids = sorted(set(accepted) | set(listed))
        histories = await order_histories(http, base, order_ids)
        open_ids = [oid for oid, history in histories.items() if not is_terminal(history)]
        if not open_ids:
            return histories
        assert time.monotonic() < deadline, f"{len(open_ids)} orders never ended: {open_ids[:5]}"
        for order_id in open_ids:
            history = histories[order_id]
            if history and history[-1]["type"] in {"OrderAccepted", "OrderFilled"}:
                await http.delete(f"{base}/api/orders/{order_id}")
        await asyncio.sleep(0.5)
