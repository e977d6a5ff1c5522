"""Per-account risk limits and the kill-switch state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

_NO_OVERRIDES: Mapping[str, Decimal] = MappingProxyType({})


def _no_overrides() -> Mapping[str, Decimal]:
    return _NO_OVERRIDES


class TradingState(StrEnum):
    """The kill switch: ACTIVE, HALTED (nothing new), REDUCING (only orders that shrink a position)."""

    ACTIVE = "ACTIVE"
    HALTED = "HALTED"
    REDUCING = "REDUCING"


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """An account's limits. Every limit is optional: None switches that check off.

    Quantities are in the base asset, notionals and losses in the quote asset, fractions are
    Decimals such as ``Decimal("0.10")``. Base quantities differ by orders of magnitude between
    symbols, so the quantity limits take a global value plus per-symbol overrides.
    """

    max_order_quantity: Decimal | None = None
    """Largest quantity of one order, for symbols without an override."""
    symbol_max_order_quantity: Mapping[str, Decimal] = field(
        default_factory=_no_overrides, hash=False
    )
    """Per-symbol override of ``max_order_quantity``."""
    max_order_notional: Decimal | None = None
    """Largest quantity * price of one order (MARKET orders: at the reference price)."""
    price_collar: Decimal | None = None
    """Largest distance of a LIMIT price from the reference price, as a fraction of it.

    Also the band that gives a MARKET order its protection price; with the collar off MARKET
    orders use ``MARKET_PROTECTION_FALLBACK``.
    """
    max_position: Decimal | None = None
    """Largest absolute position (base quantity) per symbol, counting open orders."""
    symbol_max_position: Mapping[str, Decimal] = field(default_factory=_no_overrides, hash=False)
    """Per-symbol override of ``max_position``."""
    daily_loss_limit: Decimal | None = None
    """Largest loss (positive number) since the day's start before only reducing orders pass."""
    max_concentration: Decimal | None = None
    """Largest share of the account's gross exposure one symbol may take (fraction)."""
    velocity_window_s: float | None = None
    """Length of the sliding window the two velocity limits count over, in seconds.

    Orders are counted only while a velocity limit is on (counting costs time on every accept),
    so a limit switched on later starts from an empty window.
    """
    max_orders_per_window: int | None = None
    """Most orders accepted within one window."""
    max_notional_per_window: Decimal | None = None
    """Most notional accepted within one window."""

    def order_quantity_limit(self, symbol: str) -> Decimal | None:
        """The per-order quantity maximum that applies to ``symbol``."""
        return self.symbol_max_order_quantity.get(symbol, self.max_order_quantity)

    def position_limit(self, symbol: str) -> Decimal | None:
        """The absolute position maximum that applies to ``symbol``."""
        return self.symbol_max_position.get(symbol, self.max_position)

    @property
    def tracks_velocity(self) -> bool:
        """True when a velocity limit is on, so accepted orders must be counted."""
        return self.velocity_window_s is not None and (
            self.max_orders_per_window is not None or self.max_notional_per_window is not None
        )


MARKET_PROTECTION_FALLBACK = Decimal("0.10")
"""Band of a MARKET order's protection price when the account's price collar is off."""

DEFAULT_LIMITS = RiskLimits(
    # A fat-finger band and a per-order ceiling are safe for any account; position, loss,
    # concentration and velocity depend on the account's size and strategy, so they start off.
    max_order_notional=Decimal("1000000"),
    price_collar=Decimal("0.10"),
)
"""Limits of an account opened without its own."""
