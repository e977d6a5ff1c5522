"""Rate limits on real ``oms serve`` replicas: one Redis bucket per key across both replicas,
and each replica's own bound while Redis is away (order entry failing closed meanwhile)."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from oms.domain.access import Role
from oms.store.api_keys import create_key
from tests.credentials import bearer
from tests.e2e.conftest import (
    Replica,
    drop_database,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
    two_replicas,
)
from tests.integration.private_servers import PrivateRedis

pytestmark = pytest.mark.e2e

PER_S, BURST = 2, 10  # per key; every request of a test's key counts in one bucket
LIMITS = {"OMS_RATE_LIMIT_KEY_PER_S": str(PER_S), "OMS_RATE_LIMIT_KEY_BURST": str(BURST)}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas of one run (one Redis, one database), low limits per key."""
    require_servers()
    overrides = {**run_overrides(uuid.uuid4().hex[:8]), **LIMITS}
    logs = tmp_path_factory.mktemp("limits")
    with two_replicas(overrides, logs) as pair:
        yield pair


async def _get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, str | None, dict[str, object] | None]:
    async with http.get(url, headers=headers) as response:
        body = await response.json(content_type=None) if response.status == 429 else None
        return response.status, response.headers.get("Retry-After"), body


async def test_burst_when_both_replicas_take_one_key_then_the_shared_limit_answers_429(
    pair: tuple[Replica, Replica],
) -> None:
    # Arrange
    first, second = pair
    headers = bearer(create_key(first.settings, Role.TRADER, frozenset({"t1"}), "burst").key)
    urls = [f"{r.base}/api/instruments" for r in (first, second)]

    # Act: 40 requests at once, alternating between the replicas
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        started = time.monotonic()
        answers = await asyncio.gather(*(_get(http, urls[n % 2], headers) for n in range(40)))
        elapsed = time.monotonic() - started

    # Assert: the burst, and what the rate refilled meanwhile, passed across both together
    passed = [n for n, (status, _, _) in enumerate(answers) if status == 200]
    refused = [(n, a) for n, a in enumerate(answers) if a[0] == 429]
    assert len(passed) + len(refused) == 40
    assert BURST <= len(passed) <= BURST + math.ceil(PER_S * elapsed) + 1
    assert {n % 2 for n, _ in refused} == {0, 1}, "both replicas refused some"
    for _, (_, retry_after, body) in refused:
        assert retry_after is not None
        assert int(retry_after) >= 1
        assert body is not None
        assert (body["code"], body["limit"], body["status"]) == ("RATE_LIMITED", "key", 429)


@pytest.fixture
def on_own_redis(tmp_path: Path) -> Iterator[tuple[Replica, PrivateRedis, Path]]:
    """A replica on a Redis of the test's own (which the test may stop), and its log."""
    require_servers()
    redis = PrivateRedis(tmp_path)
    redis.start()
    overrides = {**run_overrides(uuid.uuid4().hex[:8]), **LIMITS, "OMS_REDIS_URL": redis.url}
    log = tmp_path / "serve.log"
    try:
        replica = start_replica(overrides, log)
    except BaseException:
        redis.stop()
        raise
    try:
        yield replica, redis, log
    finally:
        stop_replica(replica)
        drop_database(replica.settings)
        redis.stop()


async def test_requests_when_redis_is_down_then_bounded_by_the_replica_and_orders_fail_closed(
    on_own_redis: tuple[Replica, PrivateRedis, Path],
) -> None:
    # Arrange
    replica, redis, log = on_own_redis
    headers = bearer(create_key(replica.settings, Role.ADMIN, name="redis-down").key)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        url = f"{replica.base}/api/instruments"
        assert (await _get(http, url, headers))[0] == 200  # the key is known (cached)
        redis.stop()

        # Act
        started = time.monotonic()
        answers = [await _get(http, url, headers) for _ in range(3 * BURST)]
        elapsed = time.monotonic() - started
        await asyncio.sleep(BURST / PER_S)  # the replica's bucket refills
        order = await http.post(
            f"{replica.base}/api/orders",
            headers={**headers, "Idempotency-Key": "redis-down-1"},
            json={"account_id": "nobody-1", "symbol": "BTC-USD", "side": "BUY",
                  "type": "MARKET", "quantity": "0.01"},
        )  # fmt: skip
        order_body = await order.json(content_type=None)
        metrics = await (await http.get(f"{replica.base}/metrics")).text()

    # Assert: the replica's own bucket held the key to its burst and rate (the one request
    # before the outage counted in Redis, not here); a keyed order answered 503 naming Redis
    # (its claim needs Redis: fails closed), and an order without a key is held by the same
    # bucket as any request
    statuses = [status for status, _, _ in answers]
    passed = statuses.count(200)
    assert set(statuses) == {200, 429}
    assert BURST <= passed <= BURST + math.ceil(PER_S * elapsed) + 1
    assert order.status == 503
    assert (order_body["code"], order_body["dependency"]) == ("DEPENDENCY_UNAVAILABLE", "redis")
    assert log.read_text().count("rate limits: Redis unavailable") == 1
    figures = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line[:1] != "#")
    assert float(figures['oms_rate_limited_total{limit="key"}']) == statuses.count(429)
    assert float(figures["oms_rate_limit_local_checks_total"]) >= 3 * BURST
