"""Typed domain errors: each carries a machine-readable reason code."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises; ``code`` is stable, the message is for people."""

    code: str = "DOMAIN_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidOrder(DomainError):
    """An order that can never be valid, whatever the state of the market or the account."""

    code = "INVALID_ORDER"


class UnknownInstrument(InvalidOrder):
    """The symbol is not a listed instrument."""

    code = "UNKNOWN_INSTRUMENT"


class RiskError(DomainError):
    """Base of every error the risk book raises."""

    code = "RISK_ERROR"


class AccountExists(RiskError):
    """``open_account`` for an id that already has an account (or names a ledger account)."""

    code = "ACCOUNT_EXISTS"


class UnknownAccount(RiskError):
    """An operation named an account the book does not hold."""

    code = "UNKNOWN_ACCOUNT"


class UnknownOrder(DomainError):
    """No order has this id: a command or fill for an order nobody holds (or the risk book never
    accepted, or has long forgotten)."""

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


class StoreError(DomainError):
    """The store could not do what was asked."""

    code = "STORE_ERROR"


class StoreUnavailable(StoreError):
    """The store did not answer in time (or is closed): a read or a durability wait gave up.

    The API answers it with 503 and ``Retry-After``; nothing was changed by the attempt.
    """

    code = "STORE_UNAVAILABLE"


class StoreClosed(StoreUnavailable):
    """The store is not open (before ``open`` or after ``close``): retrying will not help."""

    code = "STORE_CLOSED"


class EngineUnavailable(DomainError):
    """The engine cannot answer: it is stopping or stopped, or the actor asked is gone.

    The API answers it with 503 (``engine``); nothing was changed by the attempt.
    """

    code = "ENGINE_UNAVAILABLE"
