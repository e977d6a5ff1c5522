"""A door process's app (``oms.api.door_worker``): where a placement is answered, the routes it
mounts, and a door in front of a real engine app (the engine on its internal port)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from oms.api.door_worker import (
    VIEW_PATH,
    DoorServices,
    EngineView,
    Route,
    build_door_app,
    door_metrics,
    listed_instruments,
    route_of,
)
from oms.api.identity import DOOR_HEADER, Caller
from oms.api.internal_hop import HopSigner
from oms.api.order_request import OrderRequest, parse_order_request
from oms.api.rate_limits import RateLimiter
from oms.config import Settings
from oms.domain.access import Role
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.legs import Legs
from oms.store.memory import MemoryIdempotencyStore, MemoryOrderCache
from oms.store.memory_rate_limits import MemoryRateLimits
from oms.stream.engine_bus import EngineCommandBus
from tests.credentials import MemoryKeys
from tests.ports import free_port
from tests.unit.api.memory_app import memory_engine_app
from tests.unit.engine_helpers import make_engine, tick

TOKEN = "door-token"
MARKET = {"account_id": "a1", "symbol": "BTC-USD", "side": "BUY", "type": "MARKET",
          "quantity": "0.01"}  # fmt: skip
LIMIT = {**MARKET, "type": "LIMIT", "price": "100.00", "time_in_force": "GTC"}
STOP = {**MARKET, "type": "STOP_MARKET", "stop_price": "200.00"}


def _order(body: dict[str, str], settings: Settings) -> OrderRequest:
    return parse_order_request(body, listed_instruments(settings), 1000.0)


def _view(
    settings: Settings, stale: frozenset[str] = frozenset(), heard: bool = True
) -> EngineView:
    return EngineView(
        listed_instruments(settings), stale, heard_at=10.0 if heard else 0.0, monotonic=lambda: 10.5
    )


@pytest.mark.parametrize(
    ("body", "stale", "heard", "expected"),
    [
        (LIMIT, frozenset(), True, Route.DOOR),
        (LIMIT, frozenset({"BTC-USD"}), False, Route.DOOR),  # a LIMIT needs no feed
        (MARKET, frozenset(), True, Route.DOOR),
        (MARKET, frozenset({"BTC-USD"}), True, Route.ENGINE),  # the engine answers 422
        (MARKET, frozenset({"ETH-USD"}), True, Route.DOOR),
        (MARKET, frozenset(), False, Route.ENGINE),  # no recent view: the engine checks
        (STOP, frozenset(), True, Route.ENGINE),  # its side needs the engine's last price
    ],
)
def test_route_of_when_order_and_engine_view_vary_then_answered_where_it_is_checked_exactly(
    body: dict[str, str], stale: frozenset[str], heard: bool, expected: Route
) -> None:
    # Arrange
    settings = Settings()
    order = _order(body, settings)

    # Act
    route = route_of(settings, order, _view(settings, stale, heard))

    # Assert
    assert route is expected


def test_route_of_when_a_network_venue_then_every_placement_goes_to_the_engine() -> None:
    # Arrange: the exchange's instruments are the engine's alone
    settings = Settings()
    order = _order(LIMIT, settings)

    # Act
    route = route_of(settings.replace(venue="ccxt"), order, _view(settings))

    # Assert
    assert route is Route.ENGINE


@dataclass
class Pod:
    """A door in front of an engine process's app, sharing the memory stores (Redis)."""

    door: TestClient[Any, Any]
    engine_client: TestClient[Any, Any]
    core: EngineCore
    keys: MemoryKeys
    cache: MemoryOrderCache


@pytest.fixture
async def pod() -> AsyncIterator[Pod]:
    core = make_engine()
    core.on_tick(tick())
    core.wait_idle()
    engine_port = free_port()
    settings = Settings(
        simulated_feed=False,
        http_workers=1,
        http_internal_port=engine_port,
        door_token=TOKEN,
        door_index=0,
    )
    keys = MemoryKeys(settings)
    idempotency, cache = MemoryIdempotencyStore(), MemoryOrderCache()
    engine_app, _ = memory_engine_app(settings, core, keys, idempotency=idempotency, cache=cache)
    services = DoorServices(settings, EngineCommandBus(Engine(core)), idempotency, cache)
    limiter = RateLimiter(settings, MemoryRateLimits(), MemoryRateLimits())
    door_app = build_door_app(
        settings, services, keys.authenticator, limiter, door_metrics(settings, Legs())
    )
    engine_server = TestServer(engine_app, host="127.0.0.1", port=engine_port)
    async with (
        TestClient(engine_server) as engine_client,
        TestClient(TestServer(door_app), headers=keys.headers()) as door,
    ):
        yield Pod(door, engine_client, core, keys, cache)
    core.stop()


async def test_door_when_mounted_then_serves_exactly_the_engine_apps_routes(pod: Pod) -> None:
    # Arrange
    def routes(app: web.Application) -> set[tuple[str, str]]:
        return {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}

    # Act
    door_routes = routes(pod.door.app)
    engine_routes = routes(pod.engine_client.app) - {("GET", VIEW_PATH)}

    # Assert
    assert door_routes == engine_routes


async def test_place_when_through_a_door_then_202_sent_cached_and_read_back_through_the_engine(
    pod: Pod,
) -> None:
    # Act
    placed = await pod.door.post("/api/orders", json=LIMIT)
    body = await placed.json()
    pod.core.wait_idle()
    read = await pod.door.get(f"/api/orders/{body['order_id']}")

    # Assert
    assert placed.status == 202
    assert body["status"] == "NEW"
    assert await pod.cache.get(body["order_id"]) is not None
    assert read.status == 200
    assert (await read.json())["status"] == "ACCEPTED"  # the engine's state, not the cache's


async def test_place_when_retried_with_the_same_key_then_the_engine_answers_the_first_order(
    pod: Pod,
) -> None:
    # Arrange
    headers = {"Idempotency-Key": "k-door"}

    # Act
    first = await pod.door.post("/api/orders", json=LIMIT, headers=headers)
    pod.core.wait_idle()
    again = await pod.door.post("/api/orders", json=LIMIT, headers=headers)
    other = await pod.door.post("/api/orders", json={**LIMIT, "quantity": "0.02"}, headers=headers)

    # Assert
    assert first.status == again.status == 202
    assert (await first.json())["order_id"] == (await again.json())["order_id"]
    assert other.status == 422
    assert (await other.json(content_type=None))["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_place_when_body_is_wrong_then_the_door_answers_the_same_422_problem(
    pod: Pod,
) -> None:
    # Act
    response = await pod.door.post("/api/orders", json={**LIMIT, "quantity": "-1"})
    problem = await response.json(content_type=None)

    # Assert
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert problem["code"] == "VALIDATION_FAILED"


async def test_engine_when_a_door_hop_is_signed_with_another_token_then_401_untrusted_hop(
    pod: Pod,
) -> None:
    # Arrange
    forged = HopSigner("not-the-token", header=DOOR_HEADER)
    caller = Caller(Role.ADMIN, frozenset(), key_id="k")
    header = forged.sign(caller, "GET", "/api/accounts/a1", b"")

    # Act
    response = await pod.engine_client.get("/api/accounts/a1", headers={DOOR_HEADER: header})
    problem = await response.json(content_type=None)

    # Assert
    assert response.status == 401
    assert problem["code"] == "UNTRUSTED_HOP"


async def test_engine_when_asked_for_the_door_view_then_names_stale_symbols_only(pod: Pod) -> None:
    # Act
    response = await pod.engine_client.get(VIEW_PATH)

    # Assert
    assert response.status == 200
    assert await response.json() == {"stale": []}
