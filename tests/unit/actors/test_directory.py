"""The directory spawns, finishes, passivates and rehydrates order actors; replays change nothing.

A command or query may meet an actor that has stopped: the tests put the directory in the state
the race leaves it in (a stale ref kept, or a message queued behind the actor's stop) instead
of waiting for the timing to line up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from oms.actors.directory import OrderDirectory, _Live
from oms.actors.messages import GetOrder, Route
from oms.actors.order import OrderActor
from oms.actors.runtime import DispatchFuture, tell
from oms.domain.enums import OrderStatus, OrderType
from oms.domain.events import OrderCancelled, OrderFilled
from oms.domain.orders import Order
from oms.domain.transitions import InvalidTransition, Trigger
from oms.engine.core import EngineCore
from tests.unit.engine_helpers import cancel, fill, make_engine, place, tick

T = TypeVar("T")

_CROSSING = {"bid": "94.00", "ask": "94.10", "size": "10"}  # fills a BUY resting at 95.00


@pytest.fixture
def engine() -> Iterator[EngineCore]:
    e = make_engine(max_live=2)
    e.on_tick(tick())
    e.wait_idle()
    yield e
    e.stop()


def test_terminal_order_when_settled_then_its_actor_is_gone(engine: EngineCore) -> None:
    engine.place_order(place(kind=OrderType.MARKET, price=None)).get(timeout=5)
    engine.wait_idle()

    stats = engine.stats().get(timeout=5)

    assert stats["spawned"] == 1
    assert stats["live"] == 0


def test_resting_orders_when_more_than_cap_then_idle_ones_passivated(engine: EngineCore) -> None:
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


def test_passivated_order_when_cancelled_then_rehydrated_and_cancelled(engine: EngineCore) -> None:
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
    engine: EngineCore,
) -> None:
    ids = [engine.place_order(place(price="95.00")).get(timeout=5).order_id for _ in range(4)]
    engine.wait_idle()

    engine.on_tick(tick(bid="94.00", ask="94.10", size="10"))
    engine.wait_idle()

    statuses = {engine.get_order(i).get(timeout=5).status for i in ids}  # type: ignore[union-attr]
    assert statuses == {OrderStatus.SETTLED}
    assert engine.stats().get(timeout=5)["rehydrated"] >= 2


def test_place_when_replayed_for_passivated_order_then_nothing_changes(engine: EngineCore) -> None:
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


def test_cancel_when_replayed_then_nothing_changes(engine: EngineCore) -> None:
    placed = engine.place_order(place(price="95.00")).get(timeout=5)
    engine.wait_idle()
    command = cancel(placed.order_id)
    engine.cancel_order(command).get(timeout=5)
    engine.wait_idle()
    events = engine.order_events(placed.order_id).get(timeout=5)

    again = engine.cancel_order(command).get(timeout=5)

    assert again.status is OrderStatus.CANCELLED
    assert engine.order_events(placed.order_id).get(timeout=5) == events


# -- an actor that stopped before the directory heard of it ---------------------------------------


def _on_engine_thread(engine: EngineCore, fn: Callable[[], T]) -> T:
    """Run ``fn`` on the dispatcher thread, the only one that may touch the directory's state."""
    return engine._on_dispatcher(fn).get(timeout=5)


def _directory(engine: EngineCore) -> OrderDirectory:
    directory = engine._directory._actor_weakref()
    assert isinstance(directory, OrderDirectory)
    return directory


def _live(engine: EngineCore, order_id: str) -> _Live:
    """The directory's entry for a live order: the ref a later race will find stale."""
    return _on_engine_thread(engine, lambda: _directory(engine).live[order_id])


def _keep_stale(engine: EngineCore, order_id: str, stale: _Live) -> None:
    """Put back a stopped actor's entry: the directory between the actor's stop and its notice."""
    assert not stale.ref.is_alive()

    def put_back() -> None:
        _directory(engine).live[order_id] = stale

    _on_engine_thread(engine, put_back)


def _resting(engine: EngineCore) -> Order:
    """A BUY LIMIT at 95.00, resting at the venue with its actor live and idle."""
    placed = engine.place_order(place(price="95.00")).get(timeout=5)
    engine.wait_idle()
    return placed


def _events(engine: EngineCore, order_id: str, kind: type) -> list[Any]:
    return [e for e in engine.order_events(order_id).get(timeout=5) if isinstance(e, kind)]


def test_get_order_when_actor_stopped_before_its_finished_notice_then_answered_from_journal(
    engine: EngineCore,
) -> None:
    placed = _resting(engine)
    stale = _live(engine, placed.order_id)
    engine.cancel_order(cancel(placed.order_id)).get(timeout=5)
    engine.wait_idle()
    _keep_stale(engine, placed.order_id, stale)

    order = engine.get_order(placed.order_id).get(timeout=5)

    assert order is not None
    assert order.status is OrderStatus.CANCELLED
    assert order == engine.journal.repository.get(placed.order_id)


def test_get_order_when_queued_behind_actors_stop_then_answered_from_journal(
    engine: EngineCore,
) -> None:
    placed = _resting(engine)
    stale = _live(engine, placed.order_id)
    directory = _directory(engine)

    def race() -> DispatchFuture[Order | None]:
        reply: DispatchFuture[Order | None] = DispatchFuture()
        tell(stale.ref, _ActorStop())  # the actor stops on the message ahead of the query
        directory.on_get_order(GetOrder(placed.order_id, reply))  # still live here: queued
        return reply

    order = _on_engine_thread(engine, race).get(timeout=5)

    assert order is not None
    assert order.status is OrderStatus.ACCEPTED


def test_cancel_when_actor_stopped_because_order_settled_then_refused_not_cancellable(
    engine: EngineCore,
) -> None:
    placed = _resting(engine)
    stale = _live(engine, placed.order_id)
    engine.on_tick(tick(**_CROSSING))
    engine.wait_idle()
    _keep_stale(engine, placed.order_id, stale)

    with pytest.raises(InvalidTransition) as refused:
        engine.cancel_order(cancel(placed.order_id)).get(timeout=5)

    assert refused.value.code == "INVALID_TRANSITION"
    assert refused.value.status is OrderStatus.SETTLED
    assert refused.value.trigger is Trigger.CANCEL
    assert engine.stats().get(timeout=5)["live"] == 0  # the stale entry is forgotten


def test_cancel_when_replayed_to_stopped_actor_of_cancelled_order_then_nothing_changes(
    engine: EngineCore,
) -> None:
    placed = _resting(engine)
    stale = _live(engine, placed.order_id)
    command = cancel(placed.order_id)
    engine.cancel_order(command).get(timeout=5)
    engine.wait_idle()
    events = engine.order_events(placed.order_id).get(timeout=5)
    _keep_stale(engine, placed.order_id, stale)

    again = engine.cancel_order(command).get(timeout=5)

    assert again.status is OrderStatus.CANCELLED
    assert engine.order_events(placed.order_id).get(timeout=5) == events


def test_submitted_cancel_when_actor_stopped_then_directory_keeps_routing(
    engine: EngineCore,
) -> None:
    placed = _resting(engine)
    stale = _live(engine, placed.order_id)
    engine.cancel_order(cancel(placed.order_id)).get(timeout=5)
    engine.wait_idle()
    _keep_stale(engine, placed.order_id, stale)

    engine.submit([cancel(placed.order_id)])  # as DELETE /api/orders/{id} does: told, no answer
    engine.wait_idle()

    # A failure inside a tell would have stopped the directory: it still routes.
    assert engine.place_order(place(price="95.00")).get(timeout=5).status is OrderStatus.NEW
    assert len(_events(engine, placed.order_id, OrderCancelled)) == 1


def test_cancel_when_routed_to_passivated_actors_stale_ref_then_rehydrated_and_cancelled(
    engine: EngineCore,
) -> None:
    placed = _resting(engine)
    stale = _live(engine, placed.order_id)
    stale.ref.stop(block=False)  # passivated, but the directory still holds the ref
    engine.wait_idle()
    _keep_stale(engine, placed.order_id, stale)

    engine.cancel_order(cancel(placed.order_id)).get(timeout=5)
    engine.wait_idle()

    order = engine.get_order(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.CANCELLED
    assert len(_events(engine, placed.order_id, OrderCancelled)) == 1
    assert engine.stats().get(timeout=5)["rehydrated"] == 1
    assert engine.resting_count().get(timeout=5) == 0


def test_fill_when_routed_to_passivated_actors_stale_ref_then_applied_once(
    engine: EngineCore,
) -> None:
    placed = _resting(engine)
    stale = _live(engine, placed.order_id)
    stale.ref.stop(block=False)
    engine.wait_idle()
    _keep_stale(engine, placed.order_id, stale)

    engine.apply_fill(fill(placed.order_id, "0.5", "95.00")).get(timeout=5)
    engine.wait_idle()

    order = engine.get_order(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.SETTLED
    assert len(_events(engine, placed.order_id, OrderFilled)) == 1
    assert engine.stats().get(timeout=5)["rehydrated"] == 1


def test_venue_fills_when_routed_to_passivated_actors_stale_ref_then_rehydrated_and_settled(
    engine: EngineCore,
) -> None:
    placed = _resting(engine)
    stale = _live(engine, placed.order_id)
    stale.ref.stop(block=False)
    engine.wait_idle()
    _keep_stale(engine, placed.order_id, stale)

    engine.on_tick(tick(**_CROSSING))
    engine.wait_idle()

    order = engine.get_order(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.SETTLED
    assert engine.stats().get(timeout=5)["rehydrated"] == 1


def test_cancel_when_queued_behind_actors_stop_then_delivered_to_rehydrated_actor(
    engine: EngineCore,
) -> None:
    placed = _resting(engine)
    stale = _live(engine, placed.order_id)
    directory = _directory(engine)
    command = cancel(placed.order_id)

    def race() -> DispatchFuture[Order]:
        reply: DispatchFuture[Order] = DispatchFuture()
        tell(stale.ref, _ActorStop())  # the actor stops on the message ahead of the cancel
        directory.on_route(Route(command, reply))  # still live here: queued behind the stop
        return reply

    answer = _on_engine_thread(engine, race).get(timeout=5)
    engine.wait_idle()

    assert answer.status is OrderStatus.ACCEPTED  # the cancel is on its way to the venue
    order = engine.get_order(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.CANCELLED
    [cancelled] = _events(engine, placed.order_id, OrderCancelled)
    assert cancelled.command_id == command.command_id
    assert engine.stats().get(timeout=5)["rehydrated"] == 1


def test_cancel_when_queued_to_actor_after_its_order_settled_then_refused_not_cancellable(
    engine: EngineCore,
) -> None:
    placed = _resting(engine)
    actor = _live(engine, placed.order_id).ref._actor_weakref()
    assert isinstance(actor, OrderActor)
    engine.on_tick(tick(**_CROSSING))
    engine.wait_idle()

    def race() -> DispatchFuture[Order]:
        # A cancel the directory queued for the actor just before the message that ended it.
        reply: DispatchFuture[Order] = DispatchFuture()
        actor.dispatcher.post(actor, Envelope(cancel(placed.order_id), reply_to=reply))
        return reply

    answer = _on_engine_thread(engine, race)

    with pytest.raises(InvalidTransition) as refused:
        answer.get(timeout=5)
    assert refused.value.status is OrderStatus.SETTLED
    assert refused.value.trigger is Trigger.CANCEL
