"""``RiskBook.export_ledger`` / ``load_ledger``: a book's figures carried to a fresh book."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.enums import Side
from oms.risk import FEES, VENUE, RiskBook
from oms.risk.checkpoint import LedgerCheckpoint
from oms.risk.errors import RiskError, UnknownAccount
from tests.unit.risk.risk_builders import ACCOUNT, NOW, fill, make_book, place

OPENING = {ACCOUNT: {"USD": Decimal(100000), "BTC": Decimal(2), "ETH": Decimal(0)}}


def _state(book: RiskBook) -> tuple[object, ...]:
    snapshot = book.snapshot(ACCOUNT)
    open_quantities = {
        symbol: (p.open_buy, p.open_sell) for symbol, p in book._accounts[ACCOUNT].positions.items()
    }
    return (
        snapshot.balances,
        snapshot.positions,
        open_quantities,
        snapshot.realized_pnl,
        book.open_order_count(ACCOUNT),
        book.balances(VENUE),
        book.balances(FEES),
        book.totals(),
    )


def _traded() -> tuple[RiskBook, list[object]]:
    """A book that bought, sold, part-filled a resting BUY and holds a resting SELL."""
    book = make_book()
    done = place(Side.BUY, "0.3", "50000.00")
    resting = place(Side.BUY, "0.4", "49900.00")
    selling = place(Side.SELL, "0.5", "50500.00")
    for order in (done, resting, selling):
        book.accept(order, NOW)
    book.post_fill(fill(done, "0.1"))
    book.post_fill(fill(done, "0.2", "49990.00"))
    book.release(done.order_id)
    part = fill(resting, "0.1", "49900.00")
    book.post_fill(part)
    return book, [resting, selling, part]


def test_load_when_a_checkpoint_of_a_traded_book_then_the_fresh_book_shows_the_same() -> None:
    # Arrange
    live, _ = _traded()
    checkpoint = live.export_ledger([ACCOUNT])
    fresh = make_book()

    # Act
    fresh.load_ledger(checkpoint, OPENING)

    # Assert
    assert _state(fresh) == _state(live)
    for order_id in checkpoint.order_ids():
        assert fresh.open_reservation(order_id) == live.open_reservation(order_id)


def test_fills_when_after_a_loaded_checkpoint_then_both_books_move_alike() -> None:
    # Arrange
    live, (resting, selling, part) = _traded()
    fresh = make_book()
    fresh.load_ledger(live.export_ledger([ACCOUNT]), OPENING)
    later = [fill(resting, "0.3", "49900.00"), fill(selling, "0.5")]  # type: ignore[arg-type]

    # Act
    replayed = fresh.post_fill(part)  # type: ignore[arg-type]
    for book in (live, fresh):
        for execution in later:
            book.post_fill(execution)
        book.release(resting.order_id)  # type: ignore[attr-defined]
        book.release(selling.order_id)  # type: ignore[attr-defined]

    # Assert
    assert replayed is None  # a fill booked before the checkpoint is recognised
    assert _state(fresh) == _state(live)
    assert fresh.snapshot(ACCOUNT).balances["USD"].reserved == 0
    assert fresh.totals() == make_book().totals()


def test_load_when_the_account_is_not_open_then_refuses_and_changes_nothing() -> None:
    # Arrange
    live, _ = _traded()
    checkpoint = live.export_ledger([ACCOUNT])
    fresh = make_book()
    fresh_other = RiskBook(fresh._instruments, fee_rate=Decimal("0.001"))
    before = _state(fresh)

    # Act / Assert
    with pytest.raises(UnknownAccount):
        fresh_other.load_ledger(checkpoint, OPENING)
    with pytest.raises(UnknownAccount):
        fresh.load_ledger(checkpoint, {})
    assert _state(fresh) == before


def test_load_when_a_record_is_already_open_then_refuses_with_already_open() -> None:
    # Arrange
    live, (resting, _, _) = _traded()
    checkpoint = live.export_ledger([ACCOUNT])
    fresh = make_book()
    fresh.accept(resting, NOW)  # type: ignore[arg-type]

    # Act / Assert
    with pytest.raises(RiskError) as refused:
        fresh.load_ledger(checkpoint, OPENING)
    assert refused.value.code == "ALREADY_OPEN"


def test_export_when_no_account_is_asked_then_the_checkpoint_is_empty() -> None:
    live, _ = _traded()
    assert live.export_ledger([]) == LedgerCheckpoint()
