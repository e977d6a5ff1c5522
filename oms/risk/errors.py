"""Typed errors of the risk book: misuse or broken invariants, never a denial (denials are values)."""

from __future__ import annotations

from oms.domain.errors import DomainError


class RiskError(DomainError):
    """Base of every error the risk book raises."""

    code = "RISK_ERROR"


class AccountExists(RiskError):
    """``open_account`` for an id that already has an account (or names a ledger account)."""

    code = "ACCOUNT_EXISTS"


class UnknownAccount(RiskError):
    """An operation named an account the book does not hold."""

    code = "UNKNOWN_ACCOUNT"


class UnknownOrder(RiskError):
    """A fill for an order the book never accepted (or has long forgotten)."""

    code = "UNKNOWN_ORDER"


class InvalidFill(RiskError):
    """A fill with a non-positive quantity or price, or a negative fee."""

    code = "INVALID_FILL"


class InsufficientFunds(RiskError):
    """Booking would drive an account's available balance below zero; nothing was booked."""

    code = "INSUFFICIENT_FUNDS"


class UnbalancedEntry(RiskError):
    """A ledger entry whose postings do not sum to zero per asset: a bug, never booked."""

    code = "UNBALANCED_ENTRY"
