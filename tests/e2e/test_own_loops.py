"""``oms serve`` with the engine's dispatcher and the store's writer each on a thread and loop of
their own (``OMS_ENGINE_LOOP=own``, ``OMS_STORE_LOOP=own``): the way before both moved onto the
serving loop, kept as levers (``bench/levers.py``), so a real process must still run on them.

Invariants, in plain words: an order placed over REST or produced onto ``orders`` settles; what
settled is read back after the process stops and starts again; nothing placed is lost.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.credentials import authenticated_session
from tests.e2e.conftest import (
    Replica,
    drop_database,
    last_price,
    open_account,
    order_until,
    produce_market_buy,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
)

FUNDS = {"USD": "1000000", "BTC": "10", "ETH": "100", "SOL": "1000"}
SETTLED = {"SETTLED"}
OWN_LOOPS = {"OMS_ENGINE_LOOP": "own", "OMS_STORE_LOOP": "own"}


class Run:
    """The module's ``oms serve``, restartable on the same database and topics."""

    def __init__(self, logs: Path) -> None:
        self.overrides = {**run_overrides(uuid.uuid4().hex[:8]), **OWN_LOOPS}
        self.logs = logs
        self.starts = 0
        self.replica = self._start()

    def _start(self) -> Replica:
        self.starts += 1
        return start_replica(self.overrides, self.logs / f"serve-{self.starts}.log")

    def restart(self) -> Replica:
        stop_replica(self.replica)
        self.replica = self._start()
        return self.replica


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_servers()
    started = Run(tmp_path_factory.mktemp("own-loops"))
    try:
        yield started
    finally:
        stop_replica(started.replica)
        drop_database(started.replica.settings)


async def _place_over_rest(http: aiohttp.ClientSession, replica: Replica, account: str) -> str:
    placed = await http.post(
        f"{replica.base}/api/orders",
        json={"account_id": account, "symbol": "BTC-USD", "side": "BUY",
              "type": "MARKET", "quantity": "0.01"},
    )  # fmt: skip
    assert placed.status == 202, await placed.text()
    order_id: str = (await placed.json())["order_id"]
    return order_id


async def test_place_when_engine_and_store_run_on_their_own_loops_then_rest_and_kafka_orders_settle(
    run: Run,
) -> None:
    replica = run.replica
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=30)) as http:
        account = await open_account(http, replica.base, FUNDS)
        await last_price(http, replica.base, "BTC-USD")
        await last_price(http, replica.base, "SOL-USD")

        over_rest = await _place_over_rest(http, replica, account)
        over_kafka = await produce_market_buy(replica, account, "own-loops-1")

        rest_order = await order_until(http, replica, over_rest, SETTLED)
        kafka_order = await order_until(http, replica, over_kafka, SETTLED)

    assert rest_order["account_id"] == account
    assert kafka_order["client_order_id"] == "own-loops-1"
    # ... and it ran the way asked: the start-up line names both levers
    assert "store_loop=own engine_loop=own" in (run.logs / "serve-1.log").read_text()


async def test_restart_when_engine_and_store_run_on_their_own_loops_then_settled_orders_read_back(
    run: Run,
) -> None:
    # Arrange: an order settled before a clean stop
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=30)) as http:
        account = await open_account(http, run.replica.base, FUNDS)
        await last_price(http, run.replica.base, "BTC-USD")
        before = await _place_over_rest(http, run.replica, account)
        await order_until(http, run.replica, before, SETTLED)

    # Act: stopped (SIGINT) and started again on the same database
    replica = await asyncio.to_thread(run.restart)

    # Assert: the settled order is read back, and a new one settles after the restart
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=30)) as http:
        again = await order_until(http, replica, before, SETTLED)
        await last_price(http, replica.base, "BTC-USD")
        again_placed = await _place_over_rest(http, replica, account)
        after = await order_until(http, replica, again_placed, SETTLED)

    assert again["order_id"] == before
    assert after["account_id"] == account
