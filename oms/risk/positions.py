"""Positions per account and symbol: signed quantity, average price, realized and unrealized PnL.

A position is the signed sum of the account's fills in a symbol (buys add, sells subtract); base
asset held before the account's first trade is balance, not position. So selling opening holdings
makes the position negative, and buying them back realizes the PnL against the price they were
sold at: in spot trading that is the only cost basis the book knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from oms.domain.enums import Side
from oms.domain.orders import Order

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Position:
    """A snapshot of one position. PnL is in the quote asset; realized PnL is net of fees."""

    symbol: str
    quantity: Decimal
    average_price: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal


class PositionState:
    """The live, mutable position of one account in one symbol, with its open-order quantities."""

    __slots__ = (
        "average_price",
        "fees",
        "open_buy",
        "open_sell",
        "quantity",
        "realized_pnl",
        "symbol",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.quantity = _ZERO
        # Average entry price of the open quantity, fees excluded (fees go to realized PnL).
        self.average_price = _ZERO
        self.realized_pnl = _ZERO
        # Fees paid on this symbol's fills (in its quote asset): a ledger checkpoint needs them to
        # tell the FEES share of the account's outflows from the VENUE share.
        self.fees = _ZERO
        # Unfilled quantity of accepted, not yet released orders: the position limit and the
        # concentration check count them as if they were already filled.
        self.open_buy = _ZERO
        self.open_sell = _ZERO

    def apply_fill(
        self, *, is_buy: bool, quantity: Decimal, price: Decimal, fee: Decimal
    ) -> Decimal:
        """Add one fill; return the PnL it realized (price PnL of the reduced part minus the fee)."""
        signed = quantity if is_buy else -quantity
        held = self.quantity
        realized = -fee
        if held == 0 or (held > 0) == is_buy:
            # Opening or adding: a quantity-weighted average of the entry prices.
            size = abs(held)
            self.average_price = (self.average_price * size + price * quantity) / (size + quantity)
            self.quantity = held + signed
        else:
            closed = min(quantity, abs(held))
            # A long is reduced by selling above its average, a short by buying below it.
            realized += (
                closed * (price - self.average_price)
                if held > 0
                else closed * (self.average_price - price)
            )
            self.quantity = held + signed
            if self.quantity == 0:
                self.average_price = _ZERO
            elif (self.quantity > 0) != (held > 0):
                # The fill went through zero: what is left opened a new position at this price.
                self.average_price = price
        self.realized_pnl += realized
        self.fees += fee
        return realized

    def unrealized_pnl(self, mark: Decimal | None) -> Decimal:
        """PnL of the open quantity at ``mark`` (zero when there is no mark yet)."""
        if mark is None or self.quantity == 0:
            return _ZERO
        return self.quantity * (mark - self.average_price)

    def snapshot(self, mark: Decimal | None) -> Position:
        """An immutable view of this position valued at ``mark``."""
        return Position(
            self.symbol,
            self.quantity,
            self.average_price,
            self.realized_pnl,
            self.unrealized_pnl(mark),
        )

    def reduces(self, *, is_buy: bool, quantity: Decimal) -> bool:
        """True when an order shrinks this position without crossing zero, open orders included.

        A SELL reduces a long when it and the sells already open fit inside the long; a BUY
        reduces a short the same way. With no position nothing reduces.
        """
        if is_buy:
            return self.quantity < 0 and self.open_buy + quantity <= -self.quantity
        return self.quantity > 0 and self.open_sell + quantity <= self.quantity


def growing_orders(positions: Mapping[str, Decimal], orders: Iterable[Order]) -> list[Order]:
    """The open orders a REDUCING kill switch cancels: those that would grow the account's
    absolute position in their symbol (``positions``: its signed quantity per symbol).

    Each order is judged by ``PositionState.reduces``, the rule risk's REDUCING check applies
    to a new order, against the position and the reducing orders kept before it, oldest first:
    what is left of it must fit inside the position with them. So with no position every order
    grows; on a long, every BUY grows, and so does the SELL that would take the sells kept
    before it past zero. A kept order counts among the open quantity the next one is judged with.
    """
    probes: dict[str, PositionState] = {}
    growing: list[Order] = []
    for order in sorted(orders, key=lambda o: (o.created_at, o.order_id)):
        probe = probes.get(order.symbol)
        if probe is None:
            probe = probes[order.symbol] = PositionState(order.symbol)
            probe.quantity = positions.get(order.symbol, _ZERO)
        left = order.quantity - order.filled_quantity
        is_buy = order.side is Side.BUY
        if not probe.reduces(is_buy=is_buy, quantity=left):
            growing.append(order)
        elif is_buy:
            probe.open_buy += left
        else:
            probe.open_sell += left
    return growing
