"""Pre-trade risk: checks with reason codes, reservations, positions, PnL and a double-entry ledger.

Pure and synchronous: the supervisor actor (``oms.risk.supervisor``) owns one ``RiskBook``.
"""

from oms.domain.accounts import FEES, VENUE
from oms.risk.account import AccountSnapshot, Balance
from oms.risk.book import RiskBook
from oms.risk.checks import CHECKS, OrderContext
from oms.risk.decision import Reservation, RiskDecision
from oms.risk.errors import (
    AccountExists,
    InsufficientFunds,
    InvalidFill,
    RiskError,
    UnbalancedEntry,
    UnknownAccount,
    UnknownOrder,
)
from oms.risk.ledger import LedgerEntry, Posting, imbalance, require_balanced
from oms.risk.limits import DEFAULT_LIMITS, MARKET_PROTECTION_FALLBACK, RiskLimits, TradingState
from oms.risk.positions import Position
from oms.risk.reasons import Denial, RejectReason

__all__ = [
    "CHECKS",
    "DEFAULT_LIMITS",
    "FEES",
    "MARKET_PROTECTION_FALLBACK",
    "VENUE",
    "AccountExists",
    "AccountSnapshot",
    "Balance",
    "Denial",
    "InsufficientFunds",
    "InvalidFill",
    "LedgerEntry",
    "OrderContext",
    "Position",
    "Posting",
    "RejectReason",
    "Reservation",
    "RiskBook",
    "RiskDecision",
    "RiskError",
    "RiskLimits",
    "TradingState",
    "UnbalancedEntry",
    "UnknownAccount",
    "UnknownOrder",
    "imbalance",
    "require_balanced",
]
