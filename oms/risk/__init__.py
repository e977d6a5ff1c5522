"""Pre-trade risk: checks with reason codes, reservations, positions, PnL and a double-entry ledger.

Pure and synchronous: the supervisor actor (``oms.actors.supervisor``) owns one ``RiskBook``.
"""

from oms.domain.accounts import FEES, VENUE
from oms.risk.account import AccountSnapshot, Balance
from oms.risk.book import RiskBook
from oms.risk.checks import CHECKS, OrderContext
from oms.risk.decision import Reservation, RiskDecision
from oms.risk.ledger import LedgerEntry, Posting, imbalance, require_balanced
from oms.risk.positions import Position

__all__ = [
    "CHECKS",
    "FEES",
    "VENUE",
    "AccountSnapshot",
    "Balance",
    "LedgerEntry",
    "OrderContext",
    "Position",
    "Posting",
    "Reservation",
    "RiskBook",
    "RiskDecision",
    "imbalance",
    "require_balanced",
]
