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
