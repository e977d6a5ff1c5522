"""Nothing accepted is ever lost: the service under real faults (issue 11's suite).

Each test runs a paced REST and Kafka load against a real ``oms serve`` on private servers,
injects one fault part-way through, and checks the promises listed in ``harness``: every order
that got a 202 (or whose record Kafka acknowledged) ends terminal exactly once with its events
on ``order-events`` exactly once, nothing is duplicated or invented, totals per asset are
conserved, no answer is a 500, no POST waits longer than the bound, and the replica's log stays
short while a server is down.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp

from tests.credentials import authenticated_session
from tests.faults.harness import Context, Replica, check, scenario
from tests.faults.servers import PrivateServers

LOG_LINES_PER_OUTAGE = 400  # what one outage may add to the replica's log, all of it
OUTAGE_S = 4.0


async def _kill_replica(ctx: Context) -> None:
    await ctx.replica.kill()  # supervision starts it again, as an orchestrator would


async def _restart_kafka(ctx: Context) -> None:
    await asyncio.to_thread(ctx.servers.kafka.stop)
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(ctx.servers.kafka.start)


async def _restart_ferretdb(ctx: Context) -> None:
    """FerretDB away while clients read and cancel orders that live in MongoDB only."""
    await asyncio.to_thread(ctx.servers.ferretdb.stop)
    statuses = await _touch_old_orders(ctx, OUTAGE_S)
    await asyncio.to_thread(ctx.servers.ferretdb.start)
    print(f"old_order_answers_during_outage: {dict(Counter(statuses))}")
    assert set(statuses) <= {200, 202, 409, 503}, Counter(statuses)


async def _restart_redis(ctx: Context) -> None:
    """Redis away (no persistence: every key is gone after), then clients that never saw the
    answers of earlier orders send them again with the same keys."""
    await asyncio.to_thread(ctx.servers.redis.stop)
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(ctx.servers.redis.start)
    earlier = [i for i in ctx.load.intents if i.via == "rest" and i.accepted][:50]
    await ctx.load.post_again(earlier)


async def _wait_for_exit(ctx: Context) -> None:
    deadline = time.monotonic() + 30
    while not ctx.replica.exits:
        assert time.monotonic() < deadline, "the replica never exited after its actor failed"
        await asyncio.sleep(0.1)


async def _touch_old_orders(ctx: Context, seconds: float) -> list[int]:
    """GET and DELETE orders finished before the restart for ``seconds``; the statuses."""
    old = ctx.old_orders()
    assert old, "no history to touch"
    base = ctx.replica.base
    statuses: list[int] = []
    deadline = time.monotonic() + seconds
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for n, order_id in enumerate(old):
            if time.monotonic() > deadline:
                break
            method = http.delete if n % 4 == 0 else http.get
            async with method(f"{base}/api/orders/{order_id}") as answer:
                statuses.append(answer.status)
                await answer.read()
    return statuses


async def _read_burst(ctx: Context) -> None:
    """Several clients read lists and old orders (MongoDB only) as fast as they can."""
    base = ctx.replica.base
    old = ctx.old_orders()
    deadline = time.monotonic() + OUTAGE_S
    statuses: list[int] = []

    async def reader(http: aiohttp.ClientSession, n: int) -> None:
        while time.monotonic() < deadline:
            account = ctx.load.accounts[n % len(ctx.load.accounts)]
            params = {"account_id": account, "limit": "50"}
            async with http.get(f"{base}/api/orders", params=params) as page:
                statuses.append(page.status)
                await page.read()
            order_id = old[n % len(old)]
            n += 7
            async with http.get(f"{base}/api/orders/{order_id}") as one:
                statuses.append(one.status)
                await one.read()

    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=10)) as http:
        await asyncio.gather(*(reader(http, n) for n in range(4)))
    print(f"reads: {len(statuses)}, answers: {dict(Counter(statuses))}")
    assert all(status == 200 for status in statuses), Counter(statuses)


def test_sigkill_when_clients_retry_then_nothing_is_lost_or_doubled(
    replica: Replica, servers: PrivateServers
) -> None:
    result, _lines = asyncio.run(scenario(replica, servers, _kill_replica))

    check(result)


def test_sigkill_when_clients_do_not_retry_then_every_202_survives(
    replica: Replica, servers: PrivateServers
) -> None:
    result, _lines = asyncio.run(scenario(replica, servers, _kill_replica, retries=False))

    check(result)


def test_kafka_restart_when_under_load_then_nothing_is_lost_and_answers_stay_fast(
    replica: Replica, servers: PrivateServers
) -> None:
    result, lines = asyncio.run(scenario(replica, servers, _restart_kafka))

    check(result)
    assert lines <= LOG_LINES_PER_OUTAGE, lines
    assert not replica.exits, replica.exits


def test_ferretdb_restart_when_under_load_then_nothing_is_lost(
    replica: Replica, servers: PrivateServers
) -> None:
    result, lines = asyncio.run(scenario(replica, servers, _restart_ferretdb, history_s=3.0))

    check(result)
    assert lines <= LOG_LINES_PER_OUTAGE, lines
    assert not replica.exits, replica.exits


def test_redis_restart_when_under_load_then_no_retry_creates_a_second_order(
    replica: Replica, servers: PrivateServers
) -> None:
    result, lines = asyncio.run(scenario(replica, servers, _restart_redis))

    check(result)
    assert lines <= LOG_LINES_PER_OUTAGE, lines
    assert not replica.exits, replica.exits


def test_actor_failure_when_mid_flow_then_the_replica_restarts_and_nothing_is_lost(
    replica: Replica, servers: PrivateServers
) -> None:
    result, _lines = asyncio.run(
        scenario(
            replica,
            servers,
            _wait_for_exit,
            start_extra={"OMS_FAULT_FAIL_ORDER_AT": "150"},
            fault_at_s=0.5,
        )
    )

    check(result)
    assert replica.exits == [70], replica.exits


def test_read_burst_when_trading_then_nothing_is_lost_and_every_read_answers(
    replica: Replica, servers: PrivateServers
) -> None:
    result, _lines = asyncio.run(scenario(replica, servers, _read_burst, history_s=3.0))

    check(result)
    assert not replica.exits, replica.exits


def test_sigterm_when_kafka_is_down_then_the_replica_exits_within_its_bound(
    replica: Replica, servers: PrivateServers
) -> None:
    async def run() -> float:
        await replica.start()
        await asyncio.to_thread(servers.kafka.stop)
        await asyncio.sleep(1.0)
        return await replica.stop()

    took = asyncio.run(run())

    print(f"sigterm_to_exit_s: {took:.2f}")
    assert took <= replica.settings.shutdown_timeout_s + 6.0, took
