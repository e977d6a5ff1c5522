"""Property: a book rebuilt from a checkpoint taken at any point, plus the acceptances and
fills stored after it, holds the same velocity window and daily-loss day as the live book."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from oms.domain.enums import Side
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from oms.domain.limits import RiskLimits, TradingState
from oms.risk import RiskBook
from oms.risk.account import SECONDS_PER_DAY
from oms.risk.restore import Acceptance, AccountOpening, BookRestore, EndedOrder, restore_book
from tests.unit.risk.risk_builders import ACCOUNT, BTC_PRICE, FEE_RATE, NOW, fill, make_book, place

# Every order counted (velocity on) and none denied: the property is about the counters.
LIMITS = RiskLimits(
    velocity_window_s=90.0,
    max_orders_per_window=10_000,
    max_notional_per_window=Decimal("1e12"),
    daily_loss_limit=Decimal("1e12"),
)
OPENING = {"USD": Decimal("100000"), "BTC": Decimal("2"), "ETH": Decimal("0")}

steps = st.lists(
    st.tuples(
        # seconds since the previous order: often inside the window, sometimes a day later
        st.one_of(st.floats(0.0, 120.0), st.floats(SECONDS_PER_DAY / 2, SECONDS_PER_DAY * 1.5)),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 5),  # quantity in hundredths of a BTC
        st.integers(-400, 400),  # price offset from the mark, in dollars
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(steps=steps, cut=st.integers(0, 25), later=st.floats(0.0, 200.0))
def test_rebuild_when_checkpoint_at_any_point_then_counters_equal_the_live_ones(
    steps: list[tuple[float, Side, int, int]], cut: int, later: float
) -> None:
    """No limit is ever spent twice or reset by a rebalance."""
    # Arrange: live trading, each order filled whole at its price and released
    live = make_book(LIMITS)
    checkpoint = live.export_ledger([ACCOUNT])
    at = NOW
    accepted: list[Acceptance] = []
    ended: list[EndedOrder] = []
    fills = []
    for n, (gap, side, hundredths, offset) in enumerate(steps):
        if n == cut:
            checkpoint, accepted, ended, fills = live.export_ledger([ACCOUNT]), [], [], []
        at += gap
        price = BTC_PRICE + offset
        order = place(side, str(Decimal(hundredths) / 100), str(price))
        assert live.accept(order, at).accepted
        execution = dataclasses.replace(fill(order), executed_at=at)
        live.post_fill(execution)
        live.release(order.order_id)
        accepted.append(Acceptance(order.order_id, ACCOUNT, at, order.quantity * price))
        fills.append(execution)
        cost = execution.quantity * price + execution.fee
        ended.append(
            EndedOrder(
                order.order_id,
                ACCOUNT,
                "BTC-USD",
                side,
                order.quantity,
                price,
                cost if side is Side.BUY else order.quantity,
                1,
            )
        )

    # Act
    rebuilt = RiskBook(instrument_map(DEFAULT_INSTRUMENTS), fee_rate=FEE_RATE)
    rebuilt.mark_price("BTC-USD", BTC_PRICE, NOW)
    rebuilt.mark_price("ETH-USD", Decimal("3000.00"), NOW)
    opening = AccountOpening(ACCOUNT, OPENING, LIMITS, TradingState.ACTIVE)
    plan = BookRestore(
        None, (opening,), checkpoint, (), tuple(ended), tuple(fills), tuple(accepted)
    )
    restore_book(rebuilt, plan)

    # Assert
    now = at + later
    mine, theirs = rebuilt._accounts[ACCOUNT], live._accounts[ACCOUNT]
    assert mine.velocity_in_window(now) == theirs.velocity_in_window(now)
    assert (mine.day, mine.day_start_pnl) == (theirs.day, theirs.day_start_pnl)
    marks = {"BTC-USD": BTC_PRICE}
    assert mine.pnl_today(marks, now) == theirs.pnl_today(marks, now)
