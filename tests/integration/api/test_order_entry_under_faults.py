"""Order entry over real Redis and Kafka, and through their outages.

The happy path runs against the shared servers (unique keys and topics). Outages run against
private servers the test starts, stops, pauses and restarts (``private_servers``): a POST
during an outage is a 503 with ``Retry-After`` within the bound, and a retry with the same key
afterwards answers the same order id, with one order in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from oms.api.app import build_app
from oms.config import Settings
from oms.domain.order_ids import client_order_id_order
from oms.engine import Engine
from oms.engine.aio import reply
from oms.engine.core import EngineCore
from oms.engine.ports import IdempotencyStore, OrderCache, OrderQuery
from oms.store.memory import MemoryAccountRepository, MemoryIdempotencyStore, MemoryOrderCache
from oms.store.memory_audit import MemoryAuditLog
from oms.store.redis_store import RedisIdempotencyStore, RedisOrderCache, redis_client
from oms.stream.bus import CommandBus
from oms.stream.command_bus import KafkaCommandBus
from oms.stream.engine_bus import EngineCommandBus, KeptRiskEvents
from oms.stream.names import TopicNames
from oms.stream.topics import TopicSpec, delete_topics, ensure_topics
from tests.credentials import MemoryKeys
from tests.integration.private_servers import PrivateKafka, PrivateRedis, free_port
from tests.integration.stream.records import read_all
from tests.malformed_orders import GOOD
from tests.unit.engine_helpers import make_engine, tick

pytestmark = pytest.mark.integration

BOUND_S = 1.0
# What a POST may take beyond the bound: the cache write's floor and a loaded machine's slack.
SLACK_S = 0.7


@pytest.fixture
def door_settings(settings: Settings) -> Settings:
    return settings.replace(
        simulated_feed=False,
        orders_partitions=1,
        dependency_timeout_s=BOUND_S,
        retry_after_s=1,
        redis_timeout_s=0.5,
    )


@dataclass
class Door:
    """An API over a real engine (accounts a1, a2) and the given bus and Redis stores."""

    client: TestClient[Any, Any]
    engine: EngineCore
    slowest_s: float = 0.0

    async def post(self, body: dict[str, Any], key: str) -> tuple[int, Any, Any]:
        """POST an order with ``key``: (status, JSON, headers); the slowest answer is kept."""
        started = time.monotonic()
        response = await self.client.post(
            "/api/orders", json=body, headers={"Idempotency-Key": key}
        )
        self.slowest_s = max(self.slowest_s, time.monotonic() - started)
        return response.status, await response.json(content_type=None), response.headers

    async def get(self, order_id: str) -> int:
        return (await self.client.get(f"/api/orders/{order_id}")).status

    async def orders_of(self, account_id: str) -> list[str]:
        await asyncio.to_thread(self.engine.wait_idle)
        return [o.order_id for o in await reply(self.engine.list_orders(OrderQuery(account_id)))]


@contextlib.asynccontextmanager
async def _door(
    settings: Settings,
    bus: CommandBus | None,
    idempotency: IdempotencyStore,
    cache: OrderCache,
) -> AsyncIterator[Door]:
    """The door over a started engine; ``bus`` None: the engine's own in-process bus."""
    engine = make_engine()
    engine.on_tick(tick())
    engine.wait_idle()
    keys = MemoryKeys(settings)
    facade = Engine(engine)  # what the API holds: the engine's async use cases
    app = build_app(
        settings,
        facade,
        bus or EngineCommandBus(facade),
        idempotency,
        cache,
        market_poll_s=None,
        accounts=MemoryAccountRepository(),
        risk_events=KeptRiskEvents(),
        authenticator=keys.authenticator,
        audit_log=MemoryAuditLog(),
    )
    try:
        async with TestClient(TestServer(app), headers=keys.headers()) as client:
            yield Door(client, engine)
    finally:
        engine.stop()


def _order(unique: str, n: int = 1) -> dict[str, Any]:
    return {**GOOD, "account_id": "a1", "price": "95.00", "client_order_id": f"it-{unique}-{n}"}


def _unavailable(status: int, body: Any, headers: Any, dependency: str) -> None:
    assert status == 503, body
    assert body["code"] == "DEPENDENCY_UNAVAILABLE"
    assert body["dependency"] == dependency
    assert headers["Retry-After"] == "1"


# -- the happy path on the shared servers ------------------------------------------------------


async def test_place_when_kafka_and_redis_answer_then_one_record_and_a_repeat_sends_nothing(
    door_settings: Settings, unique: str
) -> None:
    # Arrange: the real bus on topics of this test, the real stores on the shared Redis
    names = TopicNames.suffixed(unique)
    await ensure_topics(door_settings, (TopicSpec(names.orders, 1, "account_id"),))
    bus = KafkaCommandBus(door_settings, names)
    await bus.start()
    redis = redis_client(door_settings)
    body = _order(unique)
    order_id = client_order_id_order("a1", body["client_order_id"])
    try:
        async with _door(
            door_settings, bus, RedisIdempotencyStore(redis), RedisOrderCache(redis)
        ) as door:
            # Act
            first = await door.post(body, key=f"k-{unique}")
            found = await door.get(order_id)  # the engine never sees it: the cache answers
            again = await door.post(body, key=f"k-{unique}")
            other = await door.post({**body, "quantity": "0.6"}, key=f"k-{unique}")
        await asyncio.sleep(0.5)  # a resend would be on the topic by now
        records = await read_all(door_settings, names.orders, lambda seen: len(seen) >= 1)
    finally:
        await bus.stop()
        await redis.delete(f"idempotency:a1:key:k-{unique}", f"order:{order_id}")
        await redis.delete(f"idempotency:a1:client:{body['client_order_id']}")
        await redis.aclose()
        await delete_topics(door_settings, [names.orders])

    # Assert
    assert first[0] == again[0] == 202
    assert first[1]["order_id"] == again[1]["order_id"] == order_id
    assert found == 200
    assert (other[0], other[1]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert [orjson.loads(r.value)["order_id"] for r in records] == [order_id]
    assert records[0].key == b"a1"


# -- Redis stopped, restarted empty, flushed ----------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_place_when_redis_stops_then_503_and_after_a_restart_the_retry_is_the_same_order(
    door_settings: Settings, private_redis: PrivateRedis, unique: str
) -> None:
    # Arrange
    settings = door_settings.replace(redis_url=private_redis.url)
    redis = redis_client(settings)
    body, key = _order(unique), f"k-{unique}"
    order_id = client_order_id_order("a1", body["client_order_id"])
    try:
        async with _door(
            settings, None, RedisIdempotencyStore(redis), RedisOrderCache(redis)
        ) as door:
            placed = await door.post(body, key)
            await door.orders_of("a1")

            # Act 1: Redis stops
            private_redis.stop()
            during = await door.post(body, key)
            fresh = await door.post(_order(unique, 2), f"k2-{unique}")
            known, unknown = await door.get(order_id), await door.get("NO-SUCH-ORDER")
            slowest_during_outage = door.slowest_s

            # Act 2: Redis comes back empty (no persistence): every key is gone
            private_redis.start()
            after_restart = await door.post(body, key)

            # Act 3: and once more after a FLUSHALL
            private_redis.flushall()
            after_flush = await door.post(body, key)
            orders = await door.orders_of("a1")
    finally:
        await redis.aclose()

    # Assert: quick 503s naming Redis; orders the engine holds still served, unknown ones 404
    assert placed[0] == 202
    _unavailable(*during, "redis")
    _unavailable(*fresh, "redis")
    assert slowest_during_outage < BOUND_S + SLACK_S
    assert (known, unknown) == (200, 404)
    # the retries name the first order, and the engine holds that one order only
    assert after_restart[0] == after_flush[0] == 202
    assert placed[1]["order_id"] == after_restart[1]["order_id"] == order_id
    assert after_flush[1]["order_id"] == order_id
    assert orders == [order_id]


async def test_place_when_redis_is_paused_then_503_within_the_bound(
    door_settings: Settings, private_redis: PrivateRedis, unique: str
) -> None:
    # Arrange: a Redis that keeps its connections open and answers nothing
    settings = door_settings.replace(redis_url=private_redis.url)
    redis = redis_client(settings)
    try:
        async with _door(
            settings, None, RedisIdempotencyStore(redis), RedisOrderCache(redis)
        ) as door:
            await door.post(_order(unique), f"k-{unique}")  # connections made
            private_redis.pause()
            try:
                # Act
                started = time.monotonic()
                answer = await door.post(_order(unique, 2), f"k2-{unique}")
                waited = time.monotonic() - started
            finally:
                private_redis.resume()
    finally:
        await redis.aclose()

    # Assert
    _unavailable(*answer, "redis")
    assert waited < BOUND_S + SLACK_S


# -- Kafka stopped, paused, restarted -----------------------------------------------------------


async def test_place_when_no_broker_listens_then_503_kafka_within_the_bound(
    door_settings: Settings, unique: str
) -> None:
    # Arrange: a bus pointed where nothing listens (it cannot even start)
    settings = door_settings.replace(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    bus = KafkaCommandBus(settings, TopicNames.suffixed(unique))
    async with _door(settings, bus, MemoryIdempotencyStore(), MemoryOrderCache()) as door:
        # Act
        answer = await door.post(_order(unique), f"k-{unique}")
    await bus.stop()

    # Assert
    _unavailable(*answer, "kafka")
    assert door.slowest_s < BOUND_S + SLACK_S


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    server = PrivateKafka(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _until_accepted(door: Door, body: dict[str, Any], key: str, within_s: float) -> Any:
    """Retry as a client told ``Retry-After`` would, until the POST is accepted."""
    deadline = time.monotonic() + within_s
    while True:
        status, answer, _ = await door.post(body, key)
        if status == 202:
            return answer
        assert status == 503, answer
        assert time.monotonic() < deadline, f"still {status} after {within_s:.0f} s: {answer}"
        await asyncio.sleep(0.5)


async def test_place_when_kafka_pauses_and_stops_then_503_and_the_retries_place_each_order_once(
    door_settings: Settings, private_kafka: PrivateKafka, unique: str
) -> None:
    # Arrange: the real bus on a broker of this test's own
    settings = door_settings.replace(kafka_bootstrap=private_kafka.bootstrap)
    names = TopicNames.suffixed(unique)
    await ensure_topics(settings, (TopicSpec(names.orders, 1, "account_id"),))
    bus = KafkaCommandBus(settings, names)
    await bus.start()
    shared = redis_client(door_settings)
    bodies = {n: _order(unique, n) for n in (1, 2, 3)}
    keys = {n: f"k{n}-{unique}" for n in (1, 2, 3)}
    try:
        async with _door(
            settings, bus, RedisIdempotencyStore(shared), RedisOrderCache(shared)
        ) as door:
            placed = await door.post(bodies[1], keys[1])

            # Act 1: the broker freezes (connections open, no answers)
            private_kafka.pause()
            frozen = await door.post(bodies[2], keys[2])
            private_kafka.resume()
            second = await _until_accepted(door, bodies[2], keys[2], 30)

            # Act 2: the broker stops, then comes back
            private_kafka.stop()
            stopped = await door.post(bodies[3], keys[3])
            slowest_during_outages = door.slowest_s
            private_kafka.start()
            third = await _until_accepted(door, bodies[3], keys[3], 40)
        records = await read_all(
            settings,
            names.orders,
            lambda seen: {orjson.loads(r.value)["order_id"] for r in seen} >= {third["order_id"]},
        )
    finally:
        await bus.stop()
        await shared.delete(*(f"idempotency:a1:key:{k}" for k in keys.values()))
        await shared.delete(
            *(f"idempotency:a1:client:{b['client_order_id']}" for b in bodies.values())
        )
        ids = [client_order_id_order("a1", b["client_order_id"]) for b in bodies.values()]
        await shared.delete(*(f"order:{i}" for i in ids))
        await shared.aclose()

    # Assert: quick 503s naming Kafka while it was frozen or gone
    assert placed[0] == 202
    _unavailable(*frozen, "kafka")
    _unavailable(*stopped, "kafka")
    assert slowest_during_outages < BOUND_S + SLACK_S
    # every retry answered the order its first attempt named; each is on the topic, and any
    # record sent twice (the attempt that timed out, then the retry) carries the same order id
    assert [placed[1]["order_id"], second["order_id"], third["order_id"]] == ids
    assert {orjson.loads(r.value)["order_id"] for r in records} == set(ids)
