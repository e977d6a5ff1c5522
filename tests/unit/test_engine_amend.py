"""Amending resting orders end to end through the engine: risk, the venue, the reservation."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from oms.domain.enums import OrderStatus, Side
from oms.domain.events import AmendRejected, OrderAmended, OrderEvent
from oms.domain.reasons import OrderCheckReason, RejectReason
from oms.domain.transitions import InvalidTransition
from oms.engine.core import EngineCore
from tests.unit.engine_helpers import amend, cancel, make_engine, place, tick

# BUY reservation: quantity * price * (1 + 0.001 fee), rounded up to the cent.
_FEE = Decimal("1.001")


@pytest.fixture
def engine() -> Iterator[EngineCore]:
    e = make_engine()
    e.on_tick(tick())
    e.wait_idle()
    yield e
    e.stop()


def _reserved(engine: EngineCore, asset: str = "USD") -> Decimal:
    return engine.account("a1").get(timeout=5).balances[asset].reserved


def _events(engine: EngineCore, order_id: str) -> list[OrderEvent]:
    return list(engine.order_events(order_id).get(timeout=5))


def _rest(engine: EngineCore, **terms: str) -> str:
    placed = engine.place_order(place(**terms)).get(timeout=5)  # type: ignore[arg-type]
    engine.wait_idle()
    return placed.order_id


def test_amend_when_price_and_quantity_change_then_amended_and_reservation_follows(
    engine: EngineCore,
) -> None:
    order_id = _rest(engine, price="95.00", quantity="0.5")
    before = engine.totals().get(timeout=5)

    engine.amend_order(amend(order_id, quantity="1.0", price="96.00")).get(timeout=5)
    engine.wait_idle()

    order = engine.get_order(order_id).get(timeout=5)
    assert order is not None
    assert (order.status, order.quantity, order.price) == (
        OrderStatus.ACCEPTED, Decimal("1.0"), Decimal("96.00")
    )  # fmt: skip
    assert order.protection_price == Decimal("96.00")
    assert isinstance(_events(engine, order_id)[-1], OrderAmended)
    assert _reserved(engine) == (Decimal("1.0") * Decimal("96.00") * _FEE).quantize(Decimal("0.01"))
    assert engine.totals().get(timeout=5) == before


def test_amend_when_quantity_smaller_then_reservation_shrinks(engine: EngineCore) -> None:
    order_id = _rest(engine, price="95.00", quantity="0.5")

    engine.amend_order(amend(order_id, quantity="0.2")).get(timeout=5)
    engine.wait_idle()

    order = engine.get_order(order_id).get(timeout=5)
    assert order is not None
    assert order.quantity == Decimal("0.2")
    assert _reserved(engine) == (Decimal("0.2") * Decimal("95.00") * _FEE).quantize(Decimal("0.01"))


def test_amend_when_buying_power_short_then_rejected_and_order_unchanged(
    engine: EngineCore,
) -> None:
    order_id = _rest(engine, price="95.00", quantity="0.5")
    reserved = _reserved(engine)

    engine.amend_order(amend(order_id, quantity="20000")).get(timeout=5)
    engine.wait_idle()

    order = engine.get_order(order_id).get(timeout=5)
    assert order is not None
    assert (order.quantity, order.price) == (Decimal("0.5"), Decimal("95.00"))
    last = _events(engine, order_id)[-1]
    assert isinstance(last, AmendRejected)
    assert last.reason is RejectReason.INSUFFICIENT_BUYING_POWER
    assert _reserved(engine) == reserved


def test_amend_when_price_outside_collar_then_rejected_with_reason(engine: EngineCore) -> None:
    order_id = _rest(engine, price="95.00")

    engine.amend_order(amend(order_id, price="150.00")).get(timeout=5)
    engine.wait_idle()

    last = _events(engine, order_id)[-1]
    assert isinstance(last, AmendRejected)
    assert last.reason is RejectReason.PRICE_OUTSIDE_COLLAR


def test_amend_when_ioc_order_closed_then_invalid_transition(engine: EngineCore) -> None:
    order_id = _rest(engine, price="95.00", tif="IOC")  # type: ignore[arg-type]

    with pytest.raises(InvalidTransition):
        engine.amend_order(amend(order_id, price="96.00")).get(timeout=5)


def test_amend_when_terminal_then_invalid_transition(engine: EngineCore) -> None:
    order_id = _rest(engine, price="95.00")
    engine.cancel_order(cancel(order_id)).get(timeout=5)
    engine.wait_idle()

    with pytest.raises(InvalidTransition):
        engine.amend_order(amend(order_id, price="96.00")).get(timeout=5)


def test_amend_when_unchanged_then_rejected_nothing_to_amend(engine: EngineCore) -> None:
    order_id = _rest(engine, price="95.00", quantity="0.5")

    engine.amend_order(amend(order_id, quantity="0.5", price="95.00")).get(timeout=5)
    engine.wait_idle()

    last = _events(engine, order_id)[-1]
    assert isinstance(last, AmendRejected)
    assert last.reason is OrderCheckReason.NOTHING_TO_AMEND


def test_amend_when_partially_filled_then_quantity_below_filled_refused(engine: EngineCore) -> None:
    order_id = _rest(engine, price="99.00", quantity="2")
    engine.on_tick(tick(bid="98.80", ask="98.90", size="1"))
    engine.wait_idle()

    engine.amend_order(amend(order_id, quantity="1")).get(timeout=5)
    engine.wait_idle()

    last = _events(engine, order_id)[-1]
    assert isinstance(last, AmendRejected)
    assert last.reason is OrderCheckReason.QUANTITY_BELOW_FILLED


def test_amend_when_partially_filled_then_amended_and_fills_to_new_quantity(
    engine: EngineCore,
) -> None:
    order_id = _rest(engine, price="99.00", quantity="2")
    engine.on_tick(tick(bid="98.80", ask="98.90", size="1"))
    engine.wait_idle()
    before = engine.totals().get(timeout=5)

    engine.amend_order(amend(order_id, quantity="3")).get(timeout=5)
    engine.wait_idle()
    for n in range(2):
        engine.on_tick(tick(bid="98.80", ask="98.90", size="1", ts=1001.0 + n))
        engine.wait_idle()

    order = engine.get_order(order_id).get(timeout=5)
    assert order is not None
    assert order.status is OrderStatus.SETTLED
    assert order.filled_quantity == Decimal("3")
    assert _reserved(engine) == 0
    assert engine.totals().get(timeout=5) == before


def test_amend_when_sell_quantity_grows_then_base_reserved(engine: EngineCore) -> None:
    order_id = _rest(engine, side=Side.SELL, price="105.00", quantity="1")  # type: ignore[arg-type]

    engine.amend_order(amend(order_id, quantity="2")).get(timeout=5)
    engine.wait_idle()

    assert _reserved(engine, "BTC") == Decimal("2")
