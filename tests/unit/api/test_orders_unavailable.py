"""Order reads when MongoDB does not answer: 503 problem+json with Retry-After, never a 500 or a
hang; what the store's memory holds is still served."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from oms.api.problems import PROBLEM_CONTENT_TYPE
from oms.config import Settings
from oms.domain.errors import StoreUnavailable
from oms.domain.limits import RiskLimits
from oms.domain.orders import Order
from oms.engine.core import EngineCore
from oms.engine.ports import OrderQuery, StoredOrder
from oms.store.memory import (
    MemoryOrderRepository,
)
from tests.credentials import MemoryKeys
from tests.malformed_orders import GOOD
from tests.unit.api.memory_app import memory_engine_app
from tests.unit.engine_helpers import FUNDS, tick

RESTING = {**GOOD, "account_id": "a1", "price": "95.00", "client_order_id": "rest-1"}


def _away(what: str) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(StoreUnavailable(f"could not read {what}: MongoDB did not answer"))
    return future


class MongoAway(MemoryOrderRepository):
    """Memory answers; what only MongoDB has (ids ``old-*``, pages of a2) does not come."""

    def may_be_stored(self, order_id: str) -> bool:
        return order_id.startswith("old-") and self.load(order_id) is None

    def read(
        self, order_id: str, *, delay_s: float = 0.0, attempt: int = 0
    ) -> Future[StoredOrder | None]:
        if self.may_be_stored(order_id):
            return _away(f"order {order_id}")
        return super().read(order_id)

    def read_page(self, query: OrderQuery) -> Future[Sequence[Order]]:
        if query.account_id == "a2":
            return _away("a page of orders")
        return super().read_page(query)


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    engine = EngineCore(
        Settings(simulated_feed=False),
        repository=MongoAway(),
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        clock=lambda: 1000.0,
    )
    engine.start()
    for account in ("a1", "a2"):
        engine.open_account(account, FUNDS).get(timeout=5)
    engine.on_tick(tick())
    engine.wait_idle()
    keys = MemoryKeys(engine.settings)
    app, _ = memory_engine_app(engine.settings, engine, keys)
    async with TestClient(TestServer(app), headers=keys.headers()) as test_client:
        yield test_client
    engine.stop()


async def _unavailable(client: TestClient[Any, Any], path: str) -> dict[str, Any]:
    response = await client.get(path)
    assert response.status == 503, await response.text()
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert response.headers["Retry-After"] == str(Settings().retry_after_s)
    problem: dict[str, Any] = await response.json()
    return problem


async def test_get_when_only_mongodb_has_the_order_and_it_is_away_then_503_retry_after(
    client: TestClient[Any, Any],
) -> None:
    # Act
    problem = await _unavailable(client, "/api/orders/old-1")

    # Assert
    assert problem["code"] == "DEPENDENCY_UNAVAILABLE"
    assert problem["dependency"] == "mongodb"
    assert problem["status"] == 503


async def test_events_when_only_mongodb_has_the_order_and_it_is_away_then_503(
    client: TestClient[Any, Any],
) -> None:
    problem = await _unavailable(client, "/api/orders/old-1/events")

    assert (problem["code"], problem["dependency"]) == ("DEPENDENCY_UNAVAILABLE", "mongodb")


async def test_list_when_the_page_reaches_into_mongodb_and_it_is_away_then_503(
    client: TestClient[Any, Any],
) -> None:
    problem = await _unavailable(client, "/api/orders?account_id=a2&limit=5")

    assert (problem["code"], problem["dependency"]) == ("DEPENDENCY_UNAVAILABLE", "mongodb")


async def test_get_when_the_order_is_in_memory_then_200_while_mongodb_is_away(
    client: TestClient[Any, Any],
) -> None:
    # Arrange
    placed = await client.post("/api/orders", json=RESTING)
    assert placed.status == 202
    order_id = (await placed.json())["order_id"]

    # Act
    got = await client.get(f"/api/orders/{order_id}")
    listed = await client.get("/api/orders?account_id=a1")

    # Assert
    assert got.status == 200
    assert (await got.json())["order_id"] == order_id
    assert listed.status == 200
