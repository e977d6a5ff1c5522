"""Checks that look past the order: position limit, daily loss, concentration and velocity."""

from __future__ import annotations

from decimal import Decimal

from risk_builders import ACCOUNT, NOW, fill, make_book, place

from oms.domain.enums import Side
from oms.domain.limits import RiskLimits
from oms.domain.reasons import Denial, RejectReason
from oms.risk import RiskBook

D = Decimal
DAY = 86_400.0


def reasons(denials: tuple[Denial, ...]) -> list[RejectReason]:
    """The reason codes of ``denials``, in order."""
    return [denial.reason for denial in denials]


def buy_and_fill(book: RiskBook, quantity: str, price: str, *, symbol: str = "BTC-USD") -> None:
    """Accept a BUY, fill it whole at its price and release it."""
    order = place(Side.BUY, quantity, price, symbol=symbol)
    assert book.accept(order, NOW).accepted
    book.book_fill(fill(order))
    book.release(order.order_id)


# Position limit


def test_place_buy_when_position_and_open_buys_reach_past_max_then_denies_position_limit() -> None:
    # Arrange: long 0.5 filled, 0.3 more open; 0.3 more would reach 1.1
    book = make_book(RiskLimits(max_position=D("1")), usd="1000000")
    buy_and_fill(book, "0.5", "50000.00")
    assert book.accept(place(quantity="0.3"), NOW).accepted

    # Act
    decision = book.accept(place(quantity="0.3"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.POSITION_LIMIT_EXCEEDED]
    assert str(decision.denials[0]) == (
        "POSITION_LIMIT_EXCEEDED: max_position=1, position=0.5, open_orders=0.3, quantity=0.3"
    )


def test_place_buy_when_it_reaches_exactly_the_max_then_accepts() -> None:
    # Arrange
    book = make_book(RiskLimits(max_position=D("1")), usd="1000000")
    buy_and_fill(book, "0.5", "50000.00")

    # Act
    decision = book.accept(place(quantity="0.5"), NOW)

    # Assert
    assert decision.accepted


def test_place_sell_when_open_sells_reach_past_max_short_then_denies_position_limit() -> None:
    # Arrange: opening holdings are balance, so selling 1.5 of them is a position of -1.5
    book = make_book(RiskLimits(max_position=D("1")), btc="2")

    # Act
    decision = book.accept(place(Side.SELL, "1.5"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.POSITION_LIMIT_EXCEEDED]


def test_place_sell_when_it_reduces_a_long_beyond_the_max_then_accepts() -> None:
    # Arrange: a long of 0.8 under a max of 0.5 (the limit was lowered after the fills)
    book = make_book(usd="1000000")
    buy_and_fill(book, "0.8", "50000.00")
    book.set_limits(ACCOUNT, RiskLimits(max_position=D("0.5")))

    # Act
    decision = book.accept(place(Side.SELL, "0.3"), NOW)

    # Assert
    assert decision.accepted


def test_place_when_symbol_has_own_position_max_then_it_overrides_the_global_one() -> None:
    # Arrange
    limits = RiskLimits(max_position=D("100"), symbol_max_position={"BTC-USD": D("0.05")})
    book = make_book(limits)

    # Act
    decision = book.accept(place(quantity="0.1"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.POSITION_LIMIT_EXCEEDED]


# Daily loss


def test_place_buy_when_realized_loss_reaches_limit_then_denies_daily_loss() -> None:
    # Arrange: buy 1 at 50,000, sell it at 49,000: -1,000 realized, plus fees
    book = make_book(RiskLimits(daily_loss_limit=D("1000")), usd="1000000")
    buy_and_fill(book, "1", "50000.00")
    sell = place(Side.SELL, "1", "49000.00")
    book.accept(sell, NOW)
    book.book_fill(fill(sell, fee="0"))
    book.release(sell.order_id)

    # Act
    decision = book.accept(place(quantity="0.1", price="49000.00"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.DAILY_LOSS_LIMIT_REACHED]
    assert decision.denials[0].detail("pnl_today") == "-1050.00"


def test_place_when_unrealized_loss_reaches_limit_then_denies_daily_loss() -> None:
    # Arrange
    book = make_book(RiskLimits(daily_loss_limit=D("1000")), usd="1000000")
    buy_and_fill(book, "1", "50000.00")
    book.mark_price("BTC-USD", D("48900.00"), NOW)

    # Act
    decision = book.accept(place(quantity="0.1", price="48900.00"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.DAILY_LOSS_LIMIT_REACHED]


def test_place_sell_when_daily_loss_reached_but_order_reduces_then_accepts() -> None:
    # Arrange
    book = make_book(RiskLimits(daily_loss_limit=D("1000")), usd="1000000")
    buy_and_fill(book, "1", "50000.00")
    book.mark_price("BTC-USD", D("48000.00"), NOW)

    # Act
    decision = book.accept(place(Side.SELL, "1", "48000.00"), NOW)

    # Assert
    assert decision.accepted


def test_place_when_loss_is_short_of_limit_then_accepts() -> None:
    # Arrange: -50 of fees and -900 unrealized
    book = make_book(RiskLimits(daily_loss_limit=D("1000")), usd="1000000")
    buy_and_fill(book, "1", "50000.00")
    book.mark_price("BTC-USD", D("49100.00"), NOW)

    # Act
    decision = book.accept(place(quantity="0.1", price="49100.00"), NOW)

    # Assert
    assert decision.accepted


def test_place_on_the_next_day_after_a_loss_then_counts_from_zero_and_accepts() -> None:
    # Arrange
    book = make_book(RiskLimits(daily_loss_limit=D("1000")), usd="1000000")
    buy_and_fill(book, "1", "50000.00")
    book.mark_price("BTC-USD", D("48000.00"), NOW)
    assert not book.accept(place(quantity="0.1", price="48000.00"), NOW).accepted

    # Act
    decision = book.accept(place(quantity="0.1", price="48000.00"), NOW + DAY)

    # Assert
    assert decision.accepted


def test_place_after_start_day_then_counts_loss_from_that_moment() -> None:
    # Arrange
    book = make_book(RiskLimits(daily_loss_limit=D("1000")), usd="1000000")
    buy_and_fill(book, "1", "50000.00")
    book.mark_price("BTC-USD", D("48000.00"), NOW)
    book.start_day(NOW)

    # Act
    decision = book.accept(place(quantity="0.1", price="48000.00"), NOW)

    # Assert
    assert decision.accepted


# Concentration


def test_place_when_account_is_in_one_symbol_only_then_concentration_does_not_apply() -> None:
    # Arrange
    book = make_book(RiskLimits(max_concentration=D("0.5")), usd="1000000")
    buy_and_fill(book, "1", "50000.00")

    # Act
    decision = book.accept(place(quantity="1"), NOW)

    # Assert
    assert decision.accepted


def test_place_when_symbol_share_of_gross_exposure_exceeds_max_then_denies_concentration() -> None:
    # Arrange: 10 ETH at 3,000 = 30,000 exposure; BTC would be 0.5 * 50,000 = 25,000 of 55,000
    book = make_book(RiskLimits(max_concentration=D("0.4")), usd="1000000")
    buy_and_fill(book, "10", "3000.00", symbol="ETH-USD")

    # Act
    decision = book.accept(place(quantity="0.5"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.CONCENTRATION_LIMIT_EXCEEDED]
    assert decision.denials[0].detail("share") == "0.4545"


def test_place_when_open_orders_already_concentrate_the_symbol_then_denies_concentration() -> None:
    # Arrange: an open BTC buy counts as if filled
    book = make_book(RiskLimits(max_concentration=D("0.5")), usd="1000000")
    buy_and_fill(book, "10", "3000.00", symbol="ETH-USD")
    assert book.accept(place(quantity="0.5"), NOW).accepted

    # Act
    decision = book.accept(place(quantity="0.2"), NOW)

    # Assert
    assert reasons(decision.denials) == [RejectReason.CONCENTRATION_LIMIT_EXCEEDED]


def test_place_when_symbol_share_stays_within_max_then_accepts() -> None:
    # Arrange
    book = make_book(RiskLimits(max_concentration=D("0.5")), usd="1000000")
    buy_and_fill(book, "10", "3000.00", symbol="ETH-USD")

    # Act
    decision = book.accept(place(quantity="0.5"), NOW)

    # Assert
    assert decision.accepted


# Velocity


def test_place_when_orders_in_window_reach_max_then_denies_velocity_orders() -> None:
    # Arrange
    book = make_book(RiskLimits(velocity_window_s=10.0, max_orders_per_window=2))
    book.accept(place(quantity="0.01"), NOW)
    book.accept(place(quantity="0.01"), NOW + 1)

    # Act
    decision = book.accept(place(quantity="0.01"), NOW + 2)

    # Assert
    assert reasons(decision.denials) == [RejectReason.VELOCITY_ORDERS_EXCEEDED]
    assert decision.denials[0].detail("orders_in_window") == "2"


def test_place_when_oldest_order_left_the_window_then_accepts_again() -> None:
    # Arrange
    book = make_book(RiskLimits(velocity_window_s=10.0, max_orders_per_window=2))
    book.accept(place(quantity="0.01"), NOW)
    book.accept(place(quantity="0.01"), NOW + 1)

    # Act
    decision = book.accept(place(quantity="0.01"), NOW + 10)

    # Assert
    assert decision.accepted


def test_place_when_notional_in_window_would_pass_max_then_denies_velocity_notional() -> None:
    # Arrange: two orders of 5,000 each already in the window
    book = make_book(RiskLimits(velocity_window_s=60.0, max_notional_per_window=D("12000")))
    book.accept(place(quantity="0.1"), NOW)
    book.accept(place(quantity="0.1"), NOW + 1)

    # Act
    decision = book.accept(place(quantity="0.1"), NOW + 2)

    # Assert
    assert reasons(decision.denials) == [RejectReason.VELOCITY_NOTIONAL_EXCEEDED]
    assert decision.denials[0].detail("notional_in_window") == "10000.000"


def test_place_when_earlier_orders_were_denied_then_they_do_not_count_for_velocity() -> None:
    # Arrange: a denied order (no funds for 10 BTC) must not use up the window
    book = make_book(RiskLimits(velocity_window_s=10.0, max_orders_per_window=1))
    assert not book.accept(place(quantity="10"), NOW).accepted

    # Act
    decision = book.accept(place(quantity="0.01"), NOW + 1)

    # Assert
    assert decision.accepted
