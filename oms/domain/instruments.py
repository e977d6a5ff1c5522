"""Listed instruments: a symbol, its base and quote assets, and the price and size grids.

An instrument also fixes the precision of its quote amounts (``quote_quantum``): reservations
are rounded up to it, and derived amounts (average prices, PnL) are shown at it
(``display_quote``). Display rounding never reaches the ledger: balances and bookings keep
every digit, and only what is serialized for people is rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal
from enum import StrEnum

from oms.domain.errors import InvalidOrder, UnknownInstrument

# Half-even, so that rounding many shown values does not lean one way; a precision as large as
# the decimal module allows, so that rounding an amount of any size never raises (the default
# context's 28 digits would refuse to write 10**27 to the cent).
_DISPLAY = Context(prec=MAX_PREC, rounding=ROUND_HALF_EVEN, Emax=MAX_EMAX, Emin=MIN_EMIN)


def display_quote(value: Decimal, quantum: Decimal) -> Decimal:
    """``value`` rounded half-even to ``quantum`` for display (a zero is never shown negative)."""
    shown = value.quantize(quantum, context=_DISPLAY)
    return shown.copy_abs() if shown.is_zero() else shown


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

    @property
    def quote_quantum(self) -> Decimal:
        """The precision of quote amounts: one unit of the tick size's last digit.

        A tick of ``0.01`` gives ``0.01``, a tick of ``0.05`` also ``0.01``, a tick of ``5`` gives
        ``1``: prices on the grid and amounts in the quote asset are written to that digit.
        """
        exponent = self.tick_size.as_tuple().exponent
        assert isinstance(exponent, int), "a tick size is a finite number"
        return Decimal(1).scaleb(exponent)

    def display_quote(self, value: Decimal) -> Decimal:
        """A derived quote amount (average price, PnL) rounded to ``quote_quantum`` for display."""
        return display_quote(value, self.quote_quantum)

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
