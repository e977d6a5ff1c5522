"""``RiskBook.restore_open``: an accepted order's record rebuilt after a restart, as live."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.enums import Side
from oms.domain.errors import RiskError, UnknownAccount, UnknownInstrument
from oms.risk import RiskBook
from tests.unit.risk.risk_builders import ACCOUNT, NOW, fill, make_book, place


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
        book.totals(),
    )


@pytest.mark.parametrize(
    ("side", "quantity", "price"),
    [(Side.BUY, "0.3", "50000.00"), (Side.SELL, "0.7", "51000.00")],
)
def test_restore_reserves_what_accept_reserved(side: Side, quantity: str, price: str) -> None:
    live, restored = make_book(), make_book()
    order = place(side, quantity, price)
    decision = live.accept(order, NOW)
    assert decision.reservation is not None

    reservation = restored.restore_open(
        order.order_id, ACCOUNT, "BTC-USD",
        side=side, quantity=order.quantity, protection=Decimal(price),
    )  # fmt: skip

    assert reservation == decision.reservation
    assert restored.open_reservation(order.order_id) == live.open_reservation(order.order_id)
    assert _state(restored) == _state(live)
    assert restored.is_open(order.order_id)


def test_restored_order_then_its_fills_and_release_end_where_the_live_book_ends() -> None:
    live, restored = make_book(), make_book()
    buy = place(Side.BUY, "0.4", "50000.00")
    sell = place(Side.SELL, "0.5", "50500.00")
    fills = [fill(buy, "0.1"), fill(buy, "0.2", "49990.00"), fill(sell, "0.5")]
    for order in (buy, sell):
        live.accept(order, NOW)
        assert order.price is not None
        restored.restore_open(
            order.order_id, ACCOUNT, order.symbol,
            side=order.side, quantity=order.quantity, protection=order.price,
        )  # fmt: skip
    for execution in fills:
        live.post_fill(execution)
        restored.post_fill(execution)
    assert _state(restored) == _state(live)  # buy still open, part filled
    assert restored.open_reservation(buy.order_id) == live.open_reservation(buy.order_id)
    for order in (buy, sell):
        live.release(order.order_id)
        restored.release(order.order_id)
    assert _state(restored) == _state(live)
    assert restored.snapshot(ACCOUNT).balances["USD"].reserved == 0
    # a fill booked again is recognised
    assert restored.post_fill(fills[0]) is None


def test_an_ended_order_restored_with_its_exact_cost_leaves_only_its_fills() -> None:
    book = make_book(usd="10000")
    before = book.totals()
    book.restore_open(
        "gone-1", ACCOUNT, "BTC-USD", side=Side.BUY, quantity=Decimal("0.1"),
        protection=Decimal("50000.00"), reserved=Decimal("5005.00"),
    )  # fmt: skip
    order = place(Side.BUY, "0.1", "50000.00", order_id="gone-1")
    book.post_fill(fill(order, fee="5.00"))
    book.release("gone-1")
    balances = book.snapshot(ACCOUNT).balances
    assert balances["USD"].available == Decimal("4995.00")
    assert balances["USD"].reserved == 0
    assert balances["BTC"].available == Decimal("2.1")
    assert book.totals() == before
    assert book.open_order_count(ACCOUNT) == 0


def test_restore_refuses_an_open_order_an_unknown_account_or_instrument() -> None:
    book = make_book()
    book.restore_open(
        "o-1", ACCOUNT, "BTC-USD", side=Side.SELL, quantity=Decimal(1), protection=Decimal(1)
    )
    with pytest.raises(RiskError):
        book.restore_open(
            "o-1", ACCOUNT, "BTC-USD", side=Side.SELL, quantity=Decimal(1), protection=Decimal(1)
        )
    with pytest.raises(UnknownAccount):
        book.restore_open(
            "o-2", "nobody", "BTC-USD", side=Side.SELL, quantity=Decimal(1), protection=Decimal(1)
        )
    with pytest.raises(UnknownInstrument):
        book.restore_open(
            "o-3", ACCOUNT, "DOGE-USD", side=Side.SELL, quantity=Decimal(1), protection=Decimal(1)
        )
