"""Rate limits at the door: 429 problem+json with Retry-After past a key's or an address's limit,
and this replica's own buckets as the bound while Redis is away."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import redis.exceptions
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from oms.api.identity import CREDENTIALS_KEY, Caller, auth_middleware
from oms.api.problems import problem_middleware
from oms.api.rate_limits import (
    RATE_LIMITER_KEY,
    ROLE_SHARE,
    SHARED_RETRY_S,
    RateLimiter,
    rate_limit_middleware,
)
from oms.config import Settings
from oms.domain.access import Role
from oms.domain.rate_limits import Bucket, Verdict
from oms.store.memory_rate_limits import MemoryRateLimits
from tests.credentials import MemoryKeys

SETTINGS = Settings(
    rate_limit_key_per_s=1.0, rate_limit_key_burst=4, rate_limit_ip_per_s=1.0,
    rate_limit_ip_burst=10,
)  # fmt: skip


class _DownRedis:
    """A shared store whose Redis refuses every connection."""

    def __init__(self) -> None:
        self.calls = 0

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        self.calls += 1
        raise redis.exceptions.ConnectionError("Connection refused")


async def _instruments(_request: web.Request) -> web.Response:
    return web.json_response([])


async def _client(settings: Settings, shared: Any, keys: MemoryKeys) -> TestClient[Any, Any]:
    app = web.Application(middlewares=[problem_middleware, auth_middleware, rate_limit_middleware])
    app[CREDENTIALS_KEY] = keys.authenticator
    app[RATE_LIMITER_KEY] = RateLimiter(settings, shared, MemoryRateLimits())
    app.router.add_get("/api/instruments", _instruments, allow_head=False)
    app.router.add_get("/health", _instruments, allow_head=False)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
def keys() -> MemoryKeys:
    return MemoryKeys(SETTINGS)


async def _statuses(client: TestClient[Any, Any], headers: dict[str, str], n: int) -> list[int]:
    return [(await client.get("/api/instruments", headers=headers)).status for _ in range(n)]


async def test_get_when_a_key_bursts_past_its_limit_then_429_with_retry_after_and_code(
    keys: MemoryKeys,
) -> None:
    # Arrange
    client = await _client(SETTINGS, MemoryRateLimits(), keys)
    headers = keys.headers(Role.TRADER, ("a1",))
    try:
        # Act
        statuses = await _statuses(client, headers, 4)
        refused = await client.get("/api/instruments", headers=headers)
        body = await refused.json(content_type=None)
        counted = client.app[RATE_LIMITER_KEY].refused  # type: ignore[index]
    finally:
        await client.close()

    # Assert
    assert statuses == [200] * 4
    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    assert refused.headers["Retry-After"] == "1"
    assert body["code"] == "RATE_LIMITED"
    assert body["limit"] == "key"
    assert counted == {"key": 1}


async def test_get_when_a_viewer_bursts_then_its_role_gets_a_quarter_of_the_burst(
    keys: MemoryKeys,
) -> None:
    # Arrange
    client = await _client(SETTINGS, MemoryRateLimits(), keys)
    try:
        # Act
        statuses = await _statuses(client, keys.headers(Role.VIEWER, ("a1",)), 2)
    finally:
        await client.close()

    # Assert: a burst of 4 times the viewer's share of 1/4
    assert statuses == [200, 429]


async def test_get_when_many_keys_share_an_address_then_the_address_limit_refuses(
    keys: MemoryKeys,
) -> None:
    # Arrange: 12 keys, each well inside its own limit, from one address (burst 10)
    client = await _client(SETTINGS, MemoryRateLimits(), keys)
    try:
        # Act
        answers = [
            await client.get("/api/instruments", headers=keys.headers(Role.ADMIN))
            for _ in range(12)
        ]
        last = await answers[-1].json(content_type=None)
    finally:
        await client.close()

    # Assert
    assert [a.status for a in answers] == [200] * 10 + [429] * 2
    assert last["limit"] == "address"


async def test_get_when_limits_are_off_or_path_is_open_then_never_limited(
    keys: MemoryKeys,
) -> None:
    # Arrange
    off = SETTINGS.replace(rate_limit_key_per_s=0, rate_limit_ip_per_s=0)
    client = await _client(off, MemoryRateLimits(), keys)
    limited = await _client(SETTINGS, MemoryRateLimits(), keys)
    try:
        # Act
        statuses = await _statuses(client, keys.headers(Role.VIEWER, ("a1",)), 20)
        probes = [(await limited.get("/health")).status for _ in range(20)]
    finally:
        await client.close()
        await limited.close()

    # Assert
    assert statuses == [200] * 20
    assert probes == [200] * 20


async def test_get_when_redis_is_down_then_this_replica_bounds_the_key_itself(
    keys: MemoryKeys,
) -> None:
    # Arrange
    down = _DownRedis()
    client = await _client(SETTINGS, down, keys)
    headers = keys.headers(Role.TRADER, ("a1",))
    try:
        # Act
        statuses = await _statuses(client, headers, 6)
        limiter = client.app[RATE_LIMITER_KEY]  # type: ignore[index]
    finally:
        await client.close()

    # Assert: the same burst of 4 as with Redis; Redis asked once, not per request
    assert statuses == [200] * 4 + [429] * 2
    assert down.calls == 1
    assert limiter.fallbacks == 6


class _Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class _FlakyRedis(MemoryRateLimits):
    """Shared buckets whose Redis is away while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        if self.down:
            raise redis.exceptions.TimeoutError("Timeout reading from socket")
        return await super().acquire(buckets)


async def test_check_when_redis_answers_again_then_the_shared_buckets_count_again() -> None:
    # Arrange
    clock, shared = _Clock(), _FlakyRedis()
    limiter = RateLimiter(SETTINGS, shared, MemoryRateLimits(clock), clock)
    who = Caller(Role.TRADER, frozenset({"a1"}), key_id="k1", client="10.0.0.9")
    await limiter.check(who)  # Redis away: counted here

    # Act
    shared.down = False
    still_local = await limiter.check(who)
    clock.now += SHARED_RETRY_S
    shared_again = await limiter.check(who)

    # Assert
    assert still_local.allowed
    assert shared_again.allowed
    assert limiter.fallbacks == 2


def test_role_share_when_roles_are_listed_then_every_role_has_a_share() -> None:
    # Assert: a role without a share would answer 500 on its first request
    assert set(ROLE_SHARE) == set(Role)
    assert all(0 < share <= 1 for share in ROLE_SHARE.values())
