"""The JSON schemas of the OpenAPI document: each says exactly what ``oms.api.encoding`` writes."""

from __future__ import annotations

from typing import Any

from oms.domain.accounts import IDENTIFIER
from oms.domain.audit import AuditAction
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.global_limits import GROUP_NAME
from oms.domain.limits import TradingState
from oms.domain.reasons import REJECTION_REASONS, RejectReason
from oms.venue.reconcile import DiscrepancyKind

_DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "examples": ["0.5"]}
_NULLABLE_DECIMAL = {"oneOf": [_DECIMAL, {"type": "null"}]}
_TIME = {"type": "string", "format": "date-time"}
ID = {"type": "string", "pattern": f"^{IDENTIFIER.pattern}$"}
GROUP_NAME_SCHEMA = {"type": "string", "pattern": f"^{GROUP_NAME.pattern}$"}


def ref(name: str) -> dict[str, str]:
    """A reference to one of ``SCHEMAS``."""
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(
    properties: dict[str, Any], required: list[str] | None = None, *, closed: bool = True
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    schema["required"] = list(properties) if required is None else required
    if closed:
        schema["additionalProperties"] = False
    return schema


def enum_of(values: Any) -> dict[str, Any]:
    """A string schema of an enum's values."""
    return {"type": "string", "enum": [v.value for v in values]}


def _map(value: dict[str, Any], keys: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object of any keys (of the ``keys`` schema, when given) to ``value``."""
    schema = {"type": "object", "additionalProperties": value}
    return schema if keys is None else {**schema, "propertyNames": keys}


_PRICE: dict[str, Any] = {
    "symbol": {"type": "string"},
    "last_price": _DECIMAL,
    "best_bid": _NULLABLE_DECIMAL,
    "best_ask": _NULLABLE_DECIMAL,
    "time": _TIME,
}

SCHEMAS: dict[str, Any] = {
    "Problem": _obj(
        {
            # DEPENDENCY_UNAVAILABLE (503) only: redis, kafka, mongodb or engine
            "dependency": {"type": "string"},
            # RATE_LIMITED (429) only: which limit refused the request
            "limit": {"type": "string", "enum": ["key", "address"]},
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "errors": {
                "type": "array",
                "items": _obj(
                    {
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                        "code": {"type": "string"},
                    },
                    ["field", "message"],
                ),
            },
        },
        ["type", "title", "status", "detail", "code"],
    ),
    "Order": _obj(
        {
            "order_id": {"type": "string"},
            "client_order_id": {"type": "string"},
            "account_id": {"type": "string"},
            "symbol": {"type": "string", "examples": ["BTC-USD"]},
            "side": enum_of(Side),
            "type": enum_of(OrderType),
            "quantity": _DECIMAL,
            "price": _NULLABLE_DECIMAL,
            "time_in_force": enum_of(TimeInForce),
            "status": enum_of(OrderStatus),
            "filled_quantity": _DECIMAL,
            "average_fill_price": _NULLABLE_DECIMAL,
            "reject_reason": {
                "type": ["string", "null"],
                "enum": [*(reason.value for reason in REJECTION_REASONS), None],
            },
            "created_at": _TIME,
            "updated_at": _TIME,
            "version": {"type": "integer", "minimum": 1},
            "stop_price": _NULLABLE_DECIMAL,
            "expire_at": {"oneOf": [_TIME, {"type": "null"}]},
            "post_only": {"type": "boolean"},
            "triggered_at": {"oneOf": [_TIME, {"type": "null"}]},
        }
    ),
    "PlaceOrder": _obj(
        {
            "account_id": ID,
            "client_order_id": ID,
            "symbol": {"type": "string"},
            "side": enum_of(Side),
            "type": enum_of(OrderType),
            "quantity": _DECIMAL,
            "price": _DECIMAL,
            "time_in_force": enum_of(TimeInForce),
            "stop_price": {
                **_DECIMAL,
                "description": "STOP_MARKET and STOP_LIMIT only. Triggers when the last price"
                " reaches it: a BUY stop must be above the last price, a SELL stop below"
                " (422 STOP_PRICE_WRONG_SIDE at the door when a last price is known; an order"
                " that reaches the venue on the wrong side is REJECTED with that reason)."
                " A STOP_LIMIT's price may be on either side of its stop_price.",
            },
            "expire_at": _TIME,  # GTD only (RFC 3339, in the future)
            "post_only": {"type": "boolean"},  # LIMIT only
        },
        ["account_id", "symbol", "side", "type", "quantity"],
    ),
    "CancelAll": _obj(
        {
            "account_id": {"type": "string"},
            "symbol": {"type": ["string", "null"]},
            "requested": {"type": "integer", "minimum": 0},
        }
    ),
    "AmendOrder": {
        **_obj({"quantity": _DECIMAL, "price": _DECIMAL}, []),
        # The new whole quantity (filled part included) and/or the new price: one at least.
        "minProperties": 1,
    },
    "OrderPage": _obj(
        {
            "items": {"type": "array", "items": ref("Order")},
            "next_cursor": {"type": ["string", "null"]},
        }
    ),
    "OrderEvent": _obj(
        {
            "type": {
                "type": "string",
                "enum": [
                    "OrderPlaced",
                    "OrderAccepted",
                    "OrderRejected",
                    "OrderFilled",
                    "OrderCancelled",
                    "OrderSettled",
                    "OrderAmended",
                    "AmendRejected",
                    "OrderTriggered",
                    "OrderExpired",
                    "OrderInDoubt",
                    "OrderDoubtResolved",
                ],
            },
            "order_id": {"type": "string"},
            "sequence": {"type": "integer", "minimum": 1},
            "command_id": {"type": "string"},
            "at": _TIME,
            # The request (X-Request-ID) or Kafka record whose command caused the event; null
            # for the venue's fills and settlement.
            "request_id": {"type": ["string", "null"]},
        },
        closed=False,  # each kind adds its own fields (quantity, price, reason, ...)
    ),
    "OrderHistory": _obj(
        {"order_id": {"type": "string"}, "events": {"type": "array", "items": ref("OrderEvent")}}
    ),
    "Instrument": _obj(
        {
            "symbol": {"type": "string"},
            "base": {"type": "string"},
            "quote": {"type": "string"},
            "tick_size": _DECIMAL,
            "lot_size": _DECIMAL,
            "status": {"type": "string", "enum": ["TRADING", "HALTED"]},
        }
    ),
    "Limits": _obj(
        {
            "max_order_quantity": _NULLABLE_DECIMAL,
            "symbol_max_order_quantity": _map(_DECIMAL),
            "max_order_notional": _NULLABLE_DECIMAL,
            "price_collar": _NULLABLE_DECIMAL,
            "max_position": _NULLABLE_DECIMAL,
            "symbol_max_position": _map(_DECIMAL),
            "daily_loss_limit": _NULLABLE_DECIMAL,
            "max_concentration": _NULLABLE_DECIMAL,
            "velocity_window_s": {"type": ["number", "null"]},
            "max_orders_per_window": {"type": ["integer", "null"]},
            "max_notional_per_window": _NULLABLE_DECIMAL,
        },
        [],
    ),
    "Balance": _obj({"available": _DECIMAL, "reserved": _DECIMAL, "total": _DECIMAL}),
    "Position": _obj(
        {
            "quantity": _DECIMAL,
            "average_price": _DECIMAL,
            "realized_pnl": _DECIMAL,
            "unrealized_pnl": _DECIMAL,
        }
    ),
    "Account": _obj(
        {
            "account_id": {"type": "string"},
            "trading_state": enum_of(TradingState),
            "balances": _map(ref("Balance")),
            "reservations": _map(_DECIMAL),
            "positions": _map(ref("Position")),
            "pnl": _obj({"realized": _DECIMAL, "unrealized": _DECIMAL, "total": _DECIMAL}),
            "limits": ref("Limits"),
        }
    ),
    "OpenAccount": _obj(
        {"account_id": ID, "balances": _map(_DECIMAL), "limits": ref("Limits")},
        ["account_id"],
    ),
    "Validation": _obj(
        {
            "accepted": {"type": "boolean"},
            "violations": {
                "type": "array",
                "items": _obj(
                    {
                        "reason": enum_of(RejectReason),
                        "details": _map({"type": "string"}),
                        "message": {"type": "string"},
                    }
                ),
            },
        }
    ),
    "Positions": _obj(
        {
            "account_id": {"type": "string"},
            "positions": _map(ref("Position")),
            "balances": _map(ref("Balance")),
        }
    ),
    "AccountLimits": _obj({"account_id": {"type": "string"}, "limits": ref("Limits")}),
    "GlobalLimits": _obj(
        {
            "symbols": _map(
                _obj(
                    {
                        "max_gross_notional": _NULLABLE_DECIMAL,
                        "max_net_position": _NULLABLE_DECIMAL,
                    },
                    [],
                )
            ),
            "groups": _map(
                _obj(
                    {
                        "accounts": {"type": "array", "items": ID, "minItems": 1},
                        "max_gross_notional": _NULLABLE_DECIMAL,
                    },
                    ["accounts"],
                ),
                GROUP_NAME_SCHEMA,
            ),
        },
        [],
    ),
    "GlobalLimitsState": _obj(
        {
            "symbols": _map(
                _obj(
                    {"max_gross_notional": _NULLABLE_DECIMAL, "max_net_position": _NULLABLE_DECIMAL}
                )
            ),
            "groups": _map(
                _obj(
                    {
                        "accounts": {"type": "array", "items": ID},
                        "max_gross_notional": _NULLABLE_DECIMAL,
                    }
                )
            ),
            # What the firm holds now, per capped symbol and group, over every replica.
            "usage": _map(
                _obj(
                    {
                        "open_notional": _DECIMAL,
                        "open_buy": _DECIMAL,
                        "open_sell": _DECIMAL,
                        "net_position": _DECIMAL,
                    }
                )
            ),
            "group_usage": _map(_obj({"open_notional": _DECIMAL})),
        }
    ),
    "KillSwitch": _obj(
        {"state": enum_of(TradingState), "account_id": {"oneOf": [ID, {"type": "null"}]}},
        ["state"],
    ),
    "Price": _obj(_PRICE),
    "BookLevel": _obj({"price": _DECIMAL, "quantity": _DECIMAL}),
    # Price's fields plus the levels, as one closed object: an ``allOf`` of the closed Price and
    # the levels refused every book (Price's ``additionalProperties: false`` saw bids and asks).
    "OrderBook": _obj(
        {
            **_PRICE,
            "bids": {"type": "array", "items": ref("BookLevel")},
            "asks": {"type": "array", "items": ref("BookLevel")},
        }
    ),
    "Health": _obj(
        {"status": {"type": "string"}, "reason": {"type": "string"}},
        required=["status"],
    ),
    "Ready": _obj(
        {"status": {"type": "string"}, "checks": _map({"type": "boolean"})},
    ),
    "AuditEntry": _obj(
        {
            "id": {"type": "string", "description": "sorts by time; the cursor of the next page"},
            "action": enum_of(AuditAction),
            "who": {"type": "string", "examples": ["key:3f9c2a7e1b0d4c55"]},
            "role": {"type": ["string", "null"]},
            "at": {"type": "number", "description": "seconds since 1970 (UTC)"},
            "source": {"type": ["string", "null"], "description": "the client address"},
            "account_id": {"type": ["string", "null"]},
            "detail": {"type": "object", "description": "what changed"},
            "request_id": {"type": ["string", "null"]},
        }
    ),
    "Cluster": _obj(
        {
            "replica": {"type": "string"},
            "address": {"type": "string"},
            "partitions": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "partitions_total": {"type": "integer", "minimum": 1},
            "replicas": {
                "type": "array",
                "items": _obj(
                    {
                        "replica": {"type": "string"},
                        "address": {"type": "string"},
                        "partitions": {"type": "array", "items": {"type": "integer"}},
                        "heartbeat": _TIME,
                    }
                ),
            },
            "unowned": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        }
    ),
    "AuditPage": _obj(
        {
            "items": {"type": "array", "items": ref("AuditEntry")},
            "next_cursor": {"type": ["string", "null"]},
        }
    ),
    "Discrepancy": _obj(
        {
            "kind": {
                "type": "string",
                "enum": [kind.value for kind in DiscrepancyKind],
            },
            "account_id": {"type": ["string", "null"]},  # null: every account was halted
            "order_id": {"type": "string"},
            "detail": {"type": "string"},
        }
    ),
    "ReconciliationRun": _obj(
        {
            "trigger": {"type": "string", "examples": ["start", "rebuild", "timer"]},
            "at": {"type": "number"},
            "matched": {"type": "integer"},
            "booked": {"type": "integer"},
            "resolved": {"type": "integer"},
            "pending": {"type": "integer"},
            "failed": {"type": ["string", "null"]},
            "discrepancies": {"type": "array", "items": ref("Discrepancy")},
        }
    ),
    "Reconciliation": _obj(
        {
            "reconciling": {"type": "boolean"},
            "last": {"oneOf": [ref("ReconciliationRun"), {"type": "null"}]},
            "discrepancies_total": {"type": "object", "additionalProperties": {"type": "integer"}},
        }
    ),
}
