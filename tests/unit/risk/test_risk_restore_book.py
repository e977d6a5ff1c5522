"""``restore_book``: recovery's plan applied to a book ends where the live book ended."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.commands import ApplyFill, PlaceOrder
from oms.domain.enums import Side
from oms.domain.events import OrderAccepted, OrderPlaced
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from oms.domain.limits import TradingState
from oms.domain.orders import Order, fold
from oms.risk import RiskBook
from oms.risk.restore import AccountOpening, BookRestore, EndedOrder, restore_book
from tests.unit.risk.risk_builders import ACCOUNT, FEE_RATE, NOW, fill, make_book, place

OPENING = {"USD": Decimal("100000"), "BTC": Decimal("2"), "ETH": Decimal("0")}


def _empty_book() -> RiskBook:
    return RiskBook(instrument_map(DEFAULT_INSTRUMENTS), fee_rate=FEE_RATE)


def _accepted(order: PlaceOrder, protection: Decimal) -> Order:
    """The stored state of an accepted order."""
    placed = OrderPlaced(
        order.order_id, 1, order.command_id, NOW, order.client_order_id, order.account_id,
        order.symbol, order.side, order.type, order.quantity, order.price, order.time_in_force,
    )  # fmt: skip
    return fold([placed, OrderAccepted(order.order_id, 2, "risk", NOW, protection)])


def _plan(
    *,
    open_orders: tuple[Order, ...] = (),
    ended: tuple[EndedOrder, ...] = (),
    fills: tuple[ApplyFill, ...] = (),
    reset: TradingState | None = None,
    state: TradingState = TradingState.ACTIVE,
) -> BookRestore:
    account = AccountOpening(ACCOUNT, OPENING, None, state)
    return BookRestore(reset, (account,), None, open_orders, ended, fills)


def _figures(book: RiskBook) -> tuple[object, ...]:
    snapshot = book.snapshot(ACCOUNT)
    return snapshot.balances, snapshot.positions, book.open_order_count(ACCOUNT), book.totals()


def test_restore_book_when_an_open_order_has_a_fill_then_ends_where_the_live_book_is() -> None:
    # Arrange: live, a BUY accepted and half filled
    live = make_book(marked=False)
    buy = place(Side.BUY, "0.4", "50000.00")
    decision = live.accept(buy, NOW)
    assert decision.reservation is not None
    half = fill(buy, "0.2")
    live.post_fill(half)

    # Act: an empty book gets the account, the open order and its fill back
    restored = _empty_book()
    done = restore_book(
        restored,
        _plan(open_orders=(_accepted(buy, decision.reservation.protection_price),), fills=(half,)),
    )

    # Assert
    assert (done.opened, done.booked, done.ended, done.skipped) == (1, 1, 0, 0)
    assert done.restored == frozenset({buy.order_id})
    assert _figures(restored) == _figures(live)


def test_restore_book_when_an_order_ended_with_fills_then_booked_and_released() -> None:
    # Arrange: live, a SELL filled whole and released
    live = make_book(marked=False)
    sell = place(Side.SELL, "0.5", "50500.00")
    live.accept(sell, NOW)
    whole = fill(sell)
    live.post_fill(whole)
    live.release(sell.order_id)
    ended = EndedOrder(
        sell.order_id, ACCOUNT, "BTC-USD", Side.SELL, whole.quantity, whole.price,
        whole.quantity, 1,
    )  # fmt: skip

    # Act
    restored = _empty_book()
    done = restore_book(restored, _plan(ended=(ended,), fills=(whole,)))

    # Assert: nothing left reserved, balances as live
    assert (done.booked, done.ended) == (1, 1)
    assert not restored.is_open(sell.order_id)
    assert _figures(restored) == _figures(live)


def test_restore_book_when_an_account_is_halted_then_stays_halted() -> None:
    # Act
    restored = _empty_book()
    restore_book(restored, _plan(state=TradingState.HALTED))

    # Assert: a restart never resumes what an operator halted
    assert restored.trading_state(ACCOUNT) is TradingState.HALTED


def test_restore_book_when_a_fill_names_an_unknown_instrument_then_skipped_not_fatal() -> None:
    # Arrange: an open order on a symbol the book does not list
    odd = place(Side.BUY, "0.1", "50000.00", symbol="DOGE-USD")

    # Act
    restored = _empty_book()
    done = restore_book(restored, _plan(open_orders=(_accepted(odd, Decimal("50000.00")),)))

    # Assert: counted as skipped, the rest restored
    assert done.skipped == 1
    assert done.restored == frozenset()
    assert restored.has_account(ACCOUNT)


def test_restore_book_when_reset_then_what_the_book_held_is_gone() -> None:
    # Arrange: a book holding another account and an open order
    book = make_book()
    book.open_account("bob", {"USD": Decimal(10)})
    book.accept(place(Side.BUY, "0.1", "50000.00"), NOW)

    # Act: a rebuild with the global switch halted
    done = restore_book(book, _plan(reset=TradingState.HALTED))

    # Assert
    assert done.opened == 1
    assert not book.has_account("bob")
    assert book.open_order_count(ACCOUNT) == 0
    assert book.trading_state() is TradingState.HALTED
