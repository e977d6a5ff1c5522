"""Reserve on accept, convert on fill, release the rest; balances, ledger and idempotency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from risk_builders import ACCOUNT, NOW, make_book, place
from risk_builders import fill as fill_of

from oms.domain.accounts import ReservedAccountId
from oms.domain.commands import ApplyFill
from oms.domain.enums import Side
from oms.domain.errors import (
    AccountExists,
    InsufficientFunds,
    InvalidFill,
    UnknownAccount,
    UnknownOrder,
)
from oms.domain.limits import RiskLimits
from oms.domain.reasons import RejectReason
from oms.risk import FEES, VENUE, Balance, imbalance

D = Decimal


# Accept


def test_accept_buy_limit_when_passing_then_reserves_quote_for_price_and_fee() -> None:
    # Arrange
    book = make_book()

    # Act
    decision = book.accept(place(quantity="0.1", price="50000.00"), NOW)

    # Assert: 0.1 * 50,000 * 1.001 = 5,005
    assert decision.accepted
    assert decision.reservation is not None
    assert (decision.reservation.asset, decision.reservation.amount) == ("USD", D("5005.00"))
    assert decision.reservation.protection_price == D("50000.00")
    assert book.balances(ACCOUNT)["USD"] == Balance(D("94995.00"), D("5005.00"))


def test_accept_buy_when_reservation_has_more_digits_than_quote_then_rounds_it_up() -> None:
    # Arrange: 0.0001 * 50,000.01 * 1.001 = 5.005001001
    book = make_book()

    # Act
    decision = book.accept(place(quantity="0.0001", price="50000.01"), NOW)

    # Assert
    assert decision.reservation is not None
    assert decision.reservation.amount == D("5.01")


def test_accept_market_buy_then_protection_is_reference_plus_collar_on_the_tick_grid() -> None:
    # Arrange
    book = make_book(RiskLimits(price_collar=D("0.10")))
    book.mark_price("BTC-USD", D("50000.03"), NOW)

    # Act
    decision = book.accept(place(quantity="0.1", market=True), NOW)

    # Assert: 50,000.03 * 1.1 = 55,000.033, floored onto the 0.01 grid
    assert decision.reservation is not None
    assert decision.reservation.protection_price == D("55000.03")
    assert decision.reservation.amount == D("5505.51")


def test_accept_market_sell_then_protection_is_reference_minus_collar_and_base_is_held() -> None:
    # Arrange
    book = make_book(RiskLimits(price_collar=D("0.10")))
    book.mark_price("BTC-USD", D("50000.03"), NOW)

    # Act
    decision = book.accept(place(Side.SELL, "0.5", market=True), NOW)

    # Assert: 50,000.03 * 0.9 = 45,000.027, raised onto the grid
    assert decision.reservation is not None
    assert decision.reservation.protection_price == D("45000.03")
    assert (decision.reservation.asset, decision.reservation.amount) == ("BTC", D("0.5"))
    assert book.balances(ACCOUNT)["BTC"] == Balance(D("1.5"), D("0.5"))


def test_accept_when_same_order_id_twice_then_returns_first_decision_and_reserves_once() -> None:
    # Arrange
    book = make_book()
    order = place()
    first = book.accept(order, NOW)

    # Act
    second = book.accept(order, NOW)

    # Assert
    assert second == first
    assert book.balances(ACCOUNT)["USD"].reserved == D("5005.00")
    assert book.open_order_count(ACCOUNT) == 1


def test_accept_when_denied_order_replayed_after_funding_changes_then_still_denied() -> None:
    # Arrange
    book = make_book(usd="10")
    order = place()
    first = book.accept(order, NOW)
    book.set_limits(ACCOUNT, RiskLimits())

    # Act
    second = book.accept(order, NOW)

    # Assert
    assert second == first
    assert [denial.reason for denial in second.denials] == [RejectReason.INSUFFICIENT_BUYING_POWER]


def test_accept_when_order_released_and_replayed_then_returns_first_decision() -> None:
    # Arrange
    book = make_book()
    order = place()
    first = book.accept(order, NOW)
    book.release(order.order_id)

    # Act
    again = book.accept(order, NOW)

    # Assert
    assert again == first
    assert book.balances(ACCOUNT)["USD"] == Balance(D("100000"), D("0.00"))


# Fill


def test_book_fill_buy_then_entry_moves_base_quote_and_fee_and_balances() -> None:
    # Arrange
    book = make_book()
    order = place(quantity="0.1", price="50000.00")
    book.accept(order, NOW)

    # Act
    entry = book.book_fill(fill_of(order, price="49000.00", execution_id="x1"))

    # Assert
    assert entry is not None
    assert imbalance(entry.postings) == {}
    assert {(p.account_id, p.asset, p.amount) for p in entry.postings} == {
        (ACCOUNT, "BTC", D("0.1")),
        (VENUE, "BTC", D("-0.1")),
        (ACCOUNT, "USD", D("-4900.000")),
        (VENUE, "USD", D("4900.000")),
        (ACCOUNT, "USD", D("-4.90")),
        (FEES, "USD", D("4.90")),
    }
    # 5,005 was reserved, 4,904.90 spent: 100.10 stays reserved until release
    assert book.balances(ACCOUNT)["USD"] == Balance(D("94995.00"), D("100.10"))
    assert book.balances(ACCOUNT)["BTC"] == Balance(D("2.1"), D("0"))
    assert book.balances(FEES)["USD"] == Balance(D("4.90"), D("0"))


def test_book_fill_sell_then_reserved_base_goes_and_proceeds_less_fee_arrive() -> None:
    # Arrange
    book = make_book()
    order = place(Side.SELL, "0.5", "50000.00")
    book.accept(order, NOW)

    # Act
    book.book_fill(fill_of(order, fee="25.00"))

    # Assert
    assert book.balances(ACCOUNT)["BTC"] == Balance(D("1.5"), D("0.0"))
    assert book.balances(ACCOUNT)["USD"] == Balance(D("124975.00"), D("0"))
    venue = book.balances(VENUE)
    assert (venue["BTC"], venue["USD"]) == (
        Balance(D("0.5"), D("0")),
        Balance(D("-25000.00"), D("0")),
    )


def test_book_fill_when_same_execution_twice_then_books_once_and_returns_none() -> None:
    # Arrange
    book = make_book()
    order = place()
    book.accept(order, NOW)
    execution = fill_of(order, quantity="0.05")
    book.book_fill(execution)
    after_first = book.snapshot(ACCOUNT)

    # Act
    again = book.book_fill(execution)

    # Assert
    assert again is None
    assert book.snapshot(ACCOUNT) == after_first


def test_book_fill_when_cost_exceeds_reservation_then_takes_rest_from_available() -> None:
    # Arrange: the fee reported is higher than the fee rate the reservation allowed for
    book = make_book()
    order = place(quantity="0.1", price="50000.00")
    book.accept(order, NOW)

    # Act
    book.book_fill(fill_of(order, fee="10.00"))

    # Assert: 5,010 paid: 5,005 from the reservation, 5 from available
    assert book.balances(ACCOUNT)["USD"] == Balance(D("94990.00"), D("0.00"))


def test_book_fill_when_available_cannot_cover_the_excess_then_raises_and_books_nothing() -> None:
    # Arrange
    book = make_book(usd="5005")
    order = place(quantity="0.1", price="50000.00")
    book.accept(order, NOW)
    before, totals = book.snapshot(ACCOUNT), book.totals()

    # Act / Assert
    with pytest.raises(InsufficientFunds) as raised:
        book.book_fill(fill_of(order, fee="10.00"))
    assert raised.value.code == "INSUFFICIENT_FUNDS"
    assert book.snapshot(ACCOUNT) == before
    assert book.totals() == totals


def test_book_fill_when_order_never_accepted_then_raises_unknown_order() -> None:
    # Arrange
    book = make_book()

    # Act / Assert
    with pytest.raises(UnknownOrder):
        book.book_fill(fill_of(place()))


@pytest.mark.parametrize(
    ("quantity", "price", "fee"), [("0", "1", "0"), ("1", "0", "0"), ("1", "1", "-1")]
)
def test_book_fill_when_figures_invalid_then_raises_invalid_fill(
    quantity: str, price: str, fee: str
) -> None:
    # Arrange
    book = make_book()
    order = place()
    book.accept(order, NOW)
    bad = ApplyFill("bad", order.order_id, ACCOUNT, D(quantity), D(price), D(fee), NOW)

    # Act / Assert
    with pytest.raises(InvalidFill):
        book.book_fill(bad)


def test_book_fill_when_it_arrives_after_release_then_books_against_available() -> None:
    # Arrange: a late execution after the order was cancelled (real venues send them)
    book = make_book()
    order = place(quantity="0.1", price="50000.00")
    book.accept(order, NOW)
    book.release(order.order_id)

    # Act
    entry = book.book_fill(fill_of(order, fee="5.00"))

    # Assert
    assert entry is not None
    assert book.balances(ACCOUNT)["USD"] == Balance(D("94995.00"), D("0.00"))
    assert book.snapshot(ACCOUNT).positions["BTC-USD"].quantity == D("0.1")


# Release


def test_release_after_partial_fill_then_returns_rest_and_nothing_stays_reserved() -> None:
    # Arrange
    book = make_book()
    order = place(quantity="0.1", price="50000.00")
    book.accept(order, NOW)
    book.book_fill(fill_of(order, quantity="0.04", fee="2.00"))

    # Act
    released = book.release(order.order_id)

    # Assert: 5,005 reserved, 2,002 spent
    assert released == D("3003.00")
    assert book.balances(ACCOUNT)["USD"] == Balance(D("97998.00"), D("0.00"))
    assert book.open_reservation(order.order_id) is None
    assert book.open_order_count(ACCOUNT) == 0


def test_release_when_called_twice_or_for_unknown_order_then_returns_zero() -> None:
    # Arrange
    book = make_book()
    order = place()
    book.accept(order, NOW)
    book.release(order.order_id)

    # Act
    again, unknown = book.release(order.order_id), book.release("nope")

    # Assert
    assert (again, unknown) == (D(0), D(0))


def test_open_reservation_after_partial_fill_then_shows_what_remains() -> None:
    # Arrange
    book = make_book()
    order = place(Side.SELL, "1", "50000.00")
    book.accept(order, NOW)
    book.book_fill(fill_of(order, quantity="0.25"))

    # Act
    reservation = book.open_reservation(order.order_id)

    # Assert
    assert reservation is not None
    assert (reservation.asset, reservation.amount) == ("BTC", D("0.75"))
    assert reservation.protection_price == D("50000.00")


def test_totals_when_orders_accepted_filled_and_released_then_never_change() -> None:
    # Arrange
    book = make_book(eth="3")
    start = book.totals()
    buy, sell = (
        place(quantity="0.3", price="50100.00"),
        place(Side.SELL, "2", "3000.00", symbol="ETH-USD"),
    )

    # Act
    book.accept(buy, NOW)
    book.accept(sell, NOW)
    book.book_fill(fill_of(buy, quantity="0.1", price="50000.00"))
    book.book_fill(fill_of(sell, quantity="1.5", price="3001.00"))
    book.book_fill(fill_of(buy, quantity="0.2", price="49999.99"))
    book.release(buy.order_id)
    book.release(sell.order_id)

    # Assert
    assert book.totals() == start
    assert book.balances(ACCOUNT)["USD"].reserved == 0
    assert book.balances(ACCOUNT)["ETH"].reserved == 0


# Accounts and views


@pytest.mark.parametrize("account_id", [ACCOUNT, VENUE, FEES])
def test_open_account_when_id_taken_then_raises_account_exists(account_id: str) -> None:
    # Arrange
    book = make_book()

    # Act / Assert
    with pytest.raises(AccountExists):
        book.open_account(account_id, {"USD": D(1)})


@pytest.mark.parametrize("account_id", ["venue", "Fees"])
def test_open_account_when_id_spells_a_ledger_account_then_raises_reserved(
    account_id: str,
) -> None:
    # Arrange
    book = make_book()

    # Act / Assert
    with pytest.raises(ReservedAccountId) as raised:
        book.open_account(account_id, {"USD": D(1)})
    assert raised.value.code == "RESERVED_ACCOUNT_ID"
    assert not book.has_account(account_id)


def test_snapshot_when_account_unknown_then_raises_unknown_account() -> None:
    # Arrange
    book = make_book()

    # Act / Assert
    with pytest.raises(UnknownAccount):
        book.snapshot("nobody")


def test_snapshot_after_fill_then_reports_position_and_pnl_at_the_mark() -> None:
    # Arrange
    book = make_book()
    order = place(quantity="0.1", price="50000.00")
    book.accept(order, NOW)
    book.book_fill(fill_of(order, fee="5.00"))
    book.mark_price("BTC-USD", D("51000.00"), NOW)

    # Act
    snapshot = book.snapshot(ACCOUNT)

    # Assert
    position = snapshot.positions["BTC-USD"]
    assert (position.quantity, position.average_price) == (D("0.1"), D("50000.00"))
    assert snapshot.unrealized_pnl == D("100")
    assert snapshot.realized_pnl == D("-5.00")  # the fee


# post_fill: the supervisor's booking, without the entry


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_post_fill_when_booked_then_moves_exactly_what_book_fill_moves(side: Side) -> None:
    # Arrange: two identical books, one order each, the same partial then final fill
    posted, booked = make_book(), make_book()
    order = place(side, quantity="0.2", price="50000.00")
    posted.accept(order, NOW)
    booked.accept(order, NOW)
    fills = [fill_of(order, "0.05", execution_id="x:1"), fill_of(order, "0.15", execution_id="x:2")]

    # Act
    records = [posted.post_fill(f) for f in fills]
    entries = [booked.book_fill(f) for f in fills]

    # Assert
    assert all(record is not None for record in records)
    assert all(entry is not None for entry in entries)
    for account in (ACCOUNT, VENUE, FEES):
        assert posted.balances(account) == booked.balances(account)
    assert posted.snapshot(ACCOUNT) == booked.snapshot(ACCOUNT)
    assert posted.release(order.order_id) == booked.release(order.order_id)
    assert posted.totals() == booked.totals()


def test_post_fill_when_execution_replayed_then_none_and_nothing_moves() -> None:
    # Arrange
    book = make_book()
    order = place(quantity="0.1", price="50000.00")
    book.accept(order, NOW)
    execution = fill_of(order, execution_id="x:1")
    book.post_fill(execution)
    before = book.balances(ACCOUNT)

    # Act
    again = book.post_fill(execution)

    # Assert
    assert again is None
    assert book.balances(ACCOUNT) == before
