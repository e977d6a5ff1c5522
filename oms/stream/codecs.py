"""What travels on the topics, as JSON (orjson), and how a record that cannot be read is refused.

Every amount is a JSON *string* holding a plain decimal (``"0.5"``, ``"30000.00"``); a JSON number
for an amount is refused, so no amount ever passes through a float. Timestamps are JSON numbers
of epoch seconds. Enum values are exact upper case. Unknown fields are refused, as at the REST door.

``orders`` (key: ``account_id`` as UTF-8; value: one command, told apart by ``type``). REST
produces exactly this, and any other producer may too::

    {"type": "PlaceOrder", "order_id": "o-42", "account_id": "acct-1", "symbol": "BTC-USD",
     "side": "BUY", "order_type": "LIMIT", "quantity": "0.5", "price": "30000.00",
     "time_in_force": "GTC", "command_id": "place:o-42", "created_at": 1767225600.25}

    {"type": "PlaceOrder", "client_order_id": "my-42", "account_id": "acct-1",
     "symbol": "BTC-USD", "side": "SELL", "order_type": "MARKET", "quantity": "0.5"}

    {"type": "CancelOrder", "order_id": "o-42", "account_id": "acct-1",
     "command_id": "cancel:o-42", "requested_at": 1767225601.0}

    {"type": "AmendOrder", "order_id": "o-42", "account_id": "acct-1", "quantity": "0.8",
     "price": "29950.00", "command_id": "amend:a-1", "requested_at": 1767225601.5}

    {"type": "CancelAll", "account_id": "acct-1", "symbol": "BTC-USD",
     "command_id": "cancel-all:c-1", "requested_at": 1767225602.0}

  Required for ``PlaceOrder``: ``account_id``, ``order_id`` or ``client_order_id`` (or both),
  ``symbol`` (a listed instrument), ``side`` (BUY/SELL), ``order_type`` (MARKET/LIMIT),
  ``quantity`` (a multiple of the lot size), and ``price`` for a LIMIT order only (a multiple of
  the tick size). ``time_in_force`` (GTC/IOC/FOK) defaults to GTC for LIMIT and IOC for MARKET
  (a MARKET order cannot be GTC); ``command_id`` to ``place:<order_id>``; ``created_at`` to the
  record's Kafka timestamp (so a replayed record decodes the same).
  A ``client_order_id`` names the account's order, as over REST: the order id is derived from
  it (``oms.domain.order_ids.client_order_id_order(account_id, client_order_id)``) when the
  record has none, and a record whose ``order_id`` differs is dead-lettered
  (``ORDER_ID_MISMATCH``), so one client order id is one order whichever path placed it.
  Without a ``client_order_id`` (or with it equal to ``order_id``) the order id is the
  producer's and the client order id defaults to it. Placing the same order id twice changes
  nothing (replay is harmless).
  For ``CancelOrder``: ``order_id`` and ``account_id``; ``command_id`` defaults to
  ``cancel:<order_id>``, ``requested_at`` to the record's timestamp.
  For ``AmendOrder``: ``order_id``, ``account_id``, ``command_id`` (each amend is its own: no
  default) and ``quantity`` (the new whole quantity, filled part included) and/or ``price``;
  ``requested_at`` defaults to the record's timestamp. Grid and state checks are the order's:
  an amend it refuses is an ``AmendRejected`` event with its reason, not a dead letter.
  For ``CancelAll``: ``account_id`` and ``command_id``; ``symbol`` (only that symbol's orders)
  is optional, ``requested_at`` defaults to the record's timestamp. Each open order of the
  account gets a cancel whose id derives from the command id (a replay changes nothing).
  A record's ``request_id`` header (printable ASCII, at most 128 characters) names the request
  it answers: it goes on the command, on the events the command causes and on the log lines
  written while it is handled (REST's bus sets it to the HTTP request's ``X-Request-ID``). A
  record without one is named after itself: ``<topic>/<partition>/<offset>``.

``executions`` (key: ``account_id``) — one fill from a venue or gateway; ``type`` may be omitted::

    {"type": "ApplyFill", "execution_id": "x-9", "order_id": "o-42", "account_id": "acct-1",
     "quantity": "0.2", "price": "29999.50", "fee": "0.01", "executed_at": 1767225602.0}

  ``fee`` (quote asset, may be ``"0"``) defaults to ``"0"``; ``executed_at`` to the record's
  timestamp. The execution id makes a repeated execution harmless.

``prices`` (key: ``symbol``) — ``oms.marketdata.Tick.to_dict()``: ``symbol``, ``last_price``,
``best_bid``, ``best_ask``, ``bids``/``asks`` (lists of ``{"price", "quantity"}``), ``ts``.

``order-events`` (key: ``account_id``) — one state change: ``type`` (the event's class name:
OrderPlaced, OrderAccepted, OrderRejected, OrderFilled, OrderCancelled, OrderSettled,
OrderAmended, AmendRejected),
``order_id``, ``account_id``, ``sequence``, ``command_id``, ``at`` and the event's own fields.

``risk-events`` (key: ``account_id``, empty for global) — ``type`` (ORDER_REJECTED,
KILL_SWITCH, LIMITS, RECONCILIATION), ``account_id``, ``order_id``, ``reason``, ``detail``, ``at``.

A record that cannot be read raises ``DecodeError`` with a ``Reason`` code; the agents put such
records on ``<topic>.dlq`` with that reason and go on.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

import orjson

from oms.codec import (
    EVENT_TYPES,
    CodecError,
    InvalidAmount,
    balances_to_dict,
    decimal_text,
    event_from_dict,
    event_to_dict,
    limits_from_dict,
    limits_to_dict,
    parse_amount,
)
from oms.domain.accounts import IDENTIFIER, is_reserved
from oms.domain.commands import (
    AmendOrder,
    ApplyFill,
    CancelAll,
    CancelOrder,
    OpenAccount,
    PlaceOrder,
    SetLimits,
    SetTradingState,
    new_place_order,
)
from oms.domain.enums import OrderType, Side, TimeInForce, by_name
from oms.domain.errors import DomainError
from oms.domain.events import (
    CancelReason,
    OrderEvent,
    OrderRejected,
)
from oms.domain.instruments import Instrument, InstrumentStatus
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.order_ids import client_order_id_order
from oms.domain.order_terms import PRICED, term_problems
from oms.marketdata import Tick
from oms.marketdata.tick import InvalidTick

MAX_RECORD_BYTES = 64 * 1024


class Reason(StrEnum):
    """Why a record was refused: the code that goes with it to the dead-letter topic."""

    MALFORMED_JSON = "MALFORMED_JSON"
    TOO_LARGE = "TOO_LARGE"
    NOT_AN_OBJECT = "NOT_AN_OBJECT"
    UNKNOWN_COMMAND = "UNKNOWN_COMMAND"
    MISSING_FIELD = "MISSING_FIELD"
    UNKNOWN_FIELD = "UNKNOWN_FIELD"
    INVALID_FIELD = "INVALID_FIELD"
    ORDER_ID_MISMATCH = "ORDER_ID_MISMATCH"
    INVALID_ENUM = "INVALID_ENUM"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    SYMBOL_NOT_TRADING = "SYMBOL_NOT_TRADING"
    QUANTITY_NOT_MULTIPLE_OF_LOT = "QUANTITY_NOT_MULTIPLE_OF_LOT"
    PRICE_NOT_MULTIPLE_OF_TICK = "PRICE_NOT_MULTIPLE_OF_TICK"
    PRICE_REQUIRED = "PRICE_REQUIRED"
    PRICE_NOT_ALLOWED = "PRICE_NOT_ALLOWED"
    INVALID_TIME_IN_FORCE = "INVALID_TIME_IN_FORCE"
    INVALID_TICK = "INVALID_TICK"
    RESERVED_ACCOUNT_ID = "RESERVED_ACCOUNT_ID"


class DecodeError(DomainError):
    """A record that is not a valid message of its topic; ``code`` is a ``Reason``."""

    code = "DECODE_ERROR"

    def __init__(self, reason: Reason, message: str, field: str | None = None) -> None:
        super().__init__(message, code=reason.value)
        self.reason = reason
        self.field = field


Command = PlaceOrder | CancelOrder | ApplyFill | AmendOrder | CancelAll


# -- reading helpers ---------------------------------------------------------------------------


def loads_object(raw: bytes | None) -> dict[str, Any]:
    """Parse one record's value as a JSON object, or refuse it."""
    if raw is None:
        raise DecodeError(Reason.MALFORMED_JSON, "the record has no value")
    if len(raw) > MAX_RECORD_BYTES:
        raise DecodeError(Reason.TOO_LARGE, f"{len(raw)} bytes > {MAX_RECORD_BYTES}")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(Reason.MALFORMED_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DecodeError(
            Reason.NOT_AN_OBJECT, f"expected a JSON object, got {type(value).__name__}"
        )
    return value


def _check_fields(data: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise DecodeError(
            Reason.UNKNOWN_FIELD, f"unknown field(s): {', '.join(unknown)}", unknown[0]
        )


def _required(data: Mapping[str, Any], name: str) -> Any:
    value = data.get(name)
    if value is None:
        raise DecodeError(Reason.MISSING_FIELD, f"{name} is required", name)
    return value


def _identifier(data: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name)
    if value is None:
        if default is None:
            raise DecodeError(Reason.MISSING_FIELD, f"{name} is required", name)
        return default
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise DecodeError(
            Reason.INVALID_FIELD,
            f"{name} must be 1-64 characters: letters, digits, '.', '_', ':', '-'",
            name,
        )
    return value


_E = TypeVar("_E", Side, OrderType, TimeInForce, CancelReason)


def _enum(data: Mapping[str, Any], name: str, enum: type[_E], default: _E | None = None) -> _E:
    value = data.get(name)
    if value is None:
        if default is None:
            raise DecodeError(Reason.MISSING_FIELD, f"{name} is required", name)
        return default
    member = by_name(enum).get(value) if isinstance(value, str) else None
    if member is None:
        allowed = ", ".join(by_name(enum))
        raise DecodeError(Reason.INVALID_ENUM, f"{name} must be one of {allowed}", name)
    return member


def _amount(data: Mapping[str, Any], name: str, *, zero_ok: bool = False) -> Decimal:
    return _parse_amount(_required(data, name), name, zero_ok=zero_ok)


def _parse_amount(value: object, name: str, *, zero_ok: bool = False) -> Decimal:
    """``oms.codec.parse_amount`` (the REST door's grammar too), refused as ``INVALID_AMOUNT``."""
    try:
        return parse_amount(value, zero_ok=zero_ok)
    except InvalidAmount as exc:
        raise DecodeError(Reason.INVALID_AMOUNT, f"{name} {exc}", name) from None


def _timestamp(data: Mapping[str, Any], name: str, default: float | None) -> float:
    value = data.get(name)
    if value is None:
        if default is None:
            raise DecodeError(Reason.MISSING_FIELD, f"{name} is required", name)
        return default
    # bool is an int: refuse it so that `true` never becomes a timestamp.
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise DecodeError(Reason.INVALID_FIELD, f"{name} must be epoch seconds", name)
    return float(value)


def _text(data: Mapping[str, Any], name: str) -> str:
    value = _required(data, name)
    if not isinstance(value, str):
        raise DecodeError(Reason.INVALID_FIELD, f"{name} must be a string", name)
    return value


# -- orders ------------------------------------------------------------------------------------

PLACE_ORDER = "PlaceOrder"
CANCEL_ORDER = "CancelOrder"
AMEND_ORDER = "AmendOrder"
CANCEL_ALL = "CancelAll"
APPLY_FILL = "ApplyFill"

_PLACE_FIELDS = frozenset({
    "type", "command_id", "order_id", "client_order_id", "account_id", "symbol", "side",
    "order_type", "quantity", "price", "time_in_force", "created_at",
    "stop_price", "expire_at", "post_only",
})  # fmt: skip
_CANCEL_FIELDS = frozenset({"type", "command_id", "order_id", "account_id", "requested_at"})
_CANCEL_ALL_FIELDS = frozenset({"type", "command_id", "account_id", "symbol", "requested_at"})
_AMEND_FIELDS = frozenset({
    "type", "command_id", "order_id", "account_id", "quantity", "price", "requested_at",
})  # fmt: skip
_FILL_FIELDS = frozenset({
    "type", "execution_id", "order_id", "account_id", "quantity", "price", "fee", "executed_at",
})  # fmt: skip


def encode_command(command: Command) -> bytes:
    """The record value of a command (``orders`` for place/cancel, ``executions`` for fills)."""
    if isinstance(command, PlaceOrder):
        place = {
            "type": PLACE_ORDER,
            "command_id": command.command_id,
            "order_id": command.order_id,
            "client_order_id": command.client_order_id,
            "account_id": command.account_id,
            "symbol": command.symbol,
            "side": command.side.value,
            "order_type": command.type.value,
            "quantity": str(command.quantity),
            "price": decimal_text(command.price),
            "time_in_force": command.time_in_force.value,
            "created_at": command.created_at,
        }
        # Written only when set: a plain order's record is as it was before them.
        if command.stop_price is not None:
            place["stop_price"] = str(command.stop_price)
        if command.expire_at is not None:
            place["expire_at"] = command.expire_at
        if command.post_only:
            place["post_only"] = True
        return orjson.dumps(place)
    if isinstance(command, CancelOrder):
        return orjson.dumps({
            "type": CANCEL_ORDER,
            "command_id": command.command_id,
            "order_id": command.order_id,
            "account_id": command.account_id,
            "requested_at": command.requested_at,
        })  # fmt: skip
    if isinstance(command, CancelAll):
        return orjson.dumps({
            "type": CANCEL_ALL,
            "command_id": command.command_id,
            "account_id": command.account_id,
            "symbol": command.symbol,
            "requested_at": command.requested_at,
        })  # fmt: skip
    if isinstance(command, AmendOrder):
        return orjson.dumps({
            "type": AMEND_ORDER,
            "command_id": command.command_id,
            "order_id": command.order_id,
            "account_id": command.account_id,
            "quantity": decimal_text(command.quantity),
            "price": decimal_text(command.price),
            "requested_at": command.requested_at,
        })  # fmt: skip
    return orjson.dumps({
        "type": APPLY_FILL,
        "execution_id": command.command_id,
        "order_id": command.order_id,
        "account_id": command.account_id,
        "quantity": str(command.quantity),
        "price": str(command.price),
        "fee": str(command.fee),
        "executed_at": command.executed_at,
    })  # fmt: skip


# -- account commands (on ``orders``, to the replica that owns the account) ---------------------

OPEN_ACCOUNT = "OpenAccount"
SET_LIMITS = "SetLimits"
SET_TRADING_STATE = "SetTradingState"
AccountCommand = OpenAccount | SetLimits | SetTradingState
_ACCOUNT_COMMANDS = (OPEN_ACCOUNT, SET_LIMITS, SET_TRADING_STATE)
_OPEN_ACCOUNT_FIELDS = frozenset({"type", "account_id", "balances", "limits"})
_SET_LIMITS_FIELDS = frozenset({"type", "account_id", "limits"})
_SET_TRADING_STATE_FIELDS = frozenset({"type", "account_id", "state"})


def encode_account_command(command: AccountCommand) -> bytes:
    """The record value of an account command on ``orders``: an opening, new limits or a kill
    switch, already recorded in MongoDB, for the engine of the replica that owns the account."""
    if isinstance(command, OpenAccount):
        limits = command.limits
        return orjson.dumps({
            "type": OPEN_ACCOUNT,
            "account_id": command.account_id,
            "balances": balances_to_dict(command.balances),
            "limits": None if limits is None else limits_to_dict(limits),
        })  # fmt: skip
    if isinstance(command, SetLimits):
        return orjson.dumps({
            "type": SET_LIMITS,
            "account_id": command.account_id,
            "limits": limits_to_dict(command.limits),
        })  # fmt: skip
    return orjson.dumps({
        "type": SET_TRADING_STATE,
        "account_id": command.account_id,  # None: the global switch
        "state": command.state.value,
    })  # fmt: skip


def _account(data: Mapping[str, Any]) -> str:
    """The account an account command names: required, and one a client may hold (an id the
    system keeps for itself, such as the ledger's ``VENUE``, is refused with its reason)."""
    account_id = _identifier(data, "account_id")
    if is_reserved(account_id):
        raise DecodeError(
            Reason.RESERVED_ACCOUNT_ID,
            f"account_id {account_id!r} is reserved by the system",
            "account_id",
        )
    return account_id


def _account_command(data: Mapping[str, Any], kind: str) -> AccountCommand:
    if kind == OPEN_ACCOUNT:
        _check_fields(data, _OPEN_ACCOUNT_FIELDS)
        account_id = _account(data)
        raw = _required(data, "balances")
        if not isinstance(raw, dict):
            raise DecodeError(Reason.INVALID_FIELD, "balances must be an object", "balances")
        balances = {  # JSON object keys are strings; amounts as the REST door reads them
            asset: _parse_amount(amount, f"balances.{asset}", zero_ok=True)
            for asset, amount in raw.items()
        }
        return OpenAccount(account_id, balances, _limits(data, required=False))
    if kind == SET_LIMITS:
        _check_fields(data, _SET_LIMITS_FIELDS)
        limits = _limits(data, required=True)
        assert limits is not None
        return SetLimits(_account(data), limits)
    _check_fields(data, _SET_TRADING_STATE_FIELDS)
    state = data.get("state")
    if not isinstance(state, str) or state not in TradingState.__members__:
        allowed = ", ".join(TradingState.__members__)
        raise DecodeError(Reason.INVALID_ENUM, f"state must be one of {allowed}", "state")
    holder = None if data.get("account_id") is None else _account(data)
    return SetTradingState(TradingState(state), holder)


def _limits(data: Mapping[str, Any], *, required: bool) -> RiskLimits | None:
    raw = data.get("limits")
    if raw is None:
        if required:
            raise DecodeError(Reason.MISSING_FIELD, "limits is required", "limits")
        return None
    if not isinstance(raw, dict):
        raise DecodeError(Reason.INVALID_FIELD, "limits must be an object", "limits")
    try:
        return limits_from_dict(raw)
    except CodecError as exc:
        raise DecodeError(Reason.INVALID_FIELD, str(exc), "limits") from None


def _order_identity(data: Mapping[str, Any], account_id: str) -> tuple[str, str]:
    """``(order_id, client_order_id)`` of a place record, by the rule REST follows too.

    A client order id names the account's order: its id is ``client_order_id_order`` of it,
    derived when the record has none, and a record naming another id is refused
    (``ORDER_ID_MISMATCH``): it would be a second order with the same client order id, or let
    a retry through another path place the order twice. A record without one (or with the
    order id as its own client order id, as REST sends an order with no client order id)
    names the order by its ``order_id``.
    """
    order_id = None if data.get("order_id") is None else _identifier(data, "order_id")
    client_order_id = (
        None if data.get("client_order_id") is None else _identifier(data, "client_order_id")
    )
    if client_order_id is None or client_order_id == order_id:
        if order_id is None:
            raise DecodeError(
                Reason.MISSING_FIELD, "order_id or client_order_id is required", "order_id"
            )
        return order_id, order_id
    derived = client_order_id_order(account_id, client_order_id)
    if order_id is not None and order_id != derived:
        raise DecodeError(
            Reason.ORDER_ID_MISMATCH,
            f"order_id {order_id!r} is not the id of client_order_id {client_order_id!r} in"
            f" account {account_id!r} ({derived}): leave order_id out to have it derived",
            "order_id",
        )
    return derived, client_order_id


def command_key(command: Command) -> bytes:
    """The record key of a command: its account, so one account's commands stay in order."""
    return command.account_id.encode()


class CommandDecoder:
    """Reads ``orders`` and ``executions`` records against the listed instruments."""

    def __init__(self, instruments: Mapping[str, Instrument]) -> None:
        self.instruments = instruments

    def order_command(
        self, raw: bytes | None, timestamp: float, request_id: str | None = None
    ) -> PlaceOrder | CancelOrder | AmendOrder | CancelAll | AccountCommand:
        """A record of ``orders``; ``timestamp`` (the record's) fills an absent time, and
        ``request_id`` (from the record's headers, ``oms.correlation.from_record``) goes on a
        place or cancel."""
        data = loads_object(raw)
        kind = data.get("type")
        if kind == PLACE_ORDER:
            return self.place_order(data, timestamp, request_id)
        if kind == CANCEL_ORDER:
            return self.cancel_order(data, timestamp, request_id)
        if kind == AMEND_ORDER:
            return self.amend_order(data, timestamp, request_id)
        if kind == CANCEL_ALL:
            _check_fields(data, _CANCEL_ALL_FIELDS)
            symbol = data.get("symbol")
            if symbol is not None and symbol not in self.instruments:
                raise DecodeError(Reason.UNKNOWN_SYMBOL, f"{symbol!r} is not listed", "symbol")
            return CancelAll(
                command_id=_identifier(data, "command_id"),
                account_id=_identifier(data, "account_id"),
                requested_at=_timestamp(data, "requested_at", timestamp),
                symbol=symbol,
                request_id=request_id,
            )
        if kind in _ACCOUNT_COMMANDS:
            return _account_command(data, kind)
        raise DecodeError(
            Reason.UNKNOWN_COMMAND,
            f"type must be one of "
            f"{', '.join((PLACE_ORDER, CANCEL_ORDER, AMEND_ORDER, CANCEL_ALL, *_ACCOUNT_COMMANDS))},"
            f" got {kind!r}",
            "type",
        )

    def place_order(
        self, data: Mapping[str, Any], timestamp: float, request_id: str | None = None
    ) -> PlaceOrder:
        """A place-order command, checked as the REST door checks a body."""
        _check_fields(data, _PLACE_FIELDS)
        account_id = _identifier(data, "account_id")
        order_id, client_order_id = _order_identity(data, account_id)
        symbol = data.get("symbol")
        if symbol is None:
            raise DecodeError(Reason.MISSING_FIELD, "symbol is required", "symbol")
        instrument = self.instruments.get(symbol) if isinstance(symbol, str) else None
        if instrument is None:
            raise DecodeError(Reason.UNKNOWN_SYMBOL, f"{symbol!r} is not listed", "symbol")
        if instrument.status is not InstrumentStatus.TRADING:
            raise DecodeError(Reason.SYMBOL_NOT_TRADING, f"{symbol} is not trading", "symbol")
        side = _enum(data, "side", Side)
        order_type = _enum(data, "order_type", OrderType)
        quantity = _amount(data, "quantity")
        if quantity % instrument.lot_size != 0:
            raise DecodeError(
                Reason.QUANTITY_NOT_MULTIPLE_OF_LOT,
                f"quantity {quantity} is not a multiple of the lot size {instrument.lot_size}",
                "quantity",
            )
        price: Decimal | None = None
        stop_price, expire_at, post_only = self._terms(data, order_type, instrument, timestamp)
        if order_type in PRICED:
            if data.get("price") is None:
                raise DecodeError(
                    Reason.PRICE_REQUIRED, f"a {order_type} order needs a price", "price"
                )
            price = _amount(data, "price")
            if price % instrument.tick_size != 0:
                raise DecodeError(
                    Reason.PRICE_NOT_MULTIPLE_OF_TICK,
                    f"price {price} is not a multiple of the tick size {instrument.tick_size}",
                    "price",
                )
        elif data.get("price") is not None:
            raise DecodeError(
                Reason.PRICE_NOT_ALLOWED, f"a {order_type} order has no price", "price"
            )
        taker = order_type in (OrderType.MARKET, OrderType.STOP_MARKET)
        default_tif = TimeInForce.IOC if taker else TimeInForce.GTC
        time_in_force = _enum(data, "time_in_force", TimeInForce, default_tif)
        if order_type is OrderType.MARKET and time_in_force is TimeInForce.GTC:
            raise DecodeError(
                Reason.INVALID_TIME_IN_FORCE,
                "a MARKET order cannot rest: use IOC or FOK",
                "time_in_force",
            )
        return new_place_order(
            command_id=_identifier(data, "command_id", f"place:{order_id}"),
            order_id=order_id,
            client_order_id=client_order_id,
            account_id=account_id,
            symbol=instrument.symbol,
            side=side,
            type=order_type,
            quantity=quantity,
            price=price,
            time_in_force=time_in_force,
            created_at=_timestamp(data, "created_at", timestamp),
            request_id=request_id,
            post_only=post_only,
            stop_price=stop_price,
            expire_at=expire_at,
        )

    @staticmethod
    def _terms(
        data: Mapping[str, Any], order_type: OrderType, instrument: Instrument, timestamp: float
    ) -> tuple[Decimal | None, float | None, bool]:
        """``stop_price``, ``expire_at`` (epoch seconds) and ``post_only``, checked with the
        order's type and time in force as every door checks them (``oms.domain.order_terms``)."""
        stop_price = None if data.get("stop_price") is None else _amount(data, "stop_price")
        if stop_price is not None and stop_price % instrument.tick_size != 0:
            raise DecodeError(
                Reason.PRICE_NOT_MULTIPLE_OF_TICK,
                f"stop_price {stop_price} is not a multiple of the tick size",
                "stop_price",
            )
        expire_at = None if data.get("expire_at") is None else _timestamp(data, "expire_at", 0.0)
        post_only = data.get("post_only", False)
        if not isinstance(post_only, bool):
            raise DecodeError(Reason.INVALID_FIELD, "post_only must be true or false", "post_only")
        plain = order_type in (OrderType.LIMIT, OrderType.MARKET)
        taker = order_type in (OrderType.MARKET, OrderType.STOP_MARKET)
        tif_text = data.get("time_in_force")
        tif = (by_name(TimeInForce).get(tif_text) if isinstance(tif_text, str) else None) or (
            TimeInForce.IOC if taker else TimeInForce.GTC
        )
        price = data.get("price")
        for problem in term_problems(
            order_type, tif, price=None if price is None else Decimal(0),
            stop_price=stop_price, expire_at=expire_at, post_only=post_only,
            now=_timestamp(data, "created_at", timestamp),
        ):  # fmt: skip
            if problem.field == "price" or (plain and problem.field == "time_in_force"):
                continue  # the price's own checks say it, as they always have
            raise DecodeError(
                Reason.INVALID_FIELD, f"{problem.field} {problem.message}", problem.field
            )
        return stop_price, expire_at, post_only

    def cancel_order(
        self, data: Mapping[str, Any], timestamp: float, request_id: str | None = None
    ) -> CancelOrder:
        """A cancel command."""
        _check_fields(data, _CANCEL_FIELDS)
        order_id = _identifier(data, "order_id")
        return CancelOrder(
            command_id=_identifier(data, "command_id", f"cancel:{order_id}"),
            order_id=order_id,
            account_id=_identifier(data, "account_id"),
            requested_at=_timestamp(data, "requested_at", timestamp),
            request_id=request_id,
        )

    def amend_order(
        self, data: Mapping[str, Any], timestamp: float, request_id: str | None = None
    ) -> AmendOrder:
        """An amend command: the new quantity and/or price, each a positive decimal string."""
        _check_fields(data, _AMEND_FIELDS)
        quantity = None if data.get("quantity") is None else _amount(data, "quantity")
        price = None if data.get("price") is None else _amount(data, "price")
        if quantity is None and price is None:
            raise DecodeError(
                Reason.MISSING_FIELD, "an amend needs a quantity or a price", "quantity"
            )
        return AmendOrder(
            command_id=_identifier(data, "command_id"),
            order_id=_identifier(data, "order_id"),
            account_id=_identifier(data, "account_id"),
            requested_at=_timestamp(data, "requested_at", timestamp),
            quantity=quantity,
            price=price,
            request_id=request_id,
        )

    def fill(self, raw: bytes | None, timestamp: float) -> ApplyFill:
        """A record of ``executions``."""
        data = loads_object(raw)
        kind = data.get("type", APPLY_FILL)
        if kind != APPLY_FILL:
            raise DecodeError(
                Reason.UNKNOWN_COMMAND, f"type must be {APPLY_FILL}, got {kind!r}", "type"
            )
        _check_fields(data, _FILL_FIELDS)
        return ApplyFill(
            command_id=_identifier(data, "execution_id"),
            order_id=_identifier(data, "order_id"),
            account_id=_identifier(data, "account_id"),
            quantity=_amount(data, "quantity"),
            price=_amount(data, "price"),
            fee=_parse_amount(data.get("fee", "0"), "fee", zero_ok=True),
            executed_at=_timestamp(data, "executed_at", timestamp),
        )


# -- prices ------------------------------------------------------------------------------------


def encode_tick(tick: Tick) -> bytes:
    """The record value of a tick on ``prices`` (key: the symbol)."""
    return orjson.dumps(tick.to_dict())


def decode_tick(raw: bytes | None, instruments: Mapping[str, Instrument]) -> Tick:
    """A record of ``prices``; a tick of a symbol not listed here is refused."""
    data = loads_object(raw)
    try:
        tick = Tick.from_dict(data)
    except InvalidTick as exc:
        raise DecodeError(Reason.INVALID_TICK, f"{exc.code}: {exc}") from None
    if tick.symbol not in instruments:
        raise DecodeError(Reason.UNKNOWN_SYMBOL, f"{tick.symbol!r} is not listed", "symbol")
    return tick


# -- order events ------------------------------------------------------------------------------


def encode_event(event: OrderEvent, account_id: str | None) -> bytes:
    """The record value of an order event on ``order-events``: ``oms.codec.event_to_dict``'s
    fields with the record's ``account_id`` after ``order_id``.

    ``OrderPlaced`` names its own account too; the record's one stands in its place.
    """
    fields = event_to_dict(event)
    fields.pop("account_id", None)
    kind, order_id = fields.pop("type"), fields.pop("order_id")
    return orjson.dumps({"type": kind, "order_id": order_id, "account_id": account_id, **fields})


def decode_event(raw: bytes | None) -> tuple[OrderEvent, str | None]:
    """A record of ``order-events``: the event and the account it belongs to.

    The fields are read by ``oms.codec.event_from_dict``, the one reader of an order event (the
    store reads its documents' events with it too); this adds the record's checks around it.
    """
    data = loads_object(raw)
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise DecodeError(Reason.UNKNOWN_COMMAND, f"unknown event type {kind!r}")
    account_id = data.get("account_id")
    if account_id is not None and not isinstance(account_id, str):
        raise DecodeError(Reason.INVALID_FIELD, "account_id must be a string", "account_id")
    if kind == "OrderPlaced":  # the record's account stands in for the event's own
        data = {**data, "account_id": account_id}
    try:
        return event_from_dict(data), account_id
    except CodecError as exc:
        raise DecodeError(Reason.INVALID_FIELD, str(exc)) from None


# -- risk events -------------------------------------------------------------------------------


class RiskEventType(StrEnum):
    """What a risk event reports."""

    ORDER_REJECTED = "ORDER_REJECTED"
    KILL_SWITCH = "KILL_SWITCH"
    LIMITS = "LIMITS"
    RECONCILIATION = "RECONCILIATION"  # the venue and we disagree: the account is halted


LIMITS_REPLACED = "LIMITS_REPLACED"
"""The ``reason`` of a ``LIMITS`` event: every limit was replaced (``PUT`` sets them all)."""


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """A rejection, a kill-switch change or a limits change, for ``risk-events``.

    ``reason``: the rejection's code, the kill switch's new state, or ``LIMITS_REPLACED``;
    ``detail``: the rejection's figures, or the new limits as ``oms.codec`` JSON; ``account_id``
    None is the global kill switch; ``by``: who made an operator's change (``key:<key id>`` or
    ``sub:<subject>``, as the audit names them; None for a rejection).
    """

    type: RiskEventType
    account_id: str | None
    reason: str
    detail: str
    at: float
    order_id: str | None = None
    by: str | None = None


def encode_risk_event(event: RiskEvent) -> bytes:
    """The record value of a risk event (key: the account, or empty when global)."""
    return orjson.dumps({
        "type": event.type.value,
        "account_id": event.account_id,
        "order_id": event.order_id,
        "reason": str(event.reason),
        "detail": event.detail,
        "at": event.at,
        "by": event.by,
    })  # fmt: skip


def decode_risk_event(raw: bytes | None) -> RiskEvent:
    """A record of ``risk-events``."""
    data = loads_object(raw)
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in RiskEventType.__members__:
        raise DecodeError(Reason.UNKNOWN_COMMAND, f"unknown risk event type {kind!r}", "type")
    account_id = data.get("account_id")
    order_id = data.get("order_id")
    by = data.get("by")
    return RiskEvent(
        type=RiskEventType(kind),
        account_id=None if account_id is None else _identifier(data, "account_id"),
        order_id=None if order_id is None else _identifier(data, "order_id"),
        reason=_text(data, "reason"),
        detail=str(data.get("detail", "")),
        at=_timestamp(data, "at", None),
        by=None if by is None else _text(data, "by"),
    )


def rejection(event: OrderRejected, account_id: str | None) -> RiskEvent:
    """The risk event that an order's rejection publishes."""
    return RiskEvent(
        type=RiskEventType.ORDER_REJECTED,
        account_id=account_id,
        order_id=event.order_id,
        reason=event.reason,
        detail=event.detail,
        at=event.at,
    )


def kill_switch_change(
    state: TradingState, account_id: str | None, at: float, by: str | None = None
) -> RiskEvent:
    """The risk event of a kill switch set to ``state`` (one account, or every one: None) by
    the caller ``by``."""
    return RiskEvent(RiskEventType.KILL_SWITCH, account_id, state.value, "", at, by=by)


def limits_change(
    account_id: str, limits: RiskLimits, at: float, by: str | None = None
) -> RiskEvent:
    """The risk event of an account's limits replaced by ``limits`` (in ``detail``, as JSON) by
    the caller ``by``."""
    detail = orjson.dumps(limits_to_dict(limits)).decode()
    return RiskEvent(RiskEventType.LIMITS, account_id, LIMITS_REPLACED, detail, at, by=by)


def reconciliation_discrepancy(
    kind: str, account_id: str | None, order_id: str, detail: str, at: float
) -> RiskEvent:
    """The risk event of something reconciliation could not explain (``kind``: a
    ``DiscrepancyKind``); the account (every one: None) is halted with it."""
    return RiskEvent(RiskEventType.RECONCILIATION, account_id, kind, detail, at, order_id=order_id)


# -- dead letters ------------------------------------------------------------------------------


def dead_letter_value(
    *,
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    key: bytes | None,
    timestamp: float | None,
    request_id: str | None = None,
) -> bytes:
    """The value put on ``<topic>.dlq``: why, where it came from, and the original bytes.

    The original value goes as text when it is UTF-8 (``value``), else base64 (``value_b64``);
    ``request_id`` when the record was named by one (its header, or its coordinates).
    """
    data: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "key": None if key is None else key.decode("utf-8", "replace"),
    }
    if request_id is not None:
        data["request_id"] = request_id
    if value is None:
        data["value"] = None
    else:
        try:
            data["value"] = value.decode("utf-8")
        except UnicodeDecodeError:
            data["value_b64"] = base64.b64encode(value).decode()
    return orjson.dumps(data)
