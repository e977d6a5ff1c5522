"""The venue port: what the engine's venue side asks of an exchange, and the answers it gets.

An adapter (the ccxt one in ``oms.venue.ccxt_venue``, the fault-injecting one the tests use)
implements ``VenuePort``. Every call is a coroutine on the asyncio loop: the engine's dispatcher
thread never waits on the network, it tells a gateway, and the gateway's outcomes come back into
the engine as messages.

Every failure is one of two kinds, and the difference is the whole point of the port:

- ``VenueRefused``: the venue answered and said no (insufficient balance, unknown order, an
  invalid price or quantity, a duplicate client order id). Nothing happened at the venue; the
  order may be rejected (a place) or stay as it was (an amend, a cancel).
- ``VenueOutcomeUnknown``: the request may or may not have taken effect (a timeout, a 5xx, a
  dropped connection, a rate limit answered after the request was sent). The order goes
  IN_DOUBT and is resolved only by the venue's word: ``fetch_order`` by client order id, or the
  fills that arrive. A place is never sent twice.

Orders are named at the venue by *our* client order id (the oms ``order_id``, 26 characters of
Crockford base32, inside Binance's ``^[.A-Z:/a-z0-9_-]{1,36}$``), so a query needs nothing the
venue's answer might have carried. Symbols are oms symbols (``BTC-USDT``); the adapter maps them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.venue.model import VenueError


class AmendSupport(StrEnum):
    """What ``amend`` does at this venue."""

    NATIVE = "NATIVE"
    """The venue amends the order in place (same client order id, same queue rules as the
    venue's own amend)."""
    UNSUPPORTED = "UNSUPPORTED"
    """The venue has no amend: ``amend`` raises ``VenueRefused`` (``AMEND_UNSUPPORTED``). A
    cancel followed by a new place is *not* an amend (it loses the queue place, and a fill can
    land between the two), so the port never fakes one; the caller decides."""


class RefusalReason(StrEnum):
    """Why the venue said no: the closed set of ``VenueRefused.code`` values."""

    INSUFFICIENT_FUNDS = "VENUE_INSUFFICIENT_FUNDS"
    ORDER_NOT_FOUND = "VENUE_ORDER_NOT_FOUND"
    INVALID_ORDER = "VENUE_INVALID_ORDER"  # price, quantity, notional or filter refused
    DUPLICATE_ORDER = "VENUE_DUPLICATE_ORDER"  # the client order id is already in use
    UNKNOWN_SYMBOL = "VENUE_UNKNOWN_SYMBOL"
    AMEND_UNSUPPORTED = "VENUE_AMEND_UNSUPPORTED"
    NOT_CANCELLABLE = "VENUE_NOT_CANCELLABLE"  # already filled or cancelled at the venue
    AUTHENTICATION = "VENUE_AUTHENTICATION"  # keys refused: nothing was accepted
    REFUSED = "VENUE_REFUSED"  # any other definite no


class UnknownReason(StrEnum):
    """Why the outcome is unknown: the closed set of ``VenueOutcomeUnknown.code`` values."""

    TIMEOUT = "VENUE_TIMEOUT"
    UNAVAILABLE = "VENUE_UNAVAILABLE"  # 5xx, maintenance
    DISCONNECTED = "VENUE_DISCONNECTED"  # the connection broke
    RATE_LIMITED = "VENUE_RATE_LIMITED"  # 429/418 after the request was sent
    UNEXPECTED = "VENUE_UNEXPECTED"  # an answer we could not read


class VenueRequestError(VenueError):
    """A venue request failed; ``code`` is one of ``RefusalReason`` or ``UnknownReason``."""

    code = "VENUE_REQUEST_FAILED"


class VenueRefused(VenueRequestError):
    """The venue answered no: nothing changed there."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message, code=reason.value)
        self.reason = reason


class VenueOutcomeUnknown(VenueRequestError):
    """The request may or may not have taken effect: ask the venue before deciding anything."""

    def __init__(self, reason: UnknownReason, message: str) -> None:
        super().__init__(message, code=reason.value)
        self.reason = reason


class VenueOrderStatus(StrEnum):
    """An order's state as the venue reports it."""

    OPEN = "OPEN"  # resting (partially filled or not)
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"  # cancelled with or without fills (``filled`` says how much)
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"  # IOC/FOK remainder, GTD time, or the venue's own expiry


class PlaceRequest(NamedTuple):
    """One new order for the venue, named by our client order id."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None  # LIMIT and STOP_LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stop_price: Decimal | None = None


class AmendRequest(NamedTuple):
    """A new price and/or quantity for an open order (``None`` keeps the current one)."""

    client_order_id: str
    symbol: str
    price: Decimal | None = None
    quantity: Decimal | None = None


class VenueOrderState(NamedTuple):
    """The venue's word on one order."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    status: VenueOrderStatus
    quantity: Decimal
    filled: Decimal
    price: Decimal | None  # the limit price, ``None`` for a market order
    average_price: Decimal | None  # of what filled, ``None`` before any fill
    updated_at: float | None  # epoch seconds, when the venue says


class VenueTrade(NamedTuple):
    """One execution at the venue; ``trade_id`` is the venue's and makes booking idempotent."""

    trade_id: str
    venue_order_id: str
    client_order_id: str | None  # Binance's myTrades do not carry it: match by venue order id
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str | None
    executed_at: float  # epoch seconds


class InstrumentRules(NamedTuple):
    """The venue's trading rules for one symbol (Binance: PRICE_FILTER, LOT_SIZE, NOTIONAL)."""

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal
    min_notional: Decimal | None
    trading: bool


class VenuePort(ABC):
    """An exchange as the engine's venue side sees it. Every method runs on the asyncio loop."""

    @property
    @abstractmethod
    def amend_support(self) -> AmendSupport:
        """Whether ``amend`` can succeed here at all."""

    @abstractmethod
    async def open(self) -> None:
        """Connect (and load what the adapter needs, such as the venue's markets)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the port is not used after this."""

    @abstractmethod
    async def instrument_rules(self) -> Mapping[str, InstrumentRules]:
        """Tick, lot and minimum notional of every symbol the venue lists, by oms symbol."""

    @abstractmethod
    async def place(self, request: PlaceRequest) -> VenueOrderState:
        """Send a new order once. ``VenueOutcomeUnknown`` means: query it, never send again."""

    @abstractmethod
    async def amend(self, request: AmendRequest) -> VenueOrderState:
        """Amend an open order in place, or ``VenueRefused`` (``AMEND_UNSUPPORTED``)."""

    @abstractmethod
    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrderState:
        """Cancel an open order; the answer carries what had filled by then."""

    @abstractmethod
    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrderState:
        """The venue's current word on one order, or ``VenueRefused`` (``ORDER_NOT_FOUND``)."""

    @abstractmethod
    async def open_orders(self, symbol: str | None = None) -> Sequence[VenueOrderState]:
        """Every order open at the venue (for one symbol, or all)."""

    @abstractmethod
    async def my_trades(self, symbol: str, since: float | None = None) -> Sequence[VenueTrade]:
        """Our executions on ``symbol`` from ``since`` (epoch seconds) on, oldest first."""
