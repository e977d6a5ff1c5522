"""Listed instruments: a symbol, its base and quote assets, and the price and size grids."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from oms.domain.errors import InvalidOrder, UnknownInstrument


class InstrumentStatus(StrEnum):
    """Whether an instrument takes new orders."""

    TRADING = "TRADING"
    HALTED = "HALTED"


@dataclass(frozen=True, slots=True)
class Instrument:
    """A spot pair such as BTC-USD: quantities are in ``base``, prices in ``quote`` per ``base``."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    status: InstrumentStatus = InstrumentStatus.TRADING

    def check_quantity(self, quantity: Decimal) -> None:
        """Refuse a quantity that is not a positive multiple of the lot size."""
        if not quantity.is_finite() or quantity <= 0:
            raise InvalidOrder("quantity must be a positive number", code="INVALID_QUANTITY")
        if quantity % self.lot_size != 0:
            raise InvalidOrder(
                f"quantity {quantity} is not a multiple of lot size {self.lot_size}",
                code="QUANTITY_NOT_MULTIPLE_OF_LOT",
            )

    def check_price(self, price: Decimal) -> None:
        """Refuse a price that is not a positive multiple of the tick size."""
        if not price.is_finite() or price <= 0:
            raise InvalidOrder("price must be a positive number", code="INVALID_PRICE")
        if price % self.tick_size != 0:
            raise InvalidOrder(
                f"price {price} is not a multiple of tick size {self.tick_size}",
                code="PRICE_NOT_MULTIPLE_OF_TICK",
            )


DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("BTC-USD", "BTC", "USD", Decimal("0.01"), Decimal("0.0001")),
    Instrument("ETH-USD", "ETH", "USD", Decimal("0.01"), Decimal("0.001")),
    Instrument("SOL-USD", "SOL", "USD", Decimal("0.001"), Decimal("0.01")),
)


def instrument_map(instruments: tuple[Instrument, ...]) -> dict[str, Instrument]:
    """Index instruments by symbol."""
    return {instrument.symbol: instrument for instrument in instruments}


def find_instrument(instruments: dict[str, Instrument], symbol: str) -> Instrument:
    """The listed instrument for ``symbol``, or ``UnknownInstrument``."""
    try:
        return instruments[symbol]
    except KeyError:
        raise UnknownInstrument(f"{symbol!r} is not a listed instrument") from None
