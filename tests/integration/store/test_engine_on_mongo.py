"""The engine, unchanged, on MongoOrderRepository: settled orders durable, resting ones recovered."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from pymongo import MongoClient

from oms.config import Settings
from oms.domain.enums import OrderStatus
from oms.domain.limits import RiskLimits
from oms.engine.core import EngineCore
from oms.store.mongo import MongoOrderRepository
from oms.store.mongo_connection import store_databases
from tests.unit.engine_helpers import FUNDS, place, tick


@pytest.fixture
def database(settings: Settings, unique: str) -> Iterator[str]:
    """A fresh database name, dropped afterwards."""
    name = f"engine_{unique}"
    yield name
    client: MongoClient[dict] = MongoClient(settings.mongo_url)
    for dropped in store_databases(name):
        client.drop_database(dropped)
    client.close()


def test_engine_when_on_mongodb_then_writes_through_and_a_restart_recovers_open_orders(
    settings: Settings, database: str
) -> None:
    # Arrange
    repository = MongoOrderRepository(settings.mongo_url, database)
    repository.start()
    engine = EngineCore(
        Settings(max_live_order_actors=1000, simulated_feed=False),
        repository=repository,
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        clock=lambda: 1000.0,
    )
    engine.start()
    try:
        engine.open_account("a1", FUNDS).get(timeout=5)
        engine.on_tick(tick(size="100"))
        filled = [place(price="100.10") for _ in range(20)]
        resting = place(price="99.00")

        # Act
        for command in [*filled, resting]:
            engine.place_order(command).get(timeout=5)
        engine.wait_idle()
        engine.flush().get(timeout=30)
        statuses = [engine.get_order(c.order_id).get(timeout=5) for c in filled]
    finally:
        engine.stop()
        repository.stop()
    restarted = MongoOrderRepository(settings.mongo_url, database)
    restarted.start()
    try:
        recovery = restarted.recover_now()
        # Finished before the restart: only MongoDB has it, read on the store's own thread.
        stored = restarted.read(filled[0].order_id).result(timeout=10)
        settled = None if stored is None else stored.order
    finally:
        restarted.stop()

    # Assert
    assert {o.status for o in statuses if o is not None} == {OrderStatus.SETTLED}
    assert [s.order.order_id for s in recovery.open_orders] == [resting.order_id]
    assert recovery.open_orders[0].order.status is OrderStatus.ACCEPTED
    assert recovery.finished == 20
    assert settled is not None
    assert settled.status is OrderStatus.SETTLED
