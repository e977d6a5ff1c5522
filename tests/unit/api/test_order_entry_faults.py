"""Order entry when Redis, Kafka or MongoDB fail: a quick 503 naming the dependency, never a 500
or a hang, and a retry with the same key or client order id never makes a second order."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.exceptions as redis_errors
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaConnectionError
from pymongo.errors import ServerSelectionTimeoutError

from oms.api.app import build_app
from oms.api.order_request import parse_order_request
from oms.api.problems import PROBLEM_CONTENT_TYPE
from oms.config import Settings
from oms.domain.order_ids import client_order_id_order, idempotency_key_order
from oms.engine import Engine
from oms.engine.aio import reply
from oms.engine.core import EngineCore
from oms.engine.ports import AccountRecord, Claim, IdempotencyStore, OrderCache, OrderQuery
from oms.store.memory import MemoryAccountRepository, MemoryOrderCache
from oms.store.memory_audit import MemoryAuditLog
from oms.stream.bus import OrderCommand
from oms.stream.engine_bus import EngineCommandBus, KeptRiskEvents
from tests.credentials import MemoryKeys
from tests.malformed_orders import GOOD
from tests.unit.engine_helpers import make_engine, tick

BOUND_S = 0.3
SETTINGS = Settings(simulated_feed=False, dependency_timeout_s=BOUND_S, retry_after_s=3)
ORDER = {**GOOD, "account_id": "a1", "price": "95.00", "client_order_id": "door-1"}
KEYED = {k: v for k, v in ORDER.items() if k != "client_order_id"}


class Fault:
    """What a fake dependency does now: answer, fail (refused), or hang (no answer)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.mode = "up"

    async def check(self) -> None:
        if self.mode == "down":
            raise self.error
        if self.mode == "hang":  # an event nobody sets: waits like a server that is gone
            await asyncio.Event().wait()


class RedisLikeClaims(IdempotencyStore):
    """Claims in a dict that can go down, hang, or lose every key (a restart, FLUSHALL)."""

    def __init__(self) -> None:
        self.fault = Fault(redis_errors.ConnectionError("Connection refused"))
        self.claims: dict[str, Claim] = {}

    async def claim(self, key: str, order_id: str, fingerprint: bytes, ttl_s: int) -> Claim:
        await self.fault.check()
        held = self.claims.get(key)
        if held is not None:
            return held
        self.claims[key] = Claim(False, order_id, fingerprint)  # what a later caller learns
        return Claim(True, order_id, fingerprint)


class RedisLikeCache(OrderCache):
    """The order cache over a dict that can go down or hang."""

    def __init__(self) -> None:
        self.fault = Fault(redis_errors.ConnectionError("Connection refused"))
        self.memory = MemoryOrderCache()

    async def put(self, order: Any, ttl_s: int) -> None:
        await self.fault.check()
        await self.memory.put(order, ttl_s)

    async def get(self, order_id: str) -> Any:
        await self.fault.check()
        return await self.memory.get(order_id)


class KafkaLikeBus(EngineCommandBus):
    """The in-process bus, behind a fault: down (refused) or hanging (a broker that is gone)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.fault = Fault(KafkaConnectionError("Unable to bootstrap from 127.0.0.1:1"))

    async def send(self, commands: Sequence[OrderCommand]) -> None:
        await self.fault.check()
        await super().send(commands)


class DownAccounts(MemoryAccountRepository):
    """An account store whose server does not answer."""

    async def open(self, record: AccountRecord) -> None:
        raise ServerSelectionTimeoutError("127.0.0.1:27027: [Errno 111] Connection refused")


@dataclass
class Door:
    client: TestClient[Any, Any]
    engine: EngineCore
    claims: RedisLikeClaims
    cache: RedisLikeCache
    bus: KafkaLikeBus
    answers: list[float] = field(default_factory=list)

    async def post(self, body: dict[str, Any], key: str | None = None) -> tuple[int, Any, Any]:
        """POST an order: (status, JSON body, headers); the answer's time is kept."""
        started = time.monotonic()
        headers = {} if key is None else {"Idempotency-Key": key}
        response = await self.client.post("/api/orders", json=body, headers=headers)
        self.answers.append(time.monotonic() - started)
        return response.status, await response.json(content_type=None), response.headers

    async def orders_of_a1(self) -> list[Any]:
        await asyncio.to_thread(self.engine.wait_idle)
        return list(await reply(self.engine.list_orders(OrderQuery("a1"))))


@pytest.fixture
async def door() -> AsyncIterator[Door]:
    engine = make_engine()
    engine.on_tick(tick())
    engine.wait_idle()
    facade = Engine(engine)  # what the API holds: the engine's async use cases
    claims, cache, bus = RedisLikeClaims(), RedisLikeCache(), KafkaLikeBus(facade)
    keys = MemoryKeys(SETTINGS)
    app = build_app(
        SETTINGS,
        facade,
        bus,
        claims,
        cache,
        market_poll_s=None,
        accounts=DownAccounts(),
        risk_events=KeptRiskEvents(),
        authenticator=keys.authenticator,
        audit_log=MemoryAuditLog(),
    )
    async with TestClient(TestServer(app), headers=keys.headers()) as client:
        yield Door(client, engine, claims, cache, bus)
    engine.stop()


def _assert_unavailable(status: int, body: Any, headers: Any, dependency: str) -> None:
    assert status == 503, body
    assert headers["Content-Type"].startswith(PROBLEM_CONTENT_TYPE)
    assert headers["Retry-After"] == "3"
    assert body["code"] == "DEPENDENCY_UNAVAILABLE"
    assert body["dependency"] == dependency


@pytest.mark.parametrize("mode", ["down", "hang"])
async def test_place_when_redis_fails_then_503_redis_within_the_bound_and_nothing_sent(
    door: Door, mode: str
) -> None:
    # Arrange
    door.claims.fault.mode = mode

    # Act
    status, body, headers = await door.post(ORDER, key="k-1")

    # Assert
    _assert_unavailable(status, body, headers, "redis")
    assert door.answers[0] < BOUND_S + 0.5
    assert door.bus.sent_count == 0


@pytest.mark.parametrize("mode", ["down", "hang"])
async def test_place_when_kafka_fails_then_503_kafka_within_the_bound_and_nothing_cached(
    door: Door, mode: str
) -> None:
    # Arrange
    door.bus.fault.mode = mode

    # Act
    status, body, headers = await door.post(ORDER, key="k-1")

    # Assert: nothing answers for an order that is not on Kafka
    _assert_unavailable(status, body, headers, "kafka")
    assert door.answers[0] < BOUND_S + 0.5
    order_id = client_order_id_order("a1", "door-1")
    assert await door.cache.memory.get(order_id) is None
    unknown = await door.client.get(f"/api/orders/{order_id}")
    assert unknown.status == 404
    assert (await unknown.json())["code"] == "NOT_FOUND"


async def test_place_when_retried_after_a_kafka_503_then_sent_again_with_the_same_id(
    door: Door,
) -> None:
    # Arrange: the first attempt claimed its key, then Kafka refused it
    door.bus.fault.mode = "down"
    first, _, _ = await door.post(KEYED, key="k-retry")
    door.bus.fault.mode = "up"

    # Act
    status, body, _ = await door.post(KEYED, key="k-retry")

    # Assert
    assert first == 503
    assert status == 202
    assert body["order_id"] == idempotency_key_order("a1", "k-retry")
    assert [o.order_id for o in await door.orders_of_a1()] == [body["order_id"]]


async def test_place_when_redis_lost_every_key_then_a_retry_names_the_same_single_order(
    door: Door,
) -> None:
    # Arrange: placed once, then Redis restarts empty (or FLUSHALL, or eviction)
    _, placed, _ = await door.post(ORDER, key="k-1")
    await door.orders_of_a1()
    door.claims.claims.clear()

    # Act
    status, again, _ = await door.post(ORDER, key="k-1")

    # Assert: the command went again (Redis could not tell), and the engine placed it once
    assert status == 202
    assert again["order_id"] == placed["order_id"] == client_order_id_order("a1", "door-1")
    assert door.bus.sent_count == 2
    assert [o.order_id for o in await door.orders_of_a1()] == [placed["order_id"]]


async def test_place_when_a_first_request_died_between_claim_and_send_then_the_retry_sends_it(
    door: Door,
) -> None:
    # Arrange: what a process killed right after its claim leaves: the key claimed for the
    # derived id, nothing sent, nothing cached
    order_id = idempotency_key_order("a1", "k-crash")
    fingerprint = parse_order_request(KEYED, door.engine.instruments).fingerprint()
    await door.claims.claim("a1:key:k-crash", order_id, fingerprint, 60)

    # Act
    status, body, _ = await door.post(KEYED, key="k-crash")

    # Assert: the retry found nothing, so it sent the order (never a 202 for an unsent one)
    assert status == 202
    assert body["order_id"] == order_id
    assert door.bus.sent_count == 1
    assert [o.order_id for o in await door.orders_of_a1()] == [order_id]


async def test_place_when_the_cache_write_fails_after_the_send_then_still_202(
    door: Door,
) -> None:
    # Arrange
    door.cache.fault.mode = "down"

    # Act
    status, body, _ = await door.post(ORDER)

    # Assert: the command is on its way, so the order is accepted, and the engine serves it
    assert status == 202
    await door.orders_of_a1()
    got = await door.client.get(f"/api/orders/{body['order_id']}")
    assert got.status == 200


async def test_get_when_redis_is_down_then_known_orders_are_served_and_unknown_are_404(
    door: Door,
) -> None:
    # Arrange
    _, placed, _ = await door.post(ORDER)
    await door.orders_of_a1()
    door.cache.fault.mode = "down"

    # Act
    known = await door.client.get(f"/api/orders/{placed['order_id']}")
    unknown = await door.client.get("/api/orders/NO-SUCH-ORDER")

    # Assert
    assert known.status == 200
    assert unknown.status == 404
    assert (await unknown.json())["code"] == "NOT_FOUND"


async def test_place_when_redis_is_down_for_many_requests_then_logged_once_per_outage(
    door: Door, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange
    caplog.set_level(logging.INFO)
    door.claims.fault.mode = "down"

    # Act: 30 refused, then Redis answers again
    statuses = [(await door.post(ORDER, key=f"k-{n}"))[0] for n in range(30)]
    door.claims.fault.mode = "up"
    recovered, _, _ = await door.post(ORDER, key="k-after")

    # Assert
    assert set(statuses) == {503}
    assert recovered == 202
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("oms.api")]
    assert len(lines) == 2, lines
    assert "30 call(s) failed" in lines[1]


async def test_open_account_when_mongodb_is_down_then_503_mongodb_not_500(door: Door) -> None:
    # Act: an unguarded store call, caught by the middleware
    response = await door.client.post(
        "/api/accounts", json={"account_id": "new-1", "balances": {"USD": "10"}}
    )

    # Assert
    body = await response.json()
    assert response.status == 503
    assert body["code"] == "DEPENDENCY_UNAVAILABLE"
    assert body["dependency"] == "mongodb"
    assert response.headers["Retry-After"] == "3"


async def test_place_when_the_same_client_order_id_comes_with_another_body_then_409(
    door: Door,
) -> None:
    # Arrange
    await door.post(ORDER)

    # Act: no key, then another key: the client order id alone names the order
    other, body, _ = await door.post({**ORDER, "quantity": "0.6"})
    with_key, keyed_body, _ = await door.post({**ORDER, "quantity": "0.6"}, key="k-9")

    # Assert
    assert other == with_key == 409
    assert body["code"] == keyed_body["code"] == "CLIENT_ORDER_ID_IN_USE"
    assert len(await door.orders_of_a1()) == 1


async def test_place_when_the_same_client_order_id_comes_with_another_key_then_the_same_order(
    door: Door,
) -> None:
    # Arrange
    _, first, _ = await door.post(ORDER, key="k-1")

    # Act
    status, again, _ = await door.post(ORDER, key="k-2")

    # Assert
    assert status == 202
    assert again["order_id"] == first["order_id"]
    assert len(await door.orders_of_a1()) == 1


async def test_place_when_a_key_is_reused_for_another_client_order_id_then_422(
    door: Door,
) -> None:
    # Arrange
    await door.post(ORDER, key="k-1")

    # Act
    status, body, _ = await door.post({**ORDER, "client_order_id": "door-2"}, key="k-1")

    # Assert
    assert status == 422
    assert body["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(await door.orders_of_a1()) == 1
