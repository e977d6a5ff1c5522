"""``oms serve`` with ``OMS_HTTP_WORKERS=2``: two door processes on the public port, the engine
behind them; orders settle, retries answer the first order, reads answer, a killed door comes
back without losing what it accepted, SIGTERM stops everything within the bound."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from tests.e2e.conftest import (
    Replica,
    drop_database,
    last_price,
    open_account,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
)
from tests.ports import free_port

FUNDS = {"USD": "1000000", "BTC": "10"}
ORDERS = 40
KILL_AT_S = 0.3  # into the placing, when one door is SIGKILLed
AFTER_KILL_S = 1.5  # placing goes on this long after the kill
PACE_S = 0.02  # between one client's orders: a hundred or so in all


@pytest.fixture(scope="module")
def serve_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's ``oms serve`` and its doors write their log."""
    return tmp_path_factory.mktemp("doors") / "serve.log"


@pytest.fixture(scope="module")
def replica(serve_log: Path) -> Iterator[Replica]:
    """One ``oms serve`` with two doors, stopped and its database dropped after."""
    require_servers()
    overrides = {
        **run_overrides(uuid.uuid4().hex[:8]),
        "OMS_HTTP_WORKERS": "2",
        "OMS_HTTP_INTERNAL_PORT": str(free_port()),
        "OMS_DOOR_METRICS_PORT": str(free_port()),
    }
    started = start_replica(overrides, serve_log)
    try:
        yield started
    finally:
        stop_replica(started)
        drop_database(started.settings)


def _doors(replica: Replica) -> list[psutil.Process]:
    return psutil.Process(replica.process.pid).children()


async def _settled(http: aiohttp.ClientSession, base: str, order_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        response = await http.get(f"{base}/api/orders/{order_id}")
        if response.status == 200:
            order: dict[str, Any] = await response.json()
            if order["status"] in {"SETTLED", "REJECTED", "CANCELLED"}:
                return order
        assert time.monotonic() < deadline, f"{order_id} never settled"
        await asyncio.sleep(0.1)


async def _place(
    http: aiohttp.ClientSession, base: str, account: str, key: str | None = None
) -> aiohttp.ClientResponse:
    body = {"account_id": account, "symbol": "BTC-USD", "side": "BUY", "type": "MARKET",
            "quantity": "0.001"}  # fmt: skip
    headers = {"Idempotency-Key": key, "Connection": "close"} if key else {"Connection": "close"}
    return await http.post(f"{base}/api/orders", json=body, headers=headers)


async def test_serve_when_two_doors_then_orders_settle_retries_answer_first_and_reads_answer(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    await last_price(http, replica.base, "BTC-USD")

    # A new connection each: the kernel spreads them over both doors.
    placed = [await _place(http, replica.base, account) for _ in range(ORDERS)]
    first = await _place(http, replica.base, account, key="door-k1")
    again = await _place(http, replica.base, account, key="door-k1")
    ids = [(await response.json())["order_id"] for response in placed]
    orders = [await _settled(http, replica.base, order_id) for order_id in ids]
    account_read = await http.get(f"{replica.base}/api/accounts/{account}")
    listing = await (
        await http.get(f"{replica.base}/api/orders?account_id={account}&limit=100")
    ).json()

    assert len(_doors(replica)) == 2
    assert {response.status for response in placed} == {202}
    assert {order["status"] for order in orders} == {"SETTLED"}
    assert first.status == again.status == 202
    assert (await first.json())["order_id"] == (await again.json())["order_id"]
    assert account_read.status == 200
    assert len(listing["items"]) == ORDERS + 1


def test_serve_when_two_doors_start_then_each_tunes_its_collector_as_the_engine_does(
    replica: Replica, serve_log: Path
) -> None:
    # A door's heap is its libraries: Python's default thresholds scanned them again and again
    # (oms.gc_tuning). Each door says how it set its collector once it serves.
    young = replica.settings.gc_young_threshold
    deadline = time.monotonic() + 10  # a door may say it after the public port answers
    while True:
        lines = serve_log.read_text().splitlines()
        said = {
            door: [line for line in lines if f"oms door {door} serving on" in line]
            for door in (0, 1)
        }
        if all(said.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    for door, lines_of_door in said.items():
        assert lines_of_door, f"door {door} never said it serves"
        assert f"gc thresholds ({young}, 10, 10), survivors frozen" in lines_of_door[-1]


async def test_place_when_unauthenticated_at_a_door_then_401_problem_from_the_door(
    replica: Replica,
) -> None:
    async with aiohttp.ClientSession() as anonymous:
        response = await anonymous.post(f"{replica.base}/api/orders", json={})
        problem = await response.json(content_type=None)

    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert problem["code"] == "MISSING_CREDENTIAL"


async def _place_until(
    http: aiohttp.ClientSession, base: str, account: str, until: float
) -> list[aiohttp.ClientResponse | BaseException]:
    """Place one order after another until ``until`` (monotonic): each answer or failure."""
    answers: list[aiohttp.ClientResponse | BaseException] = []
    while time.monotonic() < until:
        try:
            answers.append(await _place(http, base, account))
        except aiohttp.ClientError as error:  # its door died under it: the client sees it
            answers.append(error)
        await asyncio.sleep(PACE_S)
    return answers


async def test_door_when_killed_then_restarted_and_nothing_accepted_is_lost(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    await last_price(http, replica.base, "BTC-USD")
    victim = _doors(replica)[0]

    # Four clients place one order after another, from before the kill until well after it:
    # orders in flight on the killed door fail at the client, the others are accepted by
    # whichever door the kernel hands their connection to (the survivor, then the restarted one).
    until = time.monotonic() + KILL_AT_S + AFTER_KILL_S
    placing = [
        asyncio.create_task(_place_until(http, replica.base, account, until)) for _ in range(4)
    ]
    await asyncio.sleep(KILL_AT_S)
    os.kill(victim.pid, signal.SIGKILL)
    answers = [answer for some in await asyncio.gather(*placing) for answer in some]
    accepted = [
        (await answer.json())["order_id"]
        for answer in answers
        if isinstance(answer, aiohttp.ClientResponse) and answer.status == 202
    ]
    seen = Counter(
        str(answer.status) if isinstance(answer, aiohttp.ClientResponse) else type(answer).__name__
        for answer in answers
    )
    deadline = time.monotonic() + 15
    while {p.pid for p in _doors(replica)} & {victim.pid} or len(_doors(replica)) < 2:
        assert time.monotonic() < deadline, "the killed door was not restarted"
        await asyncio.sleep(0.2)
    orders = [await _settled(http, replica.base, order_id) for order_id in accepted]

    assert accepted, f"no order was accepted around the kill: {seen}"
    assert {order["status"] for order in orders} == {"SETTLED"}, seen
    assert victim.pid not in {p.pid for p in _doors(replica)}


def test_serve_when_sigterm_then_doors_and_engine_stop_within_the_bound(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    require_servers()
    overrides = {
        **run_overrides(uuid.uuid4().hex[:8]),
        "OMS_HTTP_WORKERS": "2",
        "OMS_HTTP_INTERNAL_PORT": str(free_port()),
        "OMS_DOOR_METRICS_PORT": str(free_port()),
    }
    started = start_replica(overrides, tmp_path_factory.mktemp("doors-stop") / "serve.log")
    try:
        doors = _doors(started)
        began = time.monotonic()
        started.process.send_signal(signal.SIGTERM)
        status = started.process.wait(started.settings.shutdown_timeout_s + 5)
        took = time.monotonic() - began
        _gone, alive = psutil.wait_procs(doors, timeout=2)
    finally:
        stop_replica(started)
        drop_database(started.settings)

    assert len(doors) == 2
    assert status == 0
    assert took < started.settings.shutdown_timeout_s
    assert alive == []
