"""Builders shared by the risk unit tests: a book with one funded account, orders and fills."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.commands import ApplyFill, PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from oms.domain.limits import RiskLimits
from oms.risk import RiskBook

FEE_RATE = Decimal("0.001")
BTC_PRICE = Decimal("50000.00")
ETH_PRICE = Decimal("3000.00")
ACCOUNT = "alice"
NOW = 1_000.0
NO_LIMITS = RiskLimits()


def make_book(
    limits: RiskLimits = NO_LIMITS,
    *,
    usd: str = "100000",
    btc: str = "2",
    eth: str = "0",
    marked: bool = True,
) -> RiskBook:
    """A book over the default instruments with one account (``alice``) and marked prices."""
    book = RiskBook(instrument_map(DEFAULT_INSTRUMENTS), fee_rate=FEE_RATE)
    book.open_account(
        ACCOUNT, {"USD": Decimal(usd), "BTC": Decimal(btc), "ETH": Decimal(eth)}, limits
    )
    if marked:
        book.mark_price("BTC-USD", BTC_PRICE, NOW)
        book.mark_price("ETH-USD", ETH_PRICE, NOW)
    return book


_counter = iter(range(1, 1_000_000))


def place(
    side: Side = Side.BUY,
    quantity: str = "0.1",
    price: str | None = "50000.00",
    *,
    symbol: str = "BTC-USD",
    account: str = ACCOUNT,
    order_id: str | None = None,
    market: bool = False,
) -> PlaceOrder:
    """A PlaceOrder; LIMIT at ``price`` unless ``market``."""
    n = next(_counter)
    return PlaceOrder(
        command_id=f"place-{n}",
        order_id=order_id or f"order-{n}",
        client_order_id=f"client-{n}",
        account_id=account,
        symbol=symbol,
        side=side,
        type=OrderType.MARKET if market else OrderType.LIMIT,
        quantity=Decimal(quantity),
        price=None if market or price is None else Decimal(price),
        time_in_force=TimeInForce.IOC if market else TimeInForce.GTC,
        created_at=NOW,
    )


def fill(
    order: PlaceOrder,
    quantity: str | None = None,
    price: str | None = None,
    *,
    fee: str | None = None,
    execution_id: str | None = None,
) -> ApplyFill:
    """An execution of ``order`` (whole quantity at its limit price, fee at the fee rate)."""
    qty = order.quantity if quantity is None else Decimal(quantity)
    px = (order.price or BTC_PRICE) if price is None else Decimal(price)
    fee_amount = (qty * px * FEE_RATE).quantize(Decimal("0.01")) if fee is None else Decimal(fee)
    return ApplyFill(
        command_id=execution_id or f"{order.order_id}:{next(_counter)}",
        order_id=order.order_id,
        account_id=order.account_id,
        quantity=qty,
        price=px,
        fee=fee_amount,
        executed_at=NOW,
    )
