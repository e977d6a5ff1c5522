"""Why the risk supervisor denies an order: one closed set of reason codes, each denial with its numbers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RejectReason(StrEnum):
    """The single source of truth for risk denial codes (``CATEGORY_CONDITION``)."""

    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    INSTRUMENT_NOT_TRADING = "INSTRUMENT_NOT_TRADING"
    QUANTITY_EXCEEDS_MAX_PER_ORDER = "QUANTITY_EXCEEDS_MAX_PER_ORDER"
    NOTIONAL_EXCEEDS_MAX_PER_ORDER = "NOTIONAL_EXCEEDS_MAX_PER_ORDER"
    NO_MARKET_PRICE = "NO_MARKET_PRICE"
    PRICE_OUTSIDE_COLLAR = "PRICE_OUTSIDE_COLLAR"
    POSITION_LIMIT_EXCEEDED = "POSITION_LIMIT_EXCEEDED"
    INSUFFICIENT_BUYING_POWER = "INSUFFICIENT_BUYING_POWER"
    DAILY_LOSS_LIMIT_REACHED = "DAILY_LOSS_LIMIT_REACHED"
    CONCENTRATION_LIMIT_EXCEEDED = "CONCENTRATION_LIMIT_EXCEEDED"
    VELOCITY_ORDERS_EXCEEDED = "VELOCITY_ORDERS_EXCEEDED"
    VELOCITY_NOTIONAL_EXCEEDED = "VELOCITY_NOTIONAL_EXCEEDED"
    KILL_SWITCH_ACCOUNT = "KILL_SWITCH_ACCOUNT"
    KILL_SWITCH_GLOBAL = "KILL_SWITCH_GLOBAL"
    REDUCE_ONLY = "REDUCE_ONLY"


@dataclass(frozen=True, slots=True)
class Denial:
    """One broken rule: its reason code and the figures that broke it, as ``(name, value)`` pairs."""

    reason: RejectReason
    details: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        """Render as ``CODE: key=value, key=value`` (just ``CODE`` when there are no figures)."""
        if not self.details:
            return str(self.reason)
        return f"{self.reason}: " + ", ".join(f"{key}={value}" for key, value in self.details)

    def detail(self, key: str) -> str | None:
        """The value of one figure, or None when the denial does not carry it."""
        for name, value in self.details:
            if name == key:
                return value
        return None


def deny(reason: RejectReason, **figures: object) -> Denial:
    """Build a denial, rendering each figure with ``str`` (Decimals keep their exact digits)."""
    return Denial(reason, tuple((key, str(value)) for key, value in figures.items()))
