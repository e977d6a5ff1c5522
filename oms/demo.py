"""``oms demo``: start ``oms serve``, push a few thousand orders through it over REST, stop it.

What it shows: the process's readiness (Kafka, MongoDB and Redis each answering, partitions
assigned), orders placed through ``POST /api/orders`` travelling REST -> Kafka -> engine ->
MongoDB, their final states, one order's history and its lines in the service's log (found by
the request id its events carry), each account's balances and positions, and what the run left
in MongoDB and Redis. The service's own log goes to a file (JSON lines, as in its container),
so what the demo prints is the demo's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from oms.config import Settings
from oms.loadgen import Summary, own_key, run_loadgen

SERVE_START_TIMEOUT_S = 60.0
DEMO_ORDERS = 2000
FOLLOWED_LINES = 8  # of one order's log lines, the first few


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


async def _wait_until_ready(base: str, process: asyncio.subprocess.Process) -> dict[str, Any]:
    deadline = time.monotonic() + SERVE_START_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"oms serve exited with {process.returncode}")
            try:
                async with http.get(f"{base}/ready") as response:
                    body: dict[str, Any] = orjson.loads(await response.read())
                    if response.status == 200:
                        return body
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("oms serve was not ready in time")
            await asyncio.sleep(0.3)


def _print_accounts(summary: Summary) -> None:
    for name, account in summary.accounts.items():
        balances = ", ".join(
            f"{asset} {b['available']}"
            + (f" (+{b['reserved']} reserved)" if _has_reserved(b) else "")
            for asset, b in sorted(account["balances"].items())
        )
        positions = ", ".join(
            f"{symbol} {p['quantity']}" for symbol, p in sorted(account["positions"].items())
        )
        print(f"  {name}: {balances}")
        print(f"  {' ' * len(name)}  positions: {positions or 'flat'}; PnL {account['pnl']}")


def _has_reserved(balance: dict[str, str]) -> bool:
    """True when something is still reserved."""
    return Decimal(balance.get("reserved", "0")) != 0


async def _one_history(base: str, account: str, log: Path, key: str) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        listing = await (await http.get(f"{base}/api/orders?account_id={account}&limit=50")).json()
        settled = next((o for o in listing["items"] if o["status"] == "SETTLED"), None)
        if settled is None:
            return
        history = await (await http.get(f"{base}/api/orders/{settled['order_id']}/events")).json()
    steps = " -> ".join(f"{e['type']}#{e['sequence']}" for e in history["events"])
    print(f"history of order {settled['order_id']}: {steps}")
    request_id = history["events"][0].get("request_id")
    if request_id is not None:
        _follow(log, settled["order_id"], request_id)


def _follow(log: Path, order_id: str, request_id: str) -> None:
    """The service's log lines of one order: its placing request's, and those naming it."""
    print(f"its log lines (request_id {request_id}; `grep {request_id} {log}`):")
    shown = 0
    for raw in log.read_bytes().splitlines():
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if line.get("request_id") == request_id or line.get("order_id") == order_id:
            print(f"  {line['ts']} {line['level']} {line['logger']} {line['msg']}")
            shown += 1
            if shown == FOLLOWED_LINES:
                break


async def _stored(settings: Settings) -> None:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    redis = aioredis.from_url(settings.redis_url)
    try:
        database = mongo[settings.mongo_database]
        orders = await database["orders"].estimated_document_count()
        accounts = await database["accounts"].estimated_document_count()
        keys = 0
        async for _ in redis.scan_iter(match="idempotency:*", count=1000):
            keys += 1
    finally:
        await mongo.close()
        await redis.aclose()
    print(f"mongodb: {orders} order documents, {accounts} accounts in '{settings.mongo_database}'")
    print(f"redis: {keys} idempotency keys held (24 h each)")


async def run_demo(settings: Settings) -> int:
    """Run the demo end to end; 0 when every order reached a terminal state."""
    base = f"http://{settings.http_host}:{settings.http_port}"
    log = Path(tempfile.gettempdir()) / f"oms-demo-serve-{os.getpid()}.log"
    _step(f"starting oms serve on {base} (its log: {log})")
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "oms.cli", "serve",
            env={**os.environ, "OMS_LOG_FORMAT": "json"}, stdout=out, stderr=out,
        )  # fmt: skip
    ok = False
    try:
        ready = await _wait_until_ready(base, process)
        print(f"GET /ready -> {ready}")
        _step(f"placing {DEMO_ORDERS} orders over REST (-> Kafka -> engine -> MongoDB)")
        key = await asyncio.to_thread(own_key, settings, "oms demo")
        print("made an admin API key for the demo (`oms keys list` shows it; revoke it after)")
        summary = await run_loadgen(settings, DEMO_ORDERS, "rest", base=base, key=key)
        for line in summary.lines():
            print(line)
        _step("accounts after the run")
        _print_accounts(summary)
        await _one_history(base, next(iter(summary.accounts)), log, key)
        _step("what the run left in the stores")
        await _stored(settings)
        ok = summary.placed == DEMO_ORDERS and sum(summary.states.values()) == DEMO_ORDERS
    finally:
        _step("stopping oms serve")
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 30)
        print(f"oms serve exited with {process.returncode}")
    print("\ndemo finished" if ok else "\ndemo FAILED")
    return 0 if ok else 1
