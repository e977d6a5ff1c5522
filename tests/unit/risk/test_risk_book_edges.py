"""Edges of the book: invalid input, the market-protection floor, bounded memory, check selection."""

from __future__ import annotations

from decimal import Decimal

import pytest
from risk_builders import ACCOUNT, NOW, fill, make_book, place

from oms.domain.enums import Side
from oms.domain.errors import InvalidOrder, RiskError, UnknownInstrument, UnknownOrder
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from oms.domain.limits import DEFAULT_LIMITS, RiskLimits
from oms.risk import CHECKS, RiskBook
from oms.risk.checks import (
    check_buying_power,
    check_instrument_trading,
    check_kill_switch,
    check_order_notional,
    check_price_collar,
    checks_for,
)

D = Decimal
ALL_ON = RiskLimits(
    max_order_quantity=D("1"),
    max_order_notional=D("1"),
    price_collar=D("0.1"),
    max_position=D("1"),
    daily_loss_limit=D("1"),
    max_concentration=D("0.5"),
    velocity_window_s=1.0,
    max_orders_per_window=1,
    max_notional_per_window=D("1"),
)


def test_mark_price_when_symbol_not_listed_then_raises_unknown_instrument() -> None:
    # Arrange
    book = make_book()

    # Act / Assert
    with pytest.raises(UnknownInstrument):
        book.mark_price("DOGE-USD", D("1"), NOW)


def test_mark_price_when_not_positive_then_raises_invalid_mark_and_keeps_the_last() -> None:
    # Arrange
    book = make_book()

    # Act / Assert
    with pytest.raises(RiskError) as raised:
        book.mark_price("BTC-USD", D("0"), NOW + 1)
    assert raised.value.code == "INVALID_MARK"
    assert (book.last_price("BTC-USD"), book.marked_at("BTC-USD")) == (D("50000.00"), NOW)


def test_open_account_when_a_deposit_is_negative_then_raises_negative_balance() -> None:
    # Arrange
    book = make_book()

    # Act / Assert
    with pytest.raises(RiskError) as raised:
        book.open_account("bob", {"USD": D("-1")})
    assert raised.value.code == "NEGATIVE_BALANCE"
    assert not book.has_account("bob")


def test_accept_when_limit_order_has_no_price_then_raises_invalid_order() -> None:
    # Arrange
    book = make_book()

    # Act / Assert
    with pytest.raises(InvalidOrder) as raised:
        book.accept(place(price=None), NOW)
    assert raised.value.code == "INVALID_PRICE"


def test_accept_market_sell_when_collar_reaches_zero_then_protection_is_one_tick() -> None:
    # Arrange
    book = make_book(RiskLimits(price_collar=D("1")))

    # Act
    decision = book.accept(place(Side.SELL, "0.1", market=True), NOW)

    # Assert
    assert decision.reservation is not None
    assert decision.reservation.protection_price == D("0.01")


def test_accept_market_when_collar_is_off_then_protection_uses_the_fallback_band() -> None:
    # Arrange
    book = make_book(RiskLimits())

    # Act
    decision = book.accept(place(quantity="0.1", market=True), NOW)

    # Assert
    assert decision.reservation is not None
    assert decision.reservation.protection_price == D("55000.00")


def test_book_fill_when_order_forgotten_after_many_others_then_raises_unknown_order() -> None:
    # Arrange: the book remembers between 2 and 4 finished orders here
    book = RiskBook(instrument_map(DEFAULT_INSTRUMENTS), fee_rate=D("0.001"), remember_orders=2)
    book.open_account(ACCOUNT, {"USD": D("100000")})
    first = place(quantity="0.01")
    for order in (first, *(place(quantity="0.01") for _ in range(4))):
        book.accept(order, NOW)
        book.release(order.order_id)

    # Act / Assert
    with pytest.raises(UnknownOrder):
        book.book_fill(fill(first))


def test_checks_for_when_limits_are_off_then_keeps_only_checks_that_can_deny() -> None:
    # Arrange
    limits = RiskLimits()

    # Act
    selected = checks_for(limits)

    # Assert
    assert selected == (check_kill_switch, check_instrument_trading, check_buying_power)
    assert checks_for(DEFAULT_LIMITS) == (
        check_kill_switch,
        check_instrument_trading,
        check_order_notional,
        check_price_collar,
        check_buying_power,
    )
    assert checks_for(ALL_ON) == CHECKS
