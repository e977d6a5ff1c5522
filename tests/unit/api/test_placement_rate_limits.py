"""A placement counts itself against its rate limits (``oms.api.rate_limits.counts_itself``).

What must hold, in words: a placement past its limits is answered 429 and claims nothing and
sends nothing; one refused for its body (422) still counts, and past its limits the 429 is its
answer; one without claims is counted before it is sent; one relayed by a door to its engine is
counted once, at the door; and while Redis is away the placement is counted by the replica's own
buckets, its claim then failing closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import redis.exceptions
from aiohttp.test_utils import TestClient, TestServer

from oms.api.door_worker import DoorServices, build_door_app, door_metrics
from oms.api.identity import Caller
from oms.api.rate_limits import RateLimiter
from oms.config import Settings
from oms.domain.access import Role
from oms.domain.rate_limits import Bucket, Verdict
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.engine.ports import Claim
from oms.legs import Legs
from oms.store.memory import MemoryIdempotencyStore, MemoryOrderCache
from oms.store.memory_rate_limits import MemoryAdmission, MemoryRateLimits
from oms.stream.engine_bus import EngineCommandBus
from tests.credentials import MemoryKeys
from tests.ports import free_port
from tests.unit.api.memory_app import memory_engine_app
from tests.unit.engine_helpers import make_engine, tick

MARKET = {"account_id": "a1", "symbol": "BTC-USD", "side": "BUY", "type": "MARKET",
          "quantity": "0.01"}  # fmt: skip
LIMIT = {**MARKET, "type": "LIMIT", "price": "100.00", "time_in_force": "GTC"}
STOP = {**MARKET, "type": "STOP_MARKET", "stop_price": "200.00"}
TOKEN = "door-token"
BURST = 3  # a trader's key: 3 at once, then one every 10 s (nothing refills during a test)


def _settings(**more: Any) -> Settings:
    return Settings(
        simulated_feed=False, rate_limit_key_per_s=0.1, rate_limit_key_burst=BURST,
        rate_limit_ip_per_s=0, **more,
    )  # fmt: skip


def _limiter(settings: Settings, idempotency: MemoryIdempotencyStore) -> RateLimiter:
    """A limiter whose shared buckets take a placement's claims in the same step (as Redis)."""
    shared = MemoryRateLimits()
    return RateLimiter(
        settings, shared, MemoryRateLimits(), claiming=MemoryAdmission(shared, idempotency)
    )


@dataclass
class Replica:
    """An engine app with its rate limiter, and what stands behind it."""

    client: TestClient[Any, Any]
    core: EngineCore
    bus: EngineCommandBus
    idempotency: MemoryIdempotencyStore
    keys: MemoryKeys
    limiter: RateLimiter


@pytest.fixture
async def replica() -> AsyncIterator[Replica]:
    core = make_engine()
    core.on_tick(tick())
    core.wait_idle()
    settings = _settings()
    keys = MemoryKeys(settings)
    idempotency = MemoryIdempotencyStore()
    limiter = _limiter(settings, idempotency)
    app, bus = memory_engine_app(
        settings, core, keys, idempotency=idempotency, rate_limiter=limiter
    )
    headers = keys.headers(Role.TRADER, ("a1",))
    async with TestClient(TestServer(app), headers=headers) as client:
        yield Replica(client, core, bus, idempotency, keys, limiter)
    core.stop()


async def _place(client: TestClient[Any, Any], body: dict[str, str]) -> tuple[int, Any]:
    response = await client.post("/api/orders", json=body)
    return response.status, await response.json(content_type=None)


async def test_place_when_past_the_key_limit_then_429_nothing_claimed_nothing_sent(
    replica: Replica,
) -> None:
    # Act
    answers = [
        await _place(replica.client, {**LIMIT, "client_order_id": f"c{n}"}) for n in range(4)
    ]
    later = await replica.idempotency.claim("a1:client:c3", "o-later", b"", 60)

    # Assert: the fourth was refused before its claim was taken or its command sent
    assert [status for status, _ in answers] == [202] * BURST + [429]
    assert answers[-1][1]["code"] == "RATE_LIMITED"
    assert answers[-1][1]["limit"] == "key"
    assert replica.bus.sent_count == BURST
    assert later.first
    assert replica.limiter.refused == {"key": 1}


async def test_place_when_the_body_is_refused_then_it_counts_and_past_the_limit_429_wins(
    replica: Replica,
) -> None:
    # Act
    wrong = {**LIMIT, "quantity": "-1"}
    answers = [await _place(replica.client, wrong) for _ in range(BURST + 1)]
    valid = await _place(replica.client, LIMIT)

    # Assert
    assert [status for status, _ in answers] == [422] * BURST + [429]
    assert answers[-1][1]["code"] == "RATE_LIMITED"
    assert valid[0] == 429
    assert replica.bus.sent_count == 0


async def test_place_when_the_order_makes_no_claim_then_counted_before_it_is_sent(
    replica: Replica,
) -> None:
    # Act: no client order id, no idempotency key
    statuses = [(await _place(replica.client, LIMIT))[0] for _ in range(BURST + 1)]

    # Assert
    assert statuses == [202] * BURST + [429]
    assert replica.bus.sent_count == BURST


async def test_place_when_retried_with_its_client_order_id_then_each_try_counts_once(
    replica: Replica,
) -> None:
    # Act: the same order three times (the first places it, the others answer it)
    body = {**LIMIT, "client_order_id": "same"}
    statuses = [(await _place(replica.client, body))[0] for _ in range(BURST + 1)]

    # Assert
    assert statuses == [202] * BURST + [429]
    assert replica.bus.sent_count == 1


class _DownAdmission:
    """Shared buckets whose Redis refuses every connection."""

    def __init__(self) -> None:
        self.calls = 0

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        self.calls += 1
        raise redis.exceptions.ConnectionError("Connection refused")

    async def acquire_and_claim(
        self, buckets: Sequence[Bucket], keys: Sequence[str], order_id: str,
        fingerprint: bytes, ttl_s: int,
    ) -> tuple[Verdict, list[Claim]]:  # fmt: skip
        self.calls += 1
        raise redis.exceptions.ConnectionError("Connection refused")


async def test_check_claiming_when_redis_is_away_then_counted_here_and_no_claim_made() -> None:
    # Arrange
    down = _DownAdmission()
    limiter = RateLimiter(_settings(), down, MemoryRateLimits(), claiming=down)
    who = Caller(Role.TRADER, frozenset({"a1"}), key_id="k1", client="10.0.0.9")

    # Act
    answers = [
        await limiter.check_claiming(who, ["a1:client:c"], "o-1", b"", ttl_s=60)
        for _ in range(BURST + 1)
    ]

    # Assert: the replica's own burst; Redis asked once, not again until SHARED_RETRY_S is past
    expected = [(True, None)] * BURST + [(False, None)]
    assert [(verdict.allowed, claims) for verdict, claims in answers] == expected
    assert down.calls == 1
    assert limiter.fallbacks == BURST + 1


@dataclass
class Pod:
    """A door in front of an engine app, both counting in one shared store (as in Redis)."""

    door: TestClient[Any, Any]
    door_bus: EngineCommandBus
    door_limiter: RateLimiter
    engine_limiter: RateLimiter


@pytest.fixture
async def pod() -> AsyncIterator[Pod]:
    core = make_engine()
    core.on_tick(tick())
    core.wait_idle()
    engine_port = free_port()
    settings = _settings(
        http_workers=1, http_internal_port=engine_port, door_token=TOKEN, door_index=0
    )
    keys = MemoryKeys(settings)
    idempotency = MemoryIdempotencyStore()
    shared = MemoryRateLimits()
    door_limiter = RateLimiter(
        settings, shared, MemoryRateLimits(), claiming=MemoryAdmission(shared, idempotency)
    )
    engine_limiter = RateLimiter(settings, shared, MemoryRateLimits())
    engine_app, _ = memory_engine_app(
        settings, core, keys, idempotency=idempotency, rate_limiter=engine_limiter
    )
    door_bus = EngineCommandBus(Engine(core))
    services = DoorServices(settings, door_bus, idempotency, MemoryOrderCache())
    door_app = build_door_app(
        settings, services, keys.authenticator, door_limiter, door_metrics(settings, Legs())
    )
    headers = keys.headers(Role.TRADER, ("a1",))
    async with (
        TestClient(TestServer(engine_app, host="127.0.0.1", port=engine_port)),
        TestClient(TestServer(door_app), headers=headers) as door,
    ):
        yield Pod(door, door_bus, door_limiter, engine_limiter)
    core.stop()


async def test_place_when_a_door_relays_it_to_the_engine_then_counted_once_at_the_door(
    pod: Pod,
) -> None:
    # Act: stop orders are relayed (the engine checks their side); the last is one too many
    statuses = [(await _place(pod.door, STOP))[0] for _ in range(BURST + 1)]

    # Assert
    assert statuses == [202] * BURST + [429]
    assert pod.door_limiter.refused == {"key": 1}
    assert pod.engine_limiter.refused == {}


async def test_place_when_a_door_answers_it_then_counted_with_its_claim_at_the_door(
    pod: Pod,
) -> None:
    # Act
    answers = [
        await _place(pod.door, {**LIMIT, "client_order_id": f"d{n}"}) for n in range(BURST + 1)
    ]

    # Assert
    assert [status for status, _ in answers] == [202] * BURST + [429]
    assert answers[-1][1]["code"] == "RATE_LIMITED"
    assert pod.door_bus.sent_count == BURST
