"""Why an order is rejected: closed sets of reason codes, each risk denial with its numbers.

``RejectReason`` is what risk's checks deny; ``OrderCheckReason`` what the order process rejects
without a denial (the order fails the stateless validation, or risk could not decide on it).
``RejectionReason``, either of them, is what ``OrderRejected.reason`` and ``Order.reject_reason``
carry; the two sets share no value, so a stored or sent code names exactly one member.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias


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
    # Firm-wide caps across accounts and replicas (``oms.domain.global_limits``).
    GLOBAL_NOTIONAL_LIMIT = "GLOBAL_NOTIONAL_LIMIT"
    GLOBAL_POSITION_LIMIT = "GLOBAL_POSITION_LIMIT"
    GLOBAL_LIMITS_UNAVAILABLE = "GLOBAL_LIMITS_UNAVAILABLE"  # Redis did not answer: fail closed


class OrderCheckReason(StrEnum):
    """Why the order process rejects an order that no risk check denied.

    The validation codes are ``InvalidOrder``'s (``oms.domain.instruments`` and the order
    process's own checks); an unlisted instrument is risk's ``UNKNOWN_INSTRUMENT``.
    """

    INVALID_ORDER = "INVALID_ORDER"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    QUANTITY_NOT_MULTIPLE_OF_LOT = "QUANTITY_NOT_MULTIPLE_OF_LOT"
    INVALID_PRICE = "INVALID_PRICE"
    PRICE_NOT_MULTIPLE_OF_TICK = "PRICE_NOT_MULTIPLE_OF_TICK"
    PRICE_REQUIRED = "PRICE_REQUIRED"
    PRICE_NOT_ALLOWED = "PRICE_NOT_ALLOWED"
    RISK_ERROR = "RISK_ERROR"  # risk raised instead of deciding; the detail names its error
    # Why an amend is refused (``AmendRejected.reason``; risk's denials are ``RejectReason``s).
    QUANTITY_BELOW_FILLED = "QUANTITY_BELOW_FILLED"  # the new quantity is not above the filled
    ORDER_NOT_AMENDABLE = "ORDER_NOT_AMENDABLE"  # not a LIMIT order, or not open yet / any more
    AMEND_IN_PROGRESS = "AMEND_IN_PROGRESS"  # one amend at a time: the previous one is not done
    NOTHING_TO_AMEND = "NOTHING_TO_AMEND"  # neither price nor quantity differs
    # The terms of stops, expiry and post-only (``oms.domain.order_terms``).
    STOP_PRICE_REQUIRED = "STOP_PRICE_REQUIRED"
    STOP_PRICE_NOT_ALLOWED = "STOP_PRICE_NOT_ALLOWED"
    # A BUY stop at or below the last price, a SELL stop at or above it: it would trigger at once.
    STOP_PRICE_WRONG_SIDE = "STOP_PRICE_WRONG_SIDE"
    EXPIRE_AT_REQUIRED = "EXPIRE_AT_REQUIRED"
    EXPIRE_AT_NOT_ALLOWED = "EXPIRE_AT_NOT_ALLOWED"
    EXPIRE_AT_IN_PAST = "EXPIRE_AT_IN_PAST"
    INVALID_TIME_IN_FORCE = "INVALID_TIME_IN_FORCE"
    POST_ONLY_NOT_ALLOWED = "POST_ONLY_NOT_ALLOWED"
    POST_ONLY_WOULD_CROSS = "POST_ONLY_WOULD_CROSS"  # the venue: it would take liquidity
    # The venue: the symbol's market data stopped (no update for OMS_MARKET_DATA_STALE_S), so a
    # MARKET order would fill against a book that may no longer be the market.
    MARKET_DATA_STALE = "MARKET_DATA_STALE"
    # A network venue's refusals of a place (the port's RefusalReason codes), and its word that
    # it never had an order whose place was in doubt.
    VENUE_INSUFFICIENT_FUNDS = "VENUE_INSUFFICIENT_FUNDS"
    VENUE_INVALID_ORDER = "VENUE_INVALID_ORDER"
    VENUE_DUPLICATE_ORDER = "VENUE_DUPLICATE_ORDER"
    VENUE_UNKNOWN_SYMBOL = "VENUE_UNKNOWN_SYMBOL"
    VENUE_AUTHENTICATION = "VENUE_AUTHENTICATION"
    VENUE_REFUSED = "VENUE_REFUSED"
    VENUE_ORDER_NOT_FOUND = "VENUE_ORDER_NOT_FOUND"
    VENUE_AMEND_UNSUPPORTED = "VENUE_AMEND_UNSUPPORTED"  # no in-place amend (Binance spot)


RejectionReason: TypeAlias = RejectReason | OrderCheckReason
"""Every reason an order can be rejected for (``OrderRejected.reason``)."""

REJECTION_REASONS: tuple[RejectionReason, ...] = (*RejectReason, *OrderCheckReason)
"""Every rejection reason, risk's first, in declaration order."""

_BY_VALUE: dict[str, RejectionReason] = {reason.value: reason for reason in REJECTION_REASONS}


def rejection_reason(code: str) -> RejectionReason:
    """The rejection reason ``code`` names; ``ValueError`` when it names none."""
    found = _BY_VALUE.get(code)
    if found is None:
        raise ValueError(f"{code!r} is not a rejection reason")
    return found


def known_rejection_reason(code: str) -> RejectionReason | None:
    """The rejection reason ``code`` names, or None when it names none."""
    return _BY_VALUE.get(code)


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
