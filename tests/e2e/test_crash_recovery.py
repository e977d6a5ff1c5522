"""Crash recovery of one replica: ``oms serve`` killed hard (SIGKILL) mid-flow, then restarted.

Every accepted (202) order still reaches exactly one terminal state, nothing is left reserved,
and per asset the two accounts plus the venue's and the fees' share still add up to the opening
balances. Its own replica (not the module fixture): it is killed and started again with the same
topics, consumer group, database and port.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import MongoClient

from oms.config import Settings
from oms.probes import probe_all
from oms.store.documents import OrderDocument, stored_order
from oms.store.mongo_connection import store_databases
from tests.credentials import authenticated_session
from tests.e2e.conftest import last_price, open_account
from tests.e2e.crash_flow import (
    DEADLINE_S,
    TERMINAL_EVENTS,
    Serve,
    order_body,
    order_histories,
    place_orders,
    settle_everything,
)
from tests.ports import free_port

FUNDS = {"USD": "1000000", "BTC": "10", "ETH": "100", "SOL": "1000"}
ORDERS = 300
BEFORE = 100  # placed, processed and committed before the crash
KILL_AFTER = 80  # more orders accepted, then SIGKILL
SYMBOL_ASSETS = {"BTC-USD": ("BTC", "USD"), "ETH-USD": ("ETH", "USD")}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """A replica of its own (unique topics, group, database, port); its database dropped after."""
    base = Settings.from_env()
    down = [name for name, ok in asyncio.run(probe_all(base)).items() if not ok]
    if down:
        pytest.fail(f"local servers not answering: {', '.join(down)} (run `make up`)")
    run = uuid.uuid4().hex[:8]
    overrides = {
        "OMS_HTTP_HOST": "127.0.0.1",
        "OMS_HTTP_PORT": str(free_port()),
        "OMS_TOPIC_SUFFIX": f"crash-{run}",
        "OMS_KAFKA_GROUP_ID": f"oms-crash-{run}",
        "OMS_MONGO_DATABASE": f"oms_crash_{run}",
        "OMS_ORDERS_PARTITIONS": "2",
        "OMS_EXECUTIONS_PARTITIONS": "2",
        "OMS_PRICES_PARTITIONS": "1",
        "OMS_EVENTS_PARTITIONS": "2",
    }
    env = {**os.environ, **overrides}
    replica = Serve(env, tmp_path / "serve.log")
    try:
        yield replica
    finally:
        replica.stop()
        settings = Settings.from_env(env)
        client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
        for name in store_databases(settings.mongo_database):
            client.drop_database(name)
        client.close()


def _assert_one_terminal_state(order_id: str, history: list[dict[str, Any]]) -> None:
    sequences = [event["sequence"] for event in history]
    assert sequences == list(range(1, len(history) + 1)), (order_id, sequences)
    terminal = [event["type"] for event in history if event["type"] in TERMINAL_EVENTS]
    assert len(terminal) == 1, (order_id, terminal)
    assert history[-1]["type"] in TERMINAL_EVENTS, (order_id, history[-1])
    fill_ids = [event["command_id"] for event in history if event["type"] == "OrderFilled"]
    assert len(fill_ids) == len(set(fill_ids)), (order_id, fill_ids)


def _venue_and_fees_share(
    histories: dict[str, list[dict[str, Any]]],
) -> dict[str, Decimal]:
    """Per asset, what the fills moved out of the accounts (to the venue and to fees)."""
    share: dict[str, Decimal] = {}
    for history in histories.values():
        placed = history[0]
        assert placed["type"] == "OrderPlaced"
        base, quote = SYMBOL_ASSETS[placed["symbol"]]
        buy = placed["side"] == "BUY"
        for event in history:
            if event["type"] != "OrderFilled":
                continue
            quantity, price = Decimal(event["quantity"]), Decimal(event["price"])
            fee = Decimal(event["fee"])
            cost = quantity * price
            # a BUY gets base from the venue and pays it cost and the fees fee; a SELL the reverse
            base_out = -quantity if buy else quantity
            quote_out = cost + fee if buy else -cost + fee
            share[base] = share.get(base, Decimal(0)) + base_out
            share[quote] = share.get(quote, Decimal(0)) + quote_out
    return share


async def _balances(
    http: aiohttp.ClientSession, base: str, accounts: list[str]
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    totals: dict[str, Decimal] = {}
    reserved: dict[str, Decimal] = {}
    for account in accounts:
        response = await http.get(f"{base}/api/accounts/{account}")
        assert response.status == 200, await response.text()
        for asset, balance in (await response.json())["balances"].items():
            totals[asset] = totals.get(asset, Decimal(0)) + Decimal(balance["total"])
            reserved[asset] = reserved.get(asset, Decimal(0)) + Decimal(balance["reserved"])
    return totals, reserved


def _stored_histories(
    env: dict[str, str], order_ids: list[str]
) -> dict[str, list[tuple[Any, ...]]]:
    """Each order's terminal document in MongoDB, as (event type, sequence, command id)."""
    settings = Settings.from_env(env)
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    try:
        orders = client[settings.mongo_database][OrderDocument.Settings.name]
        found = {}
        for document in orders.find({"_id": {"$in": order_ids}}):
            stored = stored_order(document)
            found[document["_id"]] = [
                (type(e).__name__, e.sequence, e.command_id) for e in stored.events
            ]
        return found
    finally:
        client.close()


async def _assert_durable(serve: Serve, histories: dict[str, list[dict[str, Any]]]) -> None:
    """What the API shows is what MongoDB holds (a terminal document per order, same history)."""
    seen = {
        order_id: [(e["type"], e["sequence"], e["command_id"]) for e in history]
        for order_id, history in histories.items()
    }
    deadline = time.monotonic() + 10
    while True:
        stored = await asyncio.to_thread(_stored_histories, serve.env, list(seen))
        if stored == seen or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    missing = sorted(set(seen) - set(stored))
    assert not missing, f"{len(missing)} terminal orders not in MongoDB: {missing[:5]}"
    differ = [oid for oid in seen if stored[oid] != seen[oid]]
    assert not differ, f"stored history differs for {differ[:3]}"


async def _processed(http: aiohttp.ClientSession, base: str, order_ids: list[str]) -> None:
    """Wait until risk has answered every order (accepted or rejected)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        histories = await order_histories(http, base, order_ids)
        if all(len(history) >= 2 for history in histories.values()):
            return
        assert time.monotonic() < deadline, "orders placed before the crash were never processed"
        await asyncio.sleep(0.3)


async def _scenario(serve: Serve) -> None:
    timeout = aiohttp.ClientTimeout(total=10)
    rng = random.Random(5)
    accepted: list[str] = []
    async with authenticated_session(timeout=timeout) as http:
        accounts = [await open_account(http, serve.base, FUNDS, prefix="crash") for _ in range(2)]
        halted = await open_account(http, serve.base, FUNDS, prefix="halted")
        await _kill_switch(http, serve.base, "HALTED", halted)
        prices = {s: await last_price(http, serve.base, s) for s in SYMBOL_ASSETS}
        bodies = [order_body(rng, accounts[i % 2], prices) for i in range(ORDERS)]
        # First a part that is processed, durable and committed (settled, or resting) ...
        await place_orders(http, serve, bodies[:BEFORE], accepted)
        await _processed(http, serve.base, accepted)
        await asyncio.sleep(1.0)  # commits follow the durability barrier within milliseconds
        # ... then SIGKILL in the middle of the rest.
        await place_orders(http, serve, bodies[BEFORE:], accepted, kill_after=KILL_AFTER)
        assert len(accepted) >= BEFORE + KILL_AFTER

    await asyncio.to_thread(serve.start)  # same topics, group, database and port

    async with authenticated_session(timeout=timeout) as http:
        histories = await settle_everything(http, serve.base, accounts, accepted)
        for order_id in accepted:
            assert histories[order_id], f"accepted order {order_id} is unknown after the restart"
        for order_id, history in histories.items():
            _assert_one_terminal_state(order_id, history)
        await _assert_durable(serve, histories)

        opening = {asset: 2 * Decimal(amount) for asset, amount in FUNDS.items()}
        share = _venue_and_fees_share(histories)
        now, reserved = await _balances(http, serve.base, accounts)
        assert all(amount == 0 for amount in reserved.values()), reserved
        for asset, amount in opening.items():
            assert now.get(asset, Decimal(0)) + share.get(asset, Decimal(0)) == amount, asset
        fills = sum(1 for h in histories.values() for e in h if e["type"] == "OrderFilled")
        assert fills > 0
        # What an operator halted stays halted through the crash ...
        assert await _trading_state(http, serve.base, halted) == "HALTED"
        await _kill_switch(http, serve.base, "HALTED")  # ... and so does a global halt:

    # A clean restart rebuilds exactly these balances from the store alone.
    await asyncio.to_thread(serve.stop)
    await asyncio.to_thread(serve.start)
    async with authenticated_session(timeout=timeout) as http:
        assert await _balances(http, serve.base, accounts) == (now, reserved)
        assert await _dry_run_reasons(http, serve.base, bodies[0]) == ["KILL_SWITCH_GLOBAL"]


async def _kill_switch(
    http: aiohttp.ClientSession, base: str, state: str, account_id: str | None = None
) -> None:
    body = {"state": state} if account_id is None else {"state": state, "account_id": account_id}
    async with http.post(f"{base}/api/risk/kill-switch", json=body) as response:
        assert response.status == 200, await response.text()


async def _trading_state(http: aiohttp.ClientSession, base: str, account_id: str) -> str:
    async with http.get(f"{base}/api/accounts/{account_id}") as response:
        state: str = (await response.json())["trading_state"]
        return state


async def _dry_run_reasons(
    http: aiohttp.ClientSession, base: str, body: dict[str, str]
) -> list[str]:
    async with http.post(f"{base}/api/risk/validate", json=body) as response:
        return [violation["reason"] for violation in (await response.json())["violations"]]


def test_restart_when_sigkilled_mid_flow_then_ends_every_order_once_and_conserves_balances(
    serve: Serve,
) -> None:
    serve.start()
    asyncio.run(_scenario(serve))
    recovered = [line for line in serve.log.read_text().splitlines() if "recovered" in line]
    assert recovered, "the restarted replica logged no recovery"
