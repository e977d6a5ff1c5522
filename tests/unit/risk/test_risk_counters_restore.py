"""Velocity windows and the daily-loss day rebuilt by recovery: the checkpoint's counters plus
the acceptances stored after it, each at its own time, so a spent limit stays spent."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from oms.domain.commands import ApplyFill, PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import OrderAccepted, OrderEvent, OrderPlaced
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.reasons import RejectReason
from oms.risk import RiskBook
from oms.risk.account import SECONDS_PER_DAY
from oms.risk.checkpoint import LedgerCheckpoint
from oms.risk.restore import (
    Acceptance,
    AccountOpening,
    BookRestore,
    EndedOrder,
    accepted_after,
    restore_book,
)
from tests.unit.risk.risk_builders import ACCOUNT, FEE_RATE, NOW, fill, make_book, place

OPENING = {"USD": Decimal("100000"), "BTC": Decimal("2"), "ETH": Decimal("0")}
VELOCITY = RiskLimits(velocity_window_s=60.0, max_orders_per_window=2)
LOSS = RiskLimits(daily_loss_limit=Decimal("10"))
DAY_TWO = 2 * SECONDS_PER_DAY + 100.0  # a time on a later UTC day than NOW


def _restored(
    limits: RiskLimits,
    ledger: LedgerCheckpoint | None,
    *,
    accepted: tuple[Acceptance, ...] = (),
    fills: tuple[ApplyFill, ...] = (),
    ended: tuple[EndedOrder, ...] = (),
) -> tuple[RiskBook, int]:
    """A fresh book rebuilt from ``ledger`` and what came after it; how many were counted."""
    book = RiskBook(instrument_map(DEFAULT_INSTRUMENTS), fee_rate=FEE_RATE)
    book.mark_price("BTC-USD", Decimal("50000.00"), NOW)
    opening = AccountOpening(ACCOUNT, OPENING, limits, TradingState.ACTIVE)
    done = restore_book(book, BookRestore(None, (opening,), ledger, (), ended, fills, accepted))
    return book, done.counted


def _acceptance(order: PlaceOrder, at: float) -> Acceptance:
    assert order.price is not None
    return Acceptance(order.order_id, ACCOUNT, at, order.quantity * order.price)


def _reasons(book: RiskBook, order: PlaceOrder, now: float) -> list[RejectReason]:
    return [denial.reason for denial in book.accept(order, now).denials]


def test_restore_when_the_checkpoint_holds_a_spent_velocity_limit_then_denies_with_its_code() -> (
    None
):
    # Arrange: live, two orders accepted, the third denied
    live = make_book(VELOCITY)
    for _ in range(2):
        assert live.accept(place(price="49000.00"), NOW).accepted
    checkpoint = live.export_ledger([ACCOUNT])

    # Act
    book, _ = _restored(VELOCITY, checkpoint)

    # Assert: the rebuilt book refuses the next order as the live one does
    third = place(price="49000.00")
    assert _reasons(book, third, NOW + 1) == [RejectReason.VELOCITY_ORDERS_EXCEEDED]
    assert _reasons(live, third, NOW + 1) == [RejectReason.VELOCITY_ORDERS_EXCEEDED]


def test_restore_when_orders_were_accepted_after_the_checkpoint_then_they_count_once() -> None:
    # Arrange: one accepted before the checkpoint, one after it
    live = make_book(VELOCITY)
    first, second = place(price="49000.00"), place(price="49000.00")
    live.accept(first, NOW)
    checkpoint = live.export_ledger([ACCOUNT])
    live.accept(second, NOW + 5)

    # Act
    book, counted = _restored(VELOCITY, checkpoint, accepted=(_acceptance(second, NOW + 5),))

    # Assert: two in the window, as live (not one, not three)
    assert counted == 1
    assert book._accounts[ACCOUNT].velocity_in_window(NOW + 6) == live._accounts[
        ACCOUNT
    ].velocity_in_window(NOW + 6)
    assert _reasons(book, place(price="49000.00"), NOW + 6) == [
        RejectReason.VELOCITY_ORDERS_EXCEEDED
    ]


def test_restore_when_the_window_passed_by_the_events_own_time_then_the_next_order_passes() -> None:
    # Arrange: both acceptances stored after the checkpoint, 61 s and more before the next order
    first, second = place(price="49000.00"), place(price="49000.00")
    accepted = (_acceptance(first, NOW), _acceptance(second, NOW + 1))

    # Act
    book, counted = _restored(VELOCITY, None, accepted=accepted)

    # Assert: counted at their own time, so inside the window they deny, after it they do not
    assert counted == 2
    assert _reasons(book, place(price="49000.00"), NOW + 30) == [
        RejectReason.VELOCITY_ORDERS_EXCEEDED
    ]
    assert book.accept(place(price="49000.00"), NOW + 62).accepted


def _lost(book: RiskBook, at: float) -> tuple[list[ApplyFill], list[Acceptance], list[EndedOrder]]:
    """Buy 0.1 BTC at 50,000 and sell it at 49,800 at ``at``: 20 USD and fees lost; the fills,
    the acceptances and the ended orders as recovery would read them."""
    buy = place(Side.BUY, "0.1", "50000.00")
    sell = place(Side.SELL, "0.1", "49800.00")
    fills: list[ApplyFill] = []
    accepted: list[Acceptance] = []
    ended: list[EndedOrder] = []
    for order in (buy, sell):
        assert book.accept(order, at).accepted
        execution = dataclasses.replace(fill(order), executed_at=at)
        book.post_fill(execution)
        book.release(order.order_id)
        fills.append(execution)
        accepted.append(_acceptance(order, at))
        cost = execution.quantity * execution.price + execution.fee
        ended.append(
            EndedOrder(
                order.order_id,
                ACCOUNT,
                order.symbol,
                order.side,
                execution.quantity,
                execution.price,
                cost if order.side is Side.BUY else execution.quantity,
                1,
            )
        )
    return fills, accepted, ended


def test_restore_when_the_daily_loss_was_spent_before_the_checkpoint_then_still_denied() -> None:
    # Arrange: on day two, a loss past the limit, then the checkpoint
    live = make_book(LOSS)
    _lost(live, DAY_TWO)
    checkpoint = live.export_ledger([ACCOUNT])

    # Act
    book, _ = _restored(LOSS, checkpoint)

    # Assert
    buy = place(Side.BUY, "0.01", "50000.00")
    assert _reasons(book, buy, DAY_TWO + 60) == [RejectReason.DAILY_LOSS_LIMIT_REACHED]
    assert _reasons(live, buy, DAY_TWO + 60) == [RejectReason.DAILY_LOSS_LIMIT_REACHED]


def test_restore_when_the_day_began_before_the_checkpoint_then_earlier_losses_stay_in_their_day() -> (
    None
):
    # Arrange: a loss on day one, then day two began (an order), then the checkpoint
    live = make_book(LOSS)
    _lost(live, NOW)
    assert live.accept(place(Side.BUY, "0.01", "49000.00"), DAY_TWO).accepted
    checkpoint = live.export_ledger([ACCOUNT])

    # Act
    book, _ = _restored(LOSS, checkpoint)

    # Assert: day one's loss does not count on day two, as live (a rebuild used to count it)
    buy = place(Side.BUY, "0.01", "49000.00")
    assert book.accept(buy, DAY_TWO + 60).accepted
    assert live.accept(buy, DAY_TWO + 60).accepted


def test_restore_when_the_loss_and_a_new_day_came_after_the_checkpoint_then_replayed_in_order() -> (
    None
):
    # Arrange: the checkpoint before anything; a loss on day one, an order on day two
    live = make_book(LOSS)
    checkpoint = live.export_ledger([ACCOUNT])
    fills, accepted, ended = _lost(live, NOW)
    later = place(Side.BUY, "0.01", "49000.00")
    assert live.accept(later, DAY_TWO).accepted

    # Act: the acceptances and fills after the checkpoint, by their own times
    book, counted = _restored(
        LOSS,
        checkpoint,
        accepted=(*accepted, _acceptance(later, DAY_TWO)),
        fills=tuple(fills),
        ended=tuple(ended),
    )

    # Assert: day two started after day one's loss, so the next order passes on both books
    assert counted == 3
    account, mirror = book._accounts[ACCOUNT], live._accounts[ACCOUNT]
    assert (account.day, account.day_start_pnl) == (mirror.day, mirror.day_start_pnl)
    assert book.accept(place(Side.BUY, "0.01", "49000.00"), DAY_TWO + 60).accepted


def test_restore_when_an_acceptance_names_no_open_account_then_skipped_not_fatal() -> None:
    # Arrange
    stray = Acceptance("order-x", "mallory", NOW, Decimal(1))

    # Act
    _, counted = _restored(VELOCITY, None, accepted=(stray,))

    # Assert
    assert counted == 0


def _history(
    kind: OrderType,
    *,
    price: str | None,
    stop: str | None = None,
    protection: str = "50500.00",
) -> list[OrderEvent]:
    placed = OrderPlaced(
        "o-1", 1, "place:o-1", NOW, "c-1", ACCOUNT, "BTC-USD", Side.BUY, kind,
        Decimal("0.2"), None if price is None else Decimal(price), TimeInForce.GTC,
        stop_price=None if stop is None else Decimal(stop),
    )  # fmt: skip
    return [placed, OrderAccepted("o-1", 2, "place:o-1", NOW + 0.5, Decimal(protection))]


def test_accepted_after_when_a_limit_order_then_counts_its_price_at_the_events_time() -> None:
    # Act
    one = accepted_after(_history(OrderType.LIMIT, price="49000.00"), 0)

    # Assert
    assert one == Acceptance("o-1", ACCOUNT, NOW + 0.5, Decimal("9800.000"))


def test_accepted_after_when_a_stop_market_order_then_counts_its_stop_price() -> None:
    # Act
    one = accepted_after(_history(OrderType.STOP_MARKET, price=None, stop="51000.00"), 0)

    # Assert
    assert one is not None
    assert one.notional == Decimal("10200.000")


def test_accepted_after_when_a_market_order_then_counts_its_protection_price() -> None:
    # Act
    one = accepted_after(_history(OrderType.MARKET, price=None), 0)

    # Assert
    assert one is not None
    assert one.notional == Decimal("10100.000")


def test_accepted_after_when_the_checkpoint_holds_the_acceptance_then_none() -> None:
    # Act / Assert: sequence 2 is the acceptance; a checkpoint at version 2 holds it
    assert accepted_after(_history(OrderType.LIMIT, price="49000.00"), 2) is None
    assert accepted_after(_history(OrderType.LIMIT, price="49000.00")[:1], 0) is None
