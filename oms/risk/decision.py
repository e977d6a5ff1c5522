"""What the risk book answers: a decision, and the reservation an accepted order holds."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from oms.domain.reasons import Denial

# NamedTuples rather than frozen dataclasses: one of each is built for every accepted order, and
# a tuple is built several times faster while staying immutable and comparable by value.


class Reservation(NamedTuple):
    """Funds held for one open order: ``amount`` of ``asset`` taken out of available.

    ``protection_price`` is the worst price the order may fill at (its limit price, or for a
    MARKET order the collar edge on the tick grid); a BUY holds
    ``quantity * protection_price * (1 + fee_rate)`` of quote (rounded up to the quote precision),
    a SELL holds ``quantity`` of base.
    """

    order_id: str
    """The order the funds are held for."""
    account_id: str
    """Whose funds."""
    asset: str
    """Quote asset for a BUY, base asset for a SELL."""
    amount: Decimal
    """How much is held (never negative)."""
    protection_price: Decimal
    """The worst price the venue may fill the order at."""


class RiskDecision(NamedTuple):
    """The answer to one order: accepted with a reservation, or denied with every reason."""

    accepted: bool
    """True when the order passed every check and funds are reserved."""
    denials: tuple[Denial, ...]
    """Every rule the order broke (empty when accepted)."""
    reservation: Reservation | None
    """What accepting reserved (None when denied)."""
