"""The engine facade end to end: place, fill, settle, cancel, reject, query, subscribe."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest

from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.errors import UnknownOrder
from oms.domain.events import (
    CancelReason,
    OrderAccepted,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    OrderPlaced,
    OrderSettled,
)
from oms.domain.limits import TradingState
from oms.domain.orders import Overfill
from oms.domain.transitions import InvalidTransition
from oms.engine.aio import reply
from oms.engine.core import EngineCore
from oms.engine.ports import OrderQuery
from tests.unit.engine_helpers import cancel, fill, make_engine, place, tick


@pytest.fixture
def engine() -> Iterator[EngineCore]:
    e = make_engine()
    e.on_tick(tick())
    e.wait_idle()
    yield e
    e.stop()


def _settle(engine: EngineCore) -> None:
    engine.wait_idle()


def test_market_order_when_book_deep_enough_then_settled_and_totals_unchanged(
    engine: EngineCore,
) -> None:
    before = engine.totals().get(timeout=5)

    placed = engine.place_order(place(kind=OrderType.MARKET, price=None)).get(timeout=5)
    _settle(engine)

    assert placed.status is OrderStatus.NEW
    order = engine.get_order(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.SETTLED
    assert order.filled_quantity == Decimal("0.5")
    events = engine.order_events(placed.order_id).get(timeout=5)
    assert [type(e) for e in events] == [OrderPlaced, OrderAccepted, OrderFilled, OrderSettled]
    assert [e.sequence for e in events] == [1, 2, 3, 4]
    assert engine.totals().get(timeout=5) == before
    account = engine.account("a1").get(timeout=5)
    assert account.balances["BTC"].available == Decimal("10.5")
    assert account.balances["USD"].reserved == 0
    assert account.positions["BTC-USD"].quantity == Decimal("0.5")


def test_limit_order_when_resting_then_cancel_releases_reservation(engine: EngineCore) -> None:
    placed = engine.place_order(place(price="95.00")).get(timeout=5)
    _settle(engine)
    assert engine.account("a1").get(timeout=5).balances["USD"].reserved > 0

    engine.cancel_order(cancel(placed.order_id)).get(timeout=5)
    _settle(engine)

    order = engine.get_order(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.CANCELLED
    assert engine.account("a1").get(timeout=5).balances["USD"].reserved == 0
    assert engine.resting_count().get(timeout=5) == 0


def test_resting_order_when_market_crosses_it_then_settled(engine: EngineCore) -> None:
    placed = engine.place_order(place(price="99.00")).get(timeout=5)
    _settle(engine)

    engine.on_tick(tick(bid="98.80", ask="98.90"))
    _settle(engine)

    order = engine.get_order(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.SETTLED
    assert order.average_fill_price is not None
    assert order.average_fill_price <= Decimal("99.00")


def test_ioc_when_book_too_thin_then_filled_part_booked_and_rest_cancelled(
    engine: EngineCore,
) -> None:
    placed = engine.place_order(place(quantity="1.5", tif=TimeInForce.IOC)).get(timeout=5)
    _settle(engine)

    order = engine.get_order(placed.order_id).get(timeout=5)
    events = engine.order_events(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.CANCELLED
    assert order.filled_quantity == Decimal("1")
    assert isinstance(events[-1], OrderCancelled)
    assert events[-1].reason is CancelReason.REMAINDER
    account = engine.account("a1").get(timeout=5)
    assert account.balances["BTC"].available == Decimal("11")
    assert account.balances["USD"].reserved == 0


def test_fok_when_not_fillable_whole_then_killed_without_fills(engine: EngineCore) -> None:
    placed = engine.place_order(place(quantity="2", tif=TimeInForce.FOK)).get(timeout=5)
    _settle(engine)

    events = engine.order_events(placed.order_id).get(timeout=5)
    assert [type(e) for e in events] == [OrderPlaced, OrderAccepted, OrderCancelled]
    assert isinstance(events[-1], OrderCancelled)
    assert events[-1].reason is CancelReason.FOK_KILLED


def test_place_when_buying_power_short_then_rejected_with_reason(engine: EngineCore) -> None:
    placed = engine.place_order(place(quantity="100000", price="100.10")).get(timeout=5)
    _settle(engine)

    order = engine.get_order(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "INSUFFICIENT_BUYING_POWER"


def test_place_when_quantity_off_lot_then_rejected_as_invalid(engine: EngineCore) -> None:
    placed = engine.place_order(place(quantity="0.00001")).get(timeout=5)
    _settle(engine)

    order = engine.get_order(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.reject_reason == "QUANTITY_NOT_MULTIPLE_OF_LOT"


def test_place_when_global_kill_switch_then_rejected(engine: EngineCore) -> None:
    engine.set_kill_switch(TradingState.HALTED).get(timeout=5)

    placed = engine.place_order(place()).get(timeout=5)
    _settle(engine)

    order = engine.get_order(placed.order_id).get(timeout=5)
    assert order is not None
    assert order.reject_reason == "KILL_SWITCH_GLOBAL"


def test_place_when_replayed_then_nothing_changes(engine: EngineCore) -> None:
    command = place(kind=OrderType.MARKET, price=None)
    engine.place_order(command).get(timeout=5)
    _settle(engine)
    events = engine.order_events(command.order_id).get(timeout=5)
    account = engine.account("a1").get(timeout=5)

    again = engine.place_order(command).get(timeout=5)
    _settle(engine)

    assert again.status is OrderStatus.SETTLED
    assert engine.order_events(command.order_id).get(timeout=5) == events
    assert engine.account("a1").get(timeout=5) == account


def test_cancel_when_order_settled_then_refused(engine: EngineCore) -> None:
    command = place(kind=OrderType.MARKET, price=None)
    engine.place_order(command).get(timeout=5)
    _settle(engine)

    with pytest.raises(InvalidTransition, match="SETTLED -> CANCEL"):
        engine.cancel_order(cancel(command.order_id)).get(timeout=5)


def test_cancel_when_order_unknown_then_unknown_order(engine: EngineCore) -> None:
    with pytest.raises(UnknownOrder):
        engine.cancel_order(cancel("nope")).get(timeout=5)


def test_validate_when_dry_run_then_denials_and_nothing_reserved(engine: EngineCore) -> None:
    denials = engine.validate(place(quantity="100000")).get(timeout=5)

    assert [d.reason for d in denials] == ["INSUFFICIENT_BUYING_POWER"]
    assert engine.account("a1").get(timeout=5).balances["USD"].reserved == 0


def test_list_orders_when_several_then_newest_first_and_filtered(engine: EngineCore) -> None:
    first = engine.place_order(place(price="95.00")).get(timeout=5)
    second = engine.place_order(place(kind=OrderType.MARKET, price=None)).get(timeout=5)
    engine.place_order(place(account="a2", price="95.00")).get(timeout=5)
    _settle(engine)

    mine = engine.list_orders(OrderQuery(account_id="a1")).get(timeout=5)
    resting = engine.list_orders(OrderQuery(status=OrderStatus.ACCEPTED)).get(timeout=5)

    assert [o.order_id for o in mine] == [second.order_id, first.order_id]
    assert {o.account_id for o in resting} == {"a1", "a2"}


def test_subscribe_when_order_settles_then_listener_gets_its_events(engine: EngineCore) -> None:
    seen: list[OrderEvent] = []

    def listener(batch: Sequence[OrderEvent]) -> None:
        seen.extend(batch)

    unsubscribe = engine.subscribe(listener)
    placed = engine.place_order(place(kind=OrderType.MARKET, price=None)).get(timeout=5)
    _settle(engine)
    unsubscribe()

    assert [e.sequence for e in seen if e.order_id == placed.order_id] == [1, 2, 3, 4]


async def test_get_order_when_awaited_in_event_loop_then_answers() -> None:
    e = make_engine()
    try:
        placed = await reply(e.place_order(place(price="95.00")))
        # Reads come from the store, which has the order once the round that placed it ended.
        await asyncio.to_thread(e.wait_idle)
        found = await reply(e.get_order(placed.order_id))
    finally:
        e.stop()

    assert found is not None
    assert found.order_id == placed.order_id


def test_external_fills_when_no_simulated_venue_then_filled_and_settled() -> None:
    e = make_engine(simulated_venue=False)
    try:
        e.on_tick(tick())
        placed = e.place_order(place(quantity="1", price="100.10")).get(timeout=5)
        e.wait_idle()
        e.apply_fill(fill(placed.order_id, "0.4", "100.00")).get(timeout=5)
        with pytest.raises(Overfill):
            e.apply_fill(fill(placed.order_id, "0.7", "100.00")).get(timeout=5)
        e.apply_fill(fill(placed.order_id, "0.6", "100.05")).get(timeout=5)
        e.wait_idle()

        order = e.get_order(placed.order_id).get(timeout=5)
        account = e.account("a1").get(timeout=5)
    finally:
        e.stop()

    assert order is not None
    assert order.status is OrderStatus.SETTLED
    assert order.filled_quantity == Decimal("1")
    assert account.balances["USD"].reserved == 0
    assert account.balances["BTC"].available == Decimal("11")


def test_fill_when_replayed_then_nothing_changes() -> None:
    e = make_engine(simulated_venue=False)
    try:
        e.on_tick(tick())
        placed = e.place_order(place(quantity="1", price="100.10")).get(timeout=5)
        e.wait_idle()
        execution = fill(placed.order_id, "0.4", "100.00")
        e.apply_fill(execution).get(timeout=5)
        e.wait_idle()
        account = e.account("a1").get(timeout=5)

        again = e.apply_fill(execution).get(timeout=5)
        e.wait_idle()

        assert again.filled_quantity == Decimal("0.4")
        assert e.account("a1").get(timeout=5) == account
    finally:
        e.stop()


def test_cancel_when_partially_filled_then_filled_part_kept_rest_released() -> None:
    e = make_engine(simulated_venue=False)
    try:
        e.on_tick(tick())
        placed = e.place_order(place(side=Side.SELL, quantity="1", price="100.00")).get(timeout=5)
        e.wait_idle()
        e.apply_fill(fill(placed.order_id, "0.25", "100.00")).get(timeout=5)
        e.cancel_order(cancel(placed.order_id)).get(timeout=5)
        e.wait_idle()

        order = e.get_order(placed.order_id).get(timeout=5)
        account = e.account("a1").get(timeout=5)
    finally:
        e.stop()

    assert order is not None
    assert order.status is OrderStatus.CANCELLED
    assert order.filled_quantity == Decimal("0.25")
    assert account.balances["BTC"].reserved == 0
    assert account.balances["BTC"].available == Decimal("9.75")
