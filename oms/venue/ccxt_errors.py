"""What a ccxt exception means for an order: the venue refused it, or the outcome is unknown.

ccxt turns an exchange's error payload into one of its exception classes (Binance's
``{"code":-2010,"msg":"Account has insufficient balance for requested action."}`` becomes
``InsufficientFunds``, ``-2013`` becomes ``OrderNotFound``, an HTTP 429 or 418
``DDoSProtection``, a read that timed out ``RequestTimeout``, a 5xx ``ExchangeNotAvailable``).
The table below reads them most specific first, because ccxt's classes nest (``OrderNotFound``
is an ``InvalidOrder``; ``RateLimitExceeded`` and ``RequestTimeout`` are ``NetworkError``s).

The rule when in doubt is *unknown*: a refusal lets the caller reject the order and release its
funds, so only an answer that can only mean "nothing happened" is a refusal. A rate limit is
unknown (the request had left; Binance documents a 429 as refused, but a 418 ban or a proxy's 429
need not be), and so is an ``ExchangeError`` with a code ccxt does not know: the query by client
order id that resolves it costs one request.
"""

from __future__ import annotations

import ccxt.async_support as ccxt

from oms.venue.port import (
    RefusalReason,
    UnknownReason,
    VenueOutcomeUnknown,
    VenueRefused,
    VenueRequestError,
)

_R = RefusalReason
_U = UnknownReason

# Most specific first: the first class the error is an instance of decides.
_MEANINGS: tuple[tuple[type[BaseException], RefusalReason | UnknownReason], ...] = (
    (ccxt.InsufficientFunds, _R.INSUFFICIENT_FUNDS),
    (ccxt.OrderNotFound, _R.ORDER_NOT_FOUND),
    (ccxt.DuplicateOrderId, _R.DUPLICATE_ORDER),
    (ccxt.BadSymbol, _R.UNKNOWN_SYMBOL),
    (ccxt.InvalidOrder, _R.INVALID_ORDER),  # -1013 filters, -2010 other refusals, post-only
    (ccxt.AuthenticationError, _R.AUTHENTICATION),  # -2014/-2015/-1022: nothing was accepted
    (ccxt.NotSupported, _R.REFUSED),
    (ccxt.BadRequest, _R.REFUSED),  # malformed: the venue did not act on it
    (ccxt.OperationRejected, _R.REFUSED),  # -2011 cancel rejected, market closed
    # Binance's -1021: the timestamp is outside recvWindow, so the venue refused to act on it
    # (ccxt files it under NetworkError because retrying with a fresh clock may work).
    (ccxt.InvalidNonce, _R.REFUSED),
    (ccxt.RateLimitExceeded, _U.RATE_LIMITED),
    (ccxt.DDoSProtection, _U.RATE_LIMITED),
    (ccxt.RequestTimeout, _U.TIMEOUT),
    (ccxt.ExchangeNotAvailable, _U.UNAVAILABLE),  # 5xx, maintenance
    (ccxt.NetworkError, _U.DISCONNECTED),
    (ccxt.BadResponse, _U.UNEXPECTED),  # -1007 "execution status unknown" lands here
    (ccxt.OperationFailed, _U.UNAVAILABLE),  # -1001 "Internal error; unable to process"
    (ccxt.ExchangeError, _U.UNEXPECTED),  # a code ccxt does not know: ask, do not guess
    (ccxt.BaseError, _U.UNEXPECTED),
    (TimeoutError, _U.TIMEOUT),  # asyncio.TimeoutError is this one since 3.11
)


def venue_error(error: BaseException) -> VenueRequestError:
    """The port's error for ``error`` raised by a ccxt call: a refusal or an unknown outcome."""
    message = f"{type(error).__name__}: {error}"
    for kind, reason in _MEANINGS:
        if isinstance(error, kind):
            if isinstance(reason, RefusalReason):
                return VenueRefused(reason, message)
            return VenueOutcomeUnknown(reason, message)
    return VenueOutcomeUnknown(UnknownReason.UNEXPECTED, message)
