"""Orders, order events and risk limits as plain JSON-ready dicts: one encoding for every adapter.

The store (MongoDB documents, the Redis order cache) and the stream layer both speak it. Every
amount is a decimal *string* written with ``str(Decimal)``, which keeps the exponent, so a round
trip gives back an equal Decimal with the same digits (``"1.50"`` stays ``"1.50"``); no amount
ever passes through a float. Timestamps are JSON numbers (epoch seconds), enums their upper-case
values. An event's ``type`` is its class name; ``OrderPlaced``'s own order type travels as
``order_type`` (the same names as ``oms.stream.codecs``). An event's ``request_id`` is written
only when it has one (older documents have none and read back as None).

Pure: no I/O, imports only the domain and the risk limits' value type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.errors import DomainError
from oms.domain.events import (
    AmendRejected,
    CancelReason,
    DoubtedRequest,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderDoubtResolved,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderInDoubt,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
    OrderTriggered,
    VenueWord,
)
from oms.domain.global_limits import GlobalLimits, GroupCaps, SymbolCaps
from oms.domain.limits import RiskLimits
from oms.domain.orders import Order
from oms.domain.reasons import RejectionReason, rejection_reason

_new = tuple.__new__


class CodecError(DomainError):
    """A stored or cached record that does not describe an order, event or limits."""

    code = "UNREADABLE_RECORD"


def decimal_text(value: Decimal | None) -> str | None:
    """``str(value)`` (digits and exponent kept), None as None."""
    return None if value is None else str(value)


def _undec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


# -- amounts and ids from outside ----------------------------------------------------------

# Digits, an optional fraction; no sign, exponent, NaN or Infinity. Fifteen integer digits is far
# beyond any real order and keeps a "huge" amount out before it reaches arithmetic.
_AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,18})?")


class InvalidAmount(DomainError):
    """An amount from outside that is not a plain decimal string; the message omits the field."""

    code = "INVALID_AMOUNT"


def parse_amount(value: object, *, zero_ok: bool = False) -> Decimal:
    """A decimal carried as a JSON string (never a number), positive unless ``zero_ok``.

    Raises ``InvalidAmount``; each door adds the field's name and turns it into its own error.
    """
    if isinstance(value, int | float):  # bool is an int too
        raise InvalidAmount('must be a decimal string such as "0.5", not a JSON number')
    if not isinstance(value, str) or not _AMOUNT.fullmatch(value):
        raise InvalidAmount(
            "must be a plain decimal string (digits, optional fraction, <= 15 integer digits)"
        )
    amount = Decimal(value)
    # The grammar has no sign, so zero is the only amount that is not positive.
    if amount == 0 and not zero_ok:
        raise InvalidAmount("must be greater than zero")
    return amount


# -- orders --------------------------------------------------------------------------------


def order_to_dict(order: Order) -> dict[str, Any]:
    """The order as JSON-ready data (every field of ``Order``, amounts as decimal strings)."""
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "account_id": order.account_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "quantity": str(order.quantity),
        "price": decimal_text(order.price),
        "time_in_force": order.time_in_force.value,
        "status": order.status.value,
        "filled_quantity": str(order.filled_quantity),
        "filled_notional": str(order.filled_notional),
        "fees": str(order.fees),
        "average_fill_price": decimal_text(order.average_fill_price),
        "protection_price": decimal_text(order.protection_price),
        "reject_reason": None if order.reject_reason is None else order.reject_reason.value,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "version": order.version,
        "post_only": order.post_only,
        "stop_price": decimal_text(order.stop_price),
        "expire_at": order.expire_at,
        "triggered_at": order.triggered_at,
    }


def order_from_dict(data: Mapping[str, Any]) -> Order:
    """The order ``order_to_dict`` wrote; raises ``CodecError`` for anything else."""
    try:
        return _new(
            Order,
            (
                data["order_id"],
                data["client_order_id"],
                data["account_id"],
                data["symbol"],
                Side(data["side"]),
                OrderType(data["type"]),
                Decimal(data["quantity"]),
                _undec(data["price"]),
                TimeInForce(data["time_in_force"]),
                OrderStatus(data["status"]),
                Decimal(data["filled_quantity"]),
                Decimal(data["filled_notional"]),
                Decimal(data["fees"]),
                _undec(data["average_fill_price"]),
                _undec(data["protection_price"]),
                _reject_reason(data["reject_reason"]),
                float(data["created_at"]),
                float(data["updated_at"]),
                int(data["version"]),
                # Absent from orders stored before issue 15: their defaults.
                _flag(data.get("post_only", False)),
                _undec(data.get("stop_price")),
                _time(data.get("expire_at")),
                _time(data.get("triggered_at")),
            ),
        )
    except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
        raise CodecError(f"not an order: {exc!r}") from exc


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"a flag must be true or false, got {value!r}")
    return value


def _time(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a time must be epoch seconds, got {value!r}")
    return float(value)


def _reject_reason(value: str | None) -> RejectionReason | None:
    return None if value is None else rejection_reason(value)


# -- events --------------------------------------------------------------------------------


def event_to_dict(event: OrderEvent) -> dict[str, Any]:
    """The event as JSON-ready data: ``type`` (class name), the common fields, its own fields."""
    data: dict[str, Any] = {
        "type": type(event).__name__,
        "order_id": event.order_id,
        "sequence": event.sequence,
        "command_id": event.command_id,
        "at": event.at,
    }
    # By the event's type from a table, not a chain of isinstance: each event is written twice
    # (its order's document and its record), five or more an order, and OrderSettled came last.
    own_fields = _OWN_FIELDS.get(type(event))
    if own_fields is not None:
        own_fields(event, data)
    if event.request_id is not None:  # absent rather than null: most events have none
        data["request_id"] = event.request_id
    return data


def _filled(event: OrderFilled, data: dict[str, Any]) -> None:
    data["quantity"] = str(event.quantity)
    data["price"] = str(event.price)
    data["fee"] = str(event.fee)


def _placed(event: OrderPlaced, data: dict[str, Any]) -> None:
    data["client_order_id"] = event.client_order_id
    data["account_id"] = event.account_id
    data["symbol"] = event.symbol
    data["side"] = event.side.value
    data["order_type"] = event.type.value
    data["quantity"] = str(event.quantity)
    data["price"] = decimal_text(event.price)
    data["time_in_force"] = event.time_in_force.value
    # Written only when set: an OrderPlaced without them reads as before issue 15.
    if event.post_only:
        data["post_only"] = True
    if event.stop_price is not None:
        data["stop_price"] = str(event.stop_price)
    if event.expire_at is not None:
        data["expire_at"] = event.expire_at


def _accepted(event: OrderAccepted, data: dict[str, Any]) -> None:
    data["protection_price"] = str(event.protection_price)


def _rejected(event: OrderRejected | AmendRejected, data: dict[str, Any]) -> None:
    data["reason"] = event.reason.value
    data["detail"] = event.detail


def _cancelled(event: OrderCancelled, data: dict[str, Any]) -> None:
    data["reason"] = event.reason.value


def _amended(event: OrderAmended, data: dict[str, Any]) -> None:
    data["quantity"] = str(event.quantity)
    data["price"] = str(event.price)
    data["protection_price"] = str(event.protection_price)


def _triggered(event: OrderTriggered, data: dict[str, Any]) -> None:
    data["last_price"] = str(event.last_price)


def _in_doubt(event: OrderInDoubt, data: dict[str, Any]) -> None:
    data["request"] = event.request.value
    data["reason"] = event.reason


def _doubt_resolved(event: OrderDoubtResolved, data: dict[str, Any]) -> None:
    data["word"] = event.word.value
    data["venue_filled"] = str(event.venue_filled)


# Each event type's own fields (OrderSettled and OrderExpired have none beyond the common ones).
_OWN_FIELDS: dict[type[Any], Callable[[Any, dict[str, Any]], None]] = {
    OrderFilled: _filled,
    OrderPlaced: _placed,
    OrderAccepted: _accepted,
    OrderRejected: _rejected,
    OrderCancelled: _cancelled,
    OrderAmended: _amended,
    AmendRejected: _rejected,
    OrderTriggered: _triggered,
    OrderInDoubt: _in_doubt,
    OrderDoubtResolved: _doubt_resolved,
}


EVENT_TYPES = frozenset(
    kind.__name__
    for kind in (
        OrderPlaced, OrderAccepted, OrderRejected, OrderFilled, OrderCancelled, OrderSettled,
        OrderAmended, AmendRejected, OrderTriggered, OrderExpired, OrderInDoubt,
        OrderDoubtResolved,
    )
)  # fmt: skip
"""The ``type`` an order event is written with (its class name)."""


def _read_event(d: Mapping[str, Any]) -> OrderEvent:  # noqa: PLR0911, PLR0912 - one per event type
    kind = d["type"]
    order_id, command_id = d["order_id"], d["command_id"]
    sequence, at = int(d["sequence"]), float(d["at"])
    request = d.get("request_id")
    if request is not None and not isinstance(request, str):
        raise TypeError(f"request_id must be a string, got {type(request).__name__}")
    if kind == "OrderFilled":
        return OrderFilled(
            order_id,
            sequence,
            command_id,
            at,
            Decimal(d["quantity"]),
            Decimal(d["price"]),
            Decimal(d["fee"]),
            request,
        )
    if kind == "OrderPlaced":
        return OrderPlaced(
            order_id,
            sequence,
            command_id,
            at,
            client_order_id=d["client_order_id"],
            account_id=d["account_id"],
            symbol=d["symbol"],
            side=Side(d["side"]),
            type=OrderType(d["order_type"]),
            quantity=Decimal(d["quantity"]),
            price=_undec(d["price"]),
            time_in_force=TimeInForce(d["time_in_force"]),
            request_id=request,
            post_only=_flag(d.get("post_only", False)),
            stop_price=_undec(d.get("stop_price")),
            expire_at=_time(d.get("expire_at")),
        )
    if kind == "OrderAccepted":
        return OrderAccepted(
            order_id, sequence, command_id, at, Decimal(d["protection_price"]), request
        )
    if kind == "OrderRejected":
        return OrderRejected(
            order_id, sequence, command_id, at, rejection_reason(d["reason"]), d["detail"], request
        )
    if kind == "OrderCancelled":
        return OrderCancelled(
            order_id, sequence, command_id, at, CancelReason(d["reason"]), request
        )
    if kind == "OrderSettled":
        return OrderSettled(order_id, sequence, command_id, at, request)
    if kind == "OrderAmended":
        return OrderAmended(
            order_id, sequence, command_id, at, Decimal(d["quantity"]), Decimal(d["price"]),
            Decimal(d["protection_price"]), request,
        )  # fmt: skip
    if kind == "OrderTriggered":
        return OrderTriggered(order_id, sequence, command_id, at, Decimal(d["last_price"]), request)
    if kind == "OrderExpired":
        return OrderExpired(order_id, sequence, command_id, at, request)
    if kind == "OrderInDoubt":
        return OrderInDoubt(
            order_id, sequence, command_id, at, DoubtedRequest(d["request"]), str(d["reason"]),
            request,
        )  # fmt: skip
    if kind == "OrderDoubtResolved":
        return OrderDoubtResolved(
            order_id, sequence, command_id, at, VenueWord(d["word"]), Decimal(d["venue_filled"]),
            request,
        )  # fmt: skip
    if kind == "AmendRejected":
        return AmendRejected(
            order_id, sequence, command_id, at, rejection_reason(d["reason"]), d["detail"], request
        )
    raise CodecError(f"unknown order event type {kind!r}")


def event_from_dict(data: Mapping[str, Any]) -> OrderEvent:
    """The event ``event_to_dict`` wrote; raises ``CodecError`` for anything else."""
    try:
        return _read_event(data)
    except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
        raise CodecError(f"not an order event: {exc!r}") from exc


# -- risk limits ---------------------------------------------------------------------------

DECIMAL_LIMITS = (
    "max_order_quantity",
    "max_order_notional",
    "price_collar",
    "max_position",
    "daily_loss_limit",
    "max_concentration",
    "max_notional_per_window",
)
"""The limits that are one decimal or None (the check is off)."""
PER_SYMBOL_LIMITS = ("symbol_max_order_quantity", "symbol_max_position")
"""The limits that are a mapping of symbol to decimal (per-symbol overrides)."""


def limits_to_dict(limits: RiskLimits) -> dict[str, Any]:
    """An account's limits as JSON-ready data (None: that check is off)."""
    data: dict[str, Any] = {name: decimal_text(getattr(limits, name)) for name in DECIMAL_LIMITS}
    for name in PER_SYMBOL_LIMITS:
        data[name] = {symbol: str(v) for symbol, v in getattr(limits, name).items()}
    data["velocity_window_s"] = limits.velocity_window_s
    data["max_orders_per_window"] = limits.max_orders_per_window
    return data


def limits_from_dict(data: Mapping[str, Any]) -> RiskLimits:
    """The limits ``limits_to_dict`` wrote; raises ``CodecError`` for anything else."""
    try:
        values: dict[str, Any] = {name: _undec(data[name]) for name in DECIMAL_LIMITS}
        for name in PER_SYMBOL_LIMITS:
            values[name] = MappingProxyType({s: Decimal(v) for s, v in data[name].items()})
        window = data["velocity_window_s"]
        values["velocity_window_s"] = None if window is None else float(window)
        count = data["max_orders_per_window"]
        values["max_orders_per_window"] = None if count is None else int(count)
        return RiskLimits(**values)
    except (KeyError, ValueError, TypeError, ArithmeticError, AttributeError) as exc:
        raise CodecError(f"not risk limits: {exc!r}") from exc


def balances_to_dict(balances: Mapping[str, Decimal]) -> dict[str, str]:
    """Amounts per asset as decimal strings."""
    return {asset: str(amount) for asset, amount in balances.items()}


def balances_from_dict(data: Mapping[str, str]) -> dict[str, Decimal]:
    """Amounts per asset back from decimal strings."""
    try:
        return {asset: Decimal(amount) for asset, amount in data.items()}
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise CodecError(f"not balances: {exc!r}") from exc


# -- the firm-wide caps (``oms.domain.global_limits``) ----------------------------------------


def _global_amount(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _global_decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def global_limits_to_dict(limits: GlobalLimits) -> dict[str, Any]:
    """The firm-wide caps, JSON-ready, amounts as decimal strings (none: null)."""
    return {
        "symbols": {
            symbol: {
                "max_gross_notional": _global_amount(caps.max_gross_notional),
                "max_net_position": _global_amount(caps.max_net_position),
            }
            for symbol, caps in sorted(limits.symbols.items())
        },
        "groups": {
            name: {
                "accounts": sorted(group.accounts),
                "max_gross_notional": _global_amount(group.max_gross_notional),
            }
            for name, group in sorted(limits.groups.items())
        },
    }


def global_limits_from_dict(data: Mapping[str, Any]) -> GlobalLimits:
    """What ``global_limits_to_dict`` wrote."""
    return GlobalLimits(
        {
            symbol: SymbolCaps(
                _global_decimal(caps.get("max_gross_notional")),
                _global_decimal(caps.get("max_net_position")),
            )
            for symbol, caps in data.get("symbols", {}).items()
        },
        {
            name: GroupCaps(
                frozenset(str(a) for a in group.get("accounts", ())),
                _global_decimal(group.get("max_gross_notional")),
            )
            for name, group in data.get("groups", {}).items()
        },
    )
