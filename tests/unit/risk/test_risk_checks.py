"""Every pre-trade check, through the book: the decision and its reason code."""

from __future__ import annotations

from decimal import Decimal

import pytest
from risk_builders import ACCOUNT, NOW, fill, make_book, place

from oms.domain.enums import Side
from oms.domain.instruments import DEFAULT_INSTRUMENTS, InstrumentStatus, instrument_map
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.reasons import Denial, RejectReason
from oms.risk import RiskBook


def reasons(denials: tuple[Denial, ...]) -> list[RejectReason]:
    """The reason codes of ``denials``, in order."""
    return [denial.reason for denial in denials]


# Gates


def test_place_when_account_unknown_then_denies_unknown_account() -> None:
    # Arrange
    book = make_book()

    # Act
    decision = book.accept(place(account="mallory"), NOW)

    # Assert
    assert not decision.accepted
    assert reasons(decision.denials) == [RejectReason.UNKNOWN_ACCOUNT]
    assert decision.denials[0].detail("account_id") == "mallory"


def test_place_when_symbol_not_listed_then_denies_unknown_instrument() -> None:
    # Arrange
    book = make_book()

    # Act
    decision = book.accept(place(symbol="DOGE-USD"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.UNKNOWN_INSTRUMENT]


def test_place_market_when_symbol_has_no_price_then_denies_no_market_price() -> None:
    # Arrange
    book = make_book(marked=False)

    # Act
    decision = book.accept(place(market=True), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.NO_MARKET_PRICE]


def test_place_when_instrument_halted_then_denies_instrument_not_trading() -> None:
    # Arrange
    instruments = instrument_map(DEFAULT_INSTRUMENTS)
    instruments["BTC-USD"] = instruments["BTC-USD"].__class__(
        "BTC-USD", "BTC", "USD", Decimal("0.01"), Decimal("0.0001"), InstrumentStatus.HALTED
    )
    book = RiskBook(instruments, fee_rate=Decimal("0.001"))
    book.open_account(ACCOUNT, {"USD": Decimal("100000")}, RiskLimits())

    # Act
    decision = book.accept(place(), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.INSTRUMENT_NOT_TRADING]


# Per-order maxima


def test_place_when_quantity_exceeds_max_then_denies_quantity() -> None:
    # Arrange
    book = make_book(RiskLimits(max_order_quantity=Decimal("0.05")))

    # Act
    decision = book.accept(place(quantity="0.1"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.QUANTITY_EXCEEDS_MAX_PER_ORDER]
    assert (
        str(decision.denials[0])
        == "QUANTITY_EXCEEDS_MAX_PER_ORDER: max_quantity=0.05, quantity=0.1"
    )


def test_place_when_quantity_equals_max_then_accepts() -> None:
    # Arrange
    book = make_book(RiskLimits(max_order_quantity=Decimal("0.1")))

    # Act
    decision = book.accept(place(quantity="0.1"), NOW)

    # Assert
    assert decision.accepted


def test_place_when_symbol_has_own_quantity_max_then_it_overrides_the_global_one() -> None:
    # Arrange
    limits = RiskLimits(
        max_order_quantity=Decimal("100"), symbol_max_order_quantity={"BTC-USD": Decimal("0.01")}
    )
    book = make_book(limits, eth="10")

    # Act
    btc = book.check(place(quantity="0.1"), NOW)
    eth = book.check(place(Side.SELL, "1", "3000.00", symbol="ETH-USD"), NOW)

    # Assert
    assert reasons(btc) == [RejectReason.QUANTITY_EXCEEDS_MAX_PER_ORDER]
    assert eth == ()


def test_place_buy_when_notional_exceeds_max_then_denies_notional() -> None:
    # Arrange
    book = make_book(RiskLimits(max_order_notional=Decimal("4000")))

    # Act
    decision = book.accept(place(quantity="0.1", price="50000.00"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.NOTIONAL_EXCEEDS_MAX_PER_ORDER]
    assert str(decision.denials[0]) == (
        "NOTIONAL_EXCEEDS_MAX_PER_ORDER: max_notional=4000, notional=5000.000"
    )


def test_place_market_when_notional_at_reference_exceeds_max_then_denies_notional() -> None:
    # Arrange
    book = make_book(RiskLimits(max_order_notional=Decimal("4000")))

    # Act
    decision = book.accept(place(Side.SELL, "0.1", market=True), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.NOTIONAL_EXCEEDS_MAX_PER_ORDER]
    assert decision.denials[0].detail("notional") == "5000.000"


# Price collar


@pytest.mark.parametrize("price", ["55000.01", "44999.99"])
def test_place_limit_when_price_outside_collar_then_denies_price_outside_collar(price: str) -> None:
    # Arrange
    book = make_book(RiskLimits(price_collar=Decimal("0.10")), usd="1000000")

    # Act
    decision = book.accept(place(price=price), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.PRICE_OUTSIDE_COLLAR]
    assert decision.denials[0].detail("reference") == "50000.00"


@pytest.mark.parametrize("price", ["55000.00", "45000.00"])
def test_place_limit_when_price_on_collar_edge_then_accepts(price: str) -> None:
    # Arrange
    book = make_book(RiskLimits(price_collar=Decimal("0.10")), usd="1000000")

    # Act
    decision = book.accept(place(price=price), NOW)

    # Assert
    assert decision.accepted


def test_place_limit_when_symbol_has_no_price_yet_then_collar_does_not_apply() -> None:
    # Arrange
    book = make_book(RiskLimits(price_collar=Decimal("0.10")), marked=False)

    # Act
    decision = book.accept(place(price="1.00"), NOW)

    # Assert
    assert decision.accepted


# Buying power


def test_place_buy_when_quote_short_of_price_and_fee_then_denies_buying_power() -> None:
    # Arrange: 2 BTC at 50,000 cost 100,000 plus a 100 fee; the account holds 100,000
    book = make_book(usd="100000")

    # Act
    decision = book.accept(place(quantity="2", price="50000.00"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.INSUFFICIENT_BUYING_POWER]
    assert str(decision.denials[0]) == (
        "INSUFFICIENT_BUYING_POWER: asset=USD, required=100100.00, available=100000"
    )


def test_place_sell_when_base_short_then_denies_buying_power() -> None:
    # Arrange
    book = make_book(btc="0.5")

    # Act
    decision = book.accept(place(Side.SELL, quantity="0.6"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.INSUFFICIENT_BUYING_POWER]
    assert decision.denials[0].detail("asset") == "BTC"


def test_place_buy_when_earlier_order_reserved_the_funds_then_denies_buying_power() -> None:
    # Arrange
    book = make_book(usd="60000")
    assert book.accept(place(quantity="1", price="50000.00"), NOW).accepted

    # Act
    decision = book.accept(place(quantity="0.2", price="50000.00"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.INSUFFICIENT_BUYING_POWER]
    assert decision.denials[0].detail("available") == "9950.00"


def test_place_sell_in_symbol_never_held_then_denies_buying_power() -> None:
    # Arrange
    book = make_book()

    # Act
    decision = book.accept(place(Side.SELL, "1", "150.000", symbol="SOL-USD"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.INSUFFICIENT_BUYING_POWER]
    assert decision.denials[0].detail("available") == "0"


# Kill switch


def test_place_when_global_kill_switch_halted_then_denies_kill_switch_global() -> None:
    # Arrange
    book = make_book()
    book.set_trading_state(TradingState.HALTED)

    # Act
    decision = book.accept(place(), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.KILL_SWITCH_GLOBAL]


def test_place_when_account_kill_switch_halted_then_denies_kill_switch_account() -> None:
    # Arrange
    book = make_book()
    book.set_trading_state(TradingState.HALTED, ACCOUNT)

    # Act
    decision = book.accept(place(), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.KILL_SWITCH_ACCOUNT]


def test_place_when_kill_switch_back_to_active_then_accepts() -> None:
    # Arrange
    book = make_book()
    book.set_trading_state(TradingState.HALTED, ACCOUNT)
    book.set_trading_state(TradingState.ACTIVE, ACCOUNT)

    # Act
    decision = book.accept(place(), NOW)

    # Assert
    assert decision.accepted


@pytest.mark.parametrize("account_id", [None, ACCOUNT])
def test_place_when_reducing_and_no_position_then_denies_reduce_only(
    account_id: str | None,
) -> None:
    # Arrange: opening holdings are balance, not position, so there is nothing to reduce
    book = make_book()
    book.set_trading_state(TradingState.REDUCING, account_id)

    # Act
    decision = book.accept(place(Side.SELL, "0.1"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.REDUCE_ONLY]


# Several denials at once; a dry run changes nothing


def test_place_when_several_limits_broken_then_denies_with_every_reason_in_order() -> None:
    # Arrange
    limits = RiskLimits(
        max_order_quantity=Decimal("1"),
        max_order_notional=Decimal("10000"),
        price_collar=Decimal("0.10"),
    )
    book = make_book(limits)

    # Act
    decision = book.accept(place(quantity="5", price="60000.00"), NOW)

    # Assert
    assert reasons(decision.denials) == [
        RejectReason.QUANTITY_EXCEEDS_MAX_PER_ORDER,
        RejectReason.NOTIONAL_EXCEEDS_MAX_PER_ORDER,
        RejectReason.PRICE_OUTSIDE_COLLAR,
        RejectReason.INSUFFICIENT_BUYING_POWER,
    ]


def test_check_when_order_passes_then_returns_no_denials_and_reserves_nothing() -> None:
    # Arrange
    book = make_book()
    before = book.snapshot(ACCOUNT)

    # Act
    denials = book.check(place(), NOW)

    # Assert
    assert denials == ()
    assert book.snapshot(ACCOUNT) == before
    assert book.open_order_count(ACCOUNT) == 0


def test_place_sell_when_reducing_and_it_shrinks_a_long_then_accepts() -> None:
    # Arrange
    book = make_book()
    buy = place(quantity="0.5", price="50000.00")
    book.accept(buy, NOW)
    book.book_fill(fill(buy))
    book.set_trading_state(TradingState.REDUCING, ACCOUNT)

    # Act
    decision = book.accept(place(Side.SELL, "0.3"), NOW)

    # Assert
    assert decision.accepted


def test_place_sell_when_reducing_and_it_would_cross_zero_then_denies_reduce_only() -> None:
    # Arrange: open sells count, so two sells together may not exceed the long
    book = make_book()
    buy = place(quantity="0.5", price="50000.00")
    book.accept(buy, NOW)
    book.book_fill(fill(buy))
    book.set_trading_state(TradingState.REDUCING)
    assert book.accept(place(Side.SELL, "0.3"), NOW).accepted

    # Act
    decision = book.accept(place(Side.SELL, "0.3"), NOW)

    # Assert
    assert [denial.reason for denial in decision.denials] == [RejectReason.REDUCE_ONLY]
    assert decision.denials[0].detail("open_sell") == "0.3"
