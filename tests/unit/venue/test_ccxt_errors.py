"""ccxt's exceptions, as Binance's payloads become them, mapped to refused or unknown."""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from oms.venue.ccxt_errors import venue_error
from oms.venue.port import (
    RefusalReason,
    UnknownReason,
    VenueOutcomeUnknown,
    VenueRefused,
)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        # {"code":-2010,"msg":"Account has insufficient balance for requested action."}
        (ccxt.InsufficientFunds("binance -2010"), RefusalReason.INSUFFICIENT_FUNDS),
        # {"code":-2013,"msg":"Order does not exist."}
        (ccxt.OrderNotFound("binance -2013"), RefusalReason.ORDER_NOT_FOUND),
        (ccxt.DuplicateOrderId("duplicate"), RefusalReason.DUPLICATE_ORDER),
        (ccxt.BadSymbol("binance -1121"), RefusalReason.UNKNOWN_SYMBOL),
        (ccxt.InvalidOrder("binance LOT_SIZE"), RefusalReason.INVALID_ORDER),
        (ccxt.OrderImmediatelyFillable("would take"), RefusalReason.INVALID_ORDER),
        (ccxt.AuthenticationError("binance -2015"), RefusalReason.AUTHENTICATION),
        (ccxt.InvalidNonce("binance -1021"), RefusalReason.REFUSED),
        (ccxt.OperationRejected("binance -2011"), RefusalReason.REFUSED),
    ],
)
def test_venue_error_when_the_venue_said_no_then_refused(
    error: Exception, reason: RefusalReason
) -> None:
    mapped = venue_error(error)

    assert isinstance(mapped, VenueRefused)
    assert mapped.reason is reason
    assert mapped.code == reason.value


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        # HTTP 429 {"code":-1003,...}: ccxt raises DDoSProtection for 429 and 418.
        (ccxt.DDoSProtection("binance 429"), UnknownReason.RATE_LIMITED),
        (ccxt.RateLimitExceeded("binance -1003"), UnknownReason.RATE_LIMITED),
        (ccxt.RequestTimeout("read timed out"), UnknownReason.TIMEOUT),
        (TimeoutError(), UnknownReason.TIMEOUT),
        (ccxt.ExchangeNotAvailable("binance 503"), UnknownReason.UNAVAILABLE),
        (ccxt.OnMaintenance("maintenance"), UnknownReason.UNAVAILABLE),
        (ccxt.NetworkError("connection reset"), UnknownReason.DISCONNECTED),
        (ccxt.OperationFailed("binance -1001 Internal error"), UnknownReason.UNAVAILABLE),
        # {"code":-1007,"msg":"Timeout waiting for response from backend server. Send status
        # unknown; execution status unknown."}
        (ccxt.BadResponse("binance -1007"), UnknownReason.UNEXPECTED),
        (ccxt.ExchangeError("binance -9999"), UnknownReason.UNEXPECTED),
        (ValueError("not ccxt"), UnknownReason.UNEXPECTED),
    ],
)
def test_venue_error_when_the_outcome_may_have_happened_then_unknown(
    error: BaseException, reason: UnknownReason
) -> None:
    mapped = venue_error(error)

    assert isinstance(mapped, VenueOutcomeUnknown)
    assert mapped.reason is reason
    assert mapped.code == reason.value
