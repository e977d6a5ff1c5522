"""Amends in the risk book: checked as the new terms, reserved for the larger of old and new
until the venue has changed the order, then trimmed; totals never move."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.errors import InvalidOrder, UnknownOrder
from oms.domain.limits import RiskLimits
from oms.domain.reasons import RejectReason
from tests.unit.risk.risk_builders import ACCOUNT, NOW, fill, make_book, place

# 0.1 BTC at 50000.00 plus the 0.001 fee rate.
RESERVED = Decimal("5005.00")


def _reserved(book, asset: str = "USD") -> Decimal:  # type: ignore[no-untyped-def]
    return book.balances(ACCOUNT)[asset].reserved  # type: ignore[no-any-return]


def test_reserve_amend_when_larger_then_reserves_the_new_terms_and_protects_at_the_price() -> None:
    book = make_book()
    order = place()
    book.accept(order, NOW)
    totals = book.totals()

    protection = book.reserve_amend(order.order_id, Decimal("0.1"), Decimal("49000.00"), NOW)

    assert protection == Decimal("49000.00")
    assert _reserved(book) == Decimal("9809.80")  # 0.2 * 49000.00 * 1.001
    assert book.totals() == totals


def test_reserve_amend_when_smaller_then_keeps_the_old_reservation_until_committed() -> None:
    book = make_book()
    order = place()
    book.accept(order, NOW)

    book.reserve_amend(order.order_id, Decimal("-0.05"), Decimal("50000.00"), NOW)
    assert _reserved(book) == RESERVED  # the venue may still fill the old terms
    trimmed = book.commit_amend(
        order.order_id, Decimal("-0.05"), Decimal("50000.00"), Decimal("0.05")
    )

    assert trimmed == Decimal("2502.50")
    assert _reserved(book) == Decimal("2502.50")


def test_commit_amend_when_fills_before_it_are_still_on_their_way_then_keeps_their_cost() -> None:
    book = make_book()
    order = place(quantity="0.2")
    book.accept(order, NOW)
    book.reserve_amend(order.order_id, Decimal(0), Decimal("49000.00"), NOW)

    # The venue holds 0.1 after the amend: 0.1 filled before it at up to 50000.00, not booked.
    book.commit_amend(order.order_id, Decimal(0), Decimal("49000.00"), Decimal("0.1"))
    book.post_fill(fill(order, "0.1", "50000.00"))

    assert _reserved(book) >= Decimal("0.1") * Decimal("49000.00")
    book.release(order.order_id)
    assert _reserved(book) == 0


def test_reserve_amend_when_buying_power_short_then_denied_and_nothing_changes() -> None:
    book = make_book(usd="6000")
    order = place()
    book.accept(order, NOW)
    before = book.balances(ACCOUNT)

    outcome = book.reserve_amend(order.order_id, Decimal("0.1"), Decimal("50000.00"), NOW)

    assert isinstance(outcome, tuple)
    assert outcome[0].reason is RejectReason.INSUFFICIENT_BUYING_POWER
    assert book.balances(ACCOUNT) == before


def test_reserve_amend_when_price_outside_collar_then_denied() -> None:
    book = make_book(RiskLimits(price_collar=Decimal("0.05")))
    order = place()
    book.accept(order, NOW)

    outcome = book.reserve_amend(order.order_id, Decimal(0), Decimal("60000.00"), NOW)

    assert isinstance(outcome, tuple)
    assert outcome[0].reason is RejectReason.PRICE_OUTSIDE_COLLAR


def test_reserve_amend_when_it_leaves_nothing_unfilled_then_quantity_below_filled() -> None:
    book = make_book()
    order = place()
    book.accept(order, NOW)
    book.post_fill(fill(order, "0.05"))

    with pytest.raises(InvalidOrder) as refused:
        book.reserve_amend(order.order_id, Decimal("-0.05"), Decimal("50000.00"), NOW)

    assert refused.value.code == "QUANTITY_BELOW_FILLED"


def test_reserve_amend_when_not_open_then_unknown_order() -> None:
    with pytest.raises(UnknownOrder):
        make_book().reserve_amend("nope", Decimal(1), Decimal("50000.00"), NOW)
