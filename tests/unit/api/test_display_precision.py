"""Derived amounts (average prices, PnL) are shown at the instrument's quote precision, rounded
half-even, while the ledger behind them keeps every digit."""

from __future__ import annotations

from decimal import Decimal

from oms.api.encoding import account_json, order_json, positions_json
from oms.api.orders import as_new
from oms.domain.enums import Side
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from oms.domain.limits import RiskLimits, TradingState
from oms.risk import AccountSnapshot, Balance, Position
from tests.unit.risk.risk_builders import ACCOUNT, NOW, fill, make_book, place

INSTRUMENTS = instrument_map(DEFAULT_INSTRUMENTS)  # BTC-USD ticks 0.01, SOL-USD 0.001
THIRD = Decimal("150000.02") / 3  # 50000.00666666666666666666667: 28 digits of an average


def _snapshot(*positions: Position, realized: str = "0", unrealized: str = "0") -> AccountSnapshot:
    return AccountSnapshot(
        ACCOUNT,
        {"USD": Balance(Decimal("1000.123456"), Decimal(0))},
        {p.symbol: p for p in positions},
        TradingState.ACTIVE,
        RiskLimits(),
        Decimal(realized),
        Decimal(unrealized),
    )


def test_position_average_price_and_pnl_when_shown_then_round_half_even_to_the_tick() -> None:
    # Arrange: exact halves either side of an even digit, and a loss that rounds to zero
    position = Position(
        "BTC-USD", Decimal("3"), Decimal("100.125"), Decimal("0.135"), Decimal("-0.001")
    )

    # Act
    shown = positions_json(_snapshot(position), INSTRUMENTS)["BTC-USD"]

    # Assert
    assert shown == {
        "quantity": "3",
        "average_price": "100.12",  # half to even: down
        "realized_pnl": "0.14",  # half to even: up
        "unrealized_pnl": "0.00",  # not "-0.00"
    }


def test_account_pnl_when_shown_then_at_the_finest_precision_of_its_instruments() -> None:
    # Arrange
    btc = Position("BTC-USD", Decimal(1), THIRD, Decimal("-0.0125"), Decimal(0))
    sol = Position("SOL-USD", Decimal(1), Decimal("20.0005"), Decimal(0), Decimal("0.0015"))
    snapshot = _snapshot(btc, sol, realized="-0.0125", unrealized="0.0015")

    # Act
    account = account_json(snapshot, INSTRUMENTS)

    # Assert
    assert account["pnl"] == {"realized": "-0.012", "unrealized": "0.002", "total": "-0.011"}
    assert account["positions"]["BTC-USD"]["average_price"] == "50000.01"
    assert account["positions"]["SOL-USD"]["average_price"] == "20.000"  # half to even: down
    assert account["balances"]["USD"]["available"] == "1000.123456"  # booked: every digit


def test_order_average_fill_price_when_shown_then_at_the_tick_and_every_digit_unlisted() -> None:
    # Arrange
    order = as_new(place(quantity="3", price="50000.01"))._replace(
        filled_quantity=Decimal(3), filled_notional=Decimal("150000.02"), average_fill_price=THIRD
    )

    # Act
    listed = order_json(order, INSTRUMENTS)
    unlisted = order_json(order, {})

    # Assert
    assert listed["average_fill_price"] == "50000.01"
    assert listed["quantity"] == "3"
    assert unlisted["average_fill_price"] == str(THIRD)


def test_fills_at_uneven_prices_when_booked_then_the_ledger_keeps_every_digit() -> None:
    # Arrange: three fills whose average has no finite decimal expansion
    book = make_book(usd="200000", btc="0")
    order = place(Side.BUY, quantity="3", price="50000.01")
    book.accept(order, NOW)
    fills = [fill(order, "1", price) for price in ("50000.00", "50000.01", "50000.01")]

    # Act
    for one in fills:
        book.book_fill(one)
    snapshot = book.snapshot(ACCOUNT)
    shown = account_json(snapshot, INSTRUMENTS)

    # Assert: booking is exact, only the answer is rounded
    position = snapshot.positions["BTC-USD"]
    fees = sum((f.fee for f in fills), Decimal(0))
    assert position.average_price == THIRD
    assert position.realized_pnl == -fees
    assert snapshot.balances["USD"].total == Decimal("200000") - Decimal("150000.02") - fees
    assert snapshot.balances["BTC"].total == Decimal(3)
    assert shown["positions"]["BTC-USD"]["average_price"] == "50000.01"
    assert book.snapshot(ACCOUNT).positions["BTC-USD"].average_price == THIRD
