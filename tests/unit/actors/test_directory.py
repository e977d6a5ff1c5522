"""The directory spawns, finishes, passivates and rehydrates order actors; replays change nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oms.domain.enums import OrderStatus, OrderType
from oms.engine import Engine
from tests.unit.engine_helpers import cancel, make_engine, place, tick


@pytest.fixture
def engine() -> Iterator[Engine]:
    e = make_engine(max_live=2)
    e.on_tick(tick())
    e.wait_idle()
    yield e
    e.stop()


def test_terminal_order_when_settled_then_its_actor_is_gone(engine: Engine) -> None:
    engine.place_order(place(kind=OrderType.MARKET, price=None)).get(timeout=5)
    engine.wait_idle()

    stats = engine.stats().get(timeout=5)

    assert stats["spawned"] == 1
    assert stats["live"] == 0


def test_resting_orders_when_more_than_cap_then_idle_ones_passivated(engine: Engine) -> None:
    ids = [engine.place_order(place(price="95.00")).get(timeout=5).order_id for _ in range(5)]
    engine.wait_idle()

    stats = engine.stats().get(timeout=5)

    assert stats["live"] <= 2
    assert stats["passivated"] >= 3
    assert stats["peak_live"] <= 3
    for order_id in ids:
        order = engine.get_order(order_id).get(timeout=5)
        assert order is not None
        assert order.status is OrderStatus.ACCEPTED


def test_passivated_order_when_cancelled_then_rehydrated_and_cancelled(engine: Engine) -> None:
    first = engine.place_order(place(price="95.00")).get(timeout=5)
    for _ in range(4):
        engine.place_order(place(price="95.00")).get(timeout=5)
    engine.wait_idle()

    engine.cancel_order(cancel(first.order_id)).get(timeout=5)
    engine.wait_idle()

    stats = engine.stats().get(timeout=5)
    order = engine.get_order(first.order_id).get(timeout=5)
    assert stats["rehydrated"] == 1
    assert order is not None
    assert order.status is OrderStatus.CANCELLED
    assert engine.resting_count().get(timeout=5) == 4


def test_passivated_order_when_market_crosses_it_then_rehydrated_and_settled(
    engine: Engine,
) -> None:
    ids = [engine.place_order(place(price="95.00")).get(timeout=5).order_id for _ in range(4)]
    engine.wait_idle()

    engine.on_tick(tick(bid="94.00", ask="94.10", size="10"))
    engine.wait_idle()

    statuses = {engine.get_order(i).get(timeout=5).status for i in ids}  # type: ignore[union-attr]
    assert statuses == {OrderStatus.SETTLED}
    assert engine.stats().get(timeout=5)["rehydrated"] >= 2


def test_place_when_replayed_for_passivated_order_then_nothing_changes(engine: Engine) -> None:
    command = place(price="95.00")
    engine.place_order(command).get(timeout=5)
    for _ in range(4):
        engine.place_order(place(price="95.00")).get(timeout=5)
    engine.wait_idle()
    events = engine.order_events(command.order_id).get(timeout=5)

    again = engine.place_order(command).get(timeout=5)
    engine.wait_idle()

    assert again.status is OrderStatus.ACCEPTED
    assert engine.order_events(command.order_id).get(timeout=5) == events
    assert engine.resting_count().get(timeout=5) == 5


def test_cancel_when_replayed_then_nothing_changes(engine: Engine) -> None:
    placed = engine.place_order(place(price="95.00")).get(timeout=5)
    engine.wait_idle()
    command = cancel(placed.order_id)
    engine.cancel_order(command).get(timeout=5)
    engine.wait_idle()
    events = engine.order_events(placed.order_id).get(timeout=5)

    again = engine.cancel_order(command).get(timeout=5)

    assert again.status is OrderStatus.CANCELLED
    assert engine.order_events(placed.order_id).get(timeout=5) == events
