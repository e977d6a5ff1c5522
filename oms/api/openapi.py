"""The OpenAPI 3.1 document of the API, served at ``/api/openapi.json``.

Written by hand next to the routes (a test proves both list the same paths and methods), so
that the schemas say exactly what the encoders in ``oms.api.encoding`` write.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from oms import __version__
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.risk import RejectReason, TradingState

_DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "examples": ["0.5"]}
_NULLABLE_DECIMAL = {"oneOf": [_DECIMAL, {"type": "null"}]}
_TIME = {"type": "string", "format": "date-time"}
_ID = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(
    properties: dict[str, Any], required: list[str] | None = None, *, closed: bool = True
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    schema["required"] = list(properties) if required is None else required
    if closed:
        schema["additionalProperties"] = False
    return schema


def _enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": [v.value for v in values]}


def _map(value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": value}


SCHEMAS: dict[str, Any] = {
    "Problem": _obj(
        {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "errors": {
                "type": "array",
                "items": _obj({"field": {"type": "string"}, "message": {"type": "string"}}),
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
            "side": _enum(Side),
            "type": _enum(OrderType),
            "quantity": _DECIMAL,
            "price": _NULLABLE_DECIMAL,
            "time_in_force": _enum(TimeInForce),
            "status": _enum(OrderStatus),
            "filled_quantity": _DECIMAL,
            "average_fill_price": _NULLABLE_DECIMAL,
            "reject_reason": {"type": ["string", "null"]},
            "created_at": _TIME,
            "updated_at": _TIME,
            "version": {"type": "integer", "minimum": 1},
        }
    ),
    "PlaceOrder": _obj(
        {
            "account_id": _ID,
            "client_order_id": _ID,
            "symbol": {"type": "string"},
            "side": _enum(Side),
            "type": _enum(OrderType),
            "quantity": _DECIMAL,
            "price": _DECIMAL,
            "time_in_force": _enum(TimeInForce),
        },
        ["account_id", "symbol", "side", "type", "quantity"],
    ),
    "OrderPage": _obj(
        {
            "items": {"type": "array", "items": _ref("Order")},
            "next_cursor": {"type": ["string", "null"]},
        }
    ),
    "OrderEvent": _obj(
        {
            "event_type": {
                "type": "string",
                "enum": [
                    "OrderPlaced",
                    "OrderAccepted",
                    "OrderRejected",
                    "OrderFilled",
                    "OrderCancelled",
                    "OrderSettled",
                ],
            },
            "order_id": {"type": "string"},
            "sequence": {"type": "integer", "minimum": 1},
            "command_id": {"type": "string"},
            "at": _TIME,
        },
        closed=False,  # each kind adds its own fields (quantity, price, reason, ...)
    ),
    "OrderHistory": _obj(
        {"order_id": {"type": "string"}, "events": {"type": "array", "items": _ref("OrderEvent")}}
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
            "trading_state": _enum(TradingState),
            "balances": _map(_ref("Balance")),
            "reservations": _map(_DECIMAL),
            "positions": _map(_ref("Position")),
            "pnl": _obj({"realized": _DECIMAL, "unrealized": _DECIMAL, "total": _DECIMAL}),
            "limits": _ref("Limits"),
        }
    ),
    "OpenAccount": _obj(
        {"account_id": _ID, "balances": _map(_DECIMAL), "limits": _ref("Limits")},
        ["account_id"],
    ),
    "Validation": _obj(
        {
            "accepted": {"type": "boolean"},
            "violations": {
                "type": "array",
                "items": _obj(
                    {
                        "reason": _enum(RejectReason),
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
            "positions": _map(_ref("Position")),
            "balances": _map(_ref("Balance")),
        }
    ),
    "AccountLimits": _obj({"account_id": {"type": "string"}, "limits": _ref("Limits")}),
    "KillSwitch": _obj(
        {"state": _enum(TradingState), "account_id": {"oneOf": [_ID, {"type": "null"}]}},
        ["state"],
    ),
    "Price": _obj(
        {
            "symbol": {"type": "string"},
            "last_price": _DECIMAL,
            "best_bid": _NULLABLE_DECIMAL,
            "best_ask": _NULLABLE_DECIMAL,
            "time": _TIME,
        }
    ),
    "BookLevel": _obj({"price": _DECIMAL, "quantity": _DECIMAL}),
    "OrderBook": {
        "allOf": [
            _ref("Price"),
            _obj(
                {
                    "bids": {"type": "array", "items": _ref("BookLevel")},
                    "asks": {"type": "array", "items": _ref("BookLevel")},
                },
                closed=False,
            ),
        ]
    },
    "Health": _obj({"status": {"type": "string"}}),
    "Ready": _obj(
        {"status": {"type": "string"}, "checks": _map({"type": "boolean"})},
    ),
}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer.update(_json_content(schema))
    return answer


_PROBLEM = {
    "description": "A problem (RFC 9457)",
    "content": {"application/problem+json": {"schema": _ref("Problem")}},
}


def _op(
    summary: str,
    answers: dict[str, dict[str, Any]],
    *,
    errors: tuple[int, ...] = (),
    body: str | None = None,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": dict(answers)}
    for status in errors:
        operation["responses"][str(status)] = _PROBLEM
    if body is not None:
        operation["requestBody"] = {"required": True, **_json_content(_ref(body))}
    if parameters:
        operation["parameters"] = parameters
    return operation


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_ACCOUNT_QUERY = _query("account_id", _ID, required=True)
_WEBSOCKET = {"101": {"description": "Switching protocols: a WebSocket of JSON text messages"}}

PATHS: dict[str, dict[str, Any]] = {
    "/api/instruments": {
        "get": _op(
            "Listed instruments",
            {"200": _answer("Instruments", {"type": "array", "items": _ref("Instrument")})},
        ),
    },
    "/api/accounts": {
        "post": _op(
            "Open an account with starting balances and optional limits",
            {"201": _answer("The new account", _ref("Account"))},
            errors=(400, 409, 422),
            body="OpenAccount",
        ),
    },
    "/api/accounts/{account_id}": {
        "get": _op(
            "Balances, reservations, positions and PnL",
            {"200": _answer("The account", _ref("Account"))},
            errors=(404,),
            parameters=[_path_param("account_id")],
        ),
    },
    "/api/orders": {
        "post": _op(
            "Place an order (answered once the command is on its way)",
            {
                "202": _answer(
                    "The order, status NEW (or as it stands, for a repeated key)", _ref("Order")
                )
            },
            errors=(400, 413, 422),
            body="PlaceOrder",
            parameters=[
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 128},
                }
            ],
        ),
        "get": _op(
            "Orders, newest first",
            {"200": _answer("A page of orders", _ref("OrderPage"))},
            errors=(422,),
            parameters=[
                _query("account_id", _ID),
                _query("symbol", {"type": "string"}),
                _query("status", _enum(OrderStatus)),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                _query("cursor", {"type": "string"}),
            ],
        ),
    },
    "/api/orders/{order_id}": {
        "get": _op(
            "An order",
            {"200": _answer("The order", _ref("Order"))},
            errors=(404,),
            parameters=[_path_param("order_id")],
        ),
        "delete": _op(
            "Ask to cancel an order",
            {"202": _answer("Cancel requested; the order as it stood", _ref("Order"))},
            errors=(404, 409),
            parameters=[_path_param("order_id")],
        ),
    },
    "/api/orders/{order_id}/events": {
        "get": _op(
            "An order's history, oldest first",
            {"200": _answer("The history", _ref("OrderHistory"))},
            errors=(404,),
            parameters=[_path_param("order_id")],
        ),
    },
    "/api/risk/validate": {
        "post": _op(
            "Dry run of the pre-trade checks",
            {"200": _answer("The verdict", _ref("Validation"))},
            errors=(400, 422),
            body="PlaceOrder",
        ),
    },
    "/api/risk/positions": {
        "get": _op(
            "Positions and balances of an account",
            {"200": _answer("Positions", _ref("Positions"))},
            errors=(404, 422),
            parameters=[_ACCOUNT_QUERY],
        ),
    },
    "/api/risk/limits": {
        "get": _op(
            "An account's limits",
            {"200": _answer("Limits", _ref("AccountLimits"))},
            errors=(404, 422),
            parameters=[_ACCOUNT_QUERY],
        ),
    },
    "/api/risk/limits/{account_id}": {
        "put": _op(
            "Replace an account's limits (absent ones switch off)",
            {"200": _answer("Limits", _ref("AccountLimits"))},
            errors=(400, 404, 422),
            body="Limits",
            parameters=[_path_param("account_id")],
        ),
    },
    "/api/risk/kill-switch": {
        "post": _op(
            "Halt, reduce-only or resume one account, or everything",
            {"200": _answer("The state set", _ref("KillSwitch"))},
            errors=(400, 404, 422),
            body="KillSwitch",
        ),
    },
    "/api/market-data/prices/{symbol}": {
        "get": _op(
            "Last price, best bid and ask, time",
            {"200": _answer("Price", _ref("Price"))},
            errors=(404,),
            parameters=[_path_param("symbol")],
        ),
    },
    "/api/market-data/orderbook/{symbol}": {
        "get": _op(
            "Bids and asks",
            {"200": _answer("The book", _ref("OrderBook"))},
            errors=(404, 422),
            parameters=[
                _path_param("symbol"),
                _query("depth", {"type": "integer", "minimum": 1, "maximum": 500}),
            ],
        ),
    },
    "/ws/market-data": {
        "get": _op(
            "WebSocket of live ticks ({type: tick, ...OrderBook})",
            _WEBSOCKET,
            errors=(422,),
            parameters=[_query("symbols", {"type": "string", "examples": ["BTC-USD,ETH-USD"]})],
        ),
    },
    "/ws/orders": {
        "get": _op(
            "WebSocket of an account's order events ({type: order_event, account_id, order_id, status, event})",
            _WEBSOCKET,
            errors=(422,),
            parameters=[_ACCOUNT_QUERY],
        ),
    },
    "/health": {"get": _op("Liveness", {"200": _answer("Up", _ref("Health"))})},
    "/ready": {
        "get": _op(
            "Readiness: Kafka, MongoDB, Redis reachable and partitions assigned",
            {"200": _answer("Ready", _ref("Ready")), "503": _answer("Not ready", _ref("Ready"))},
        )
    },
    "/metrics": {
        "get": _op(
            "Prometheus text: orders by status, request latency, consumer lag",
            {
                "200": {
                    "description": "Metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        )
    },
    "/api/openapi.json": {
        "get": _op("This document", {"200": _answer("OpenAPI 3.1", {"type": "object"})})
    },
}


def openapi_document() -> dict[str, Any]:
    """The whole document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "oms",
            "version": __version__,
            "description": "Order management for crypto spot trading. Amounts are decimal "
            "strings; errors are application/problem+json (RFC 9457).",
        },
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }


_DOCUMENT = orjson.dumps(openapi_document())


async def get_openapi(_request: web.Request) -> web.Response:
    """``GET /api/openapi.json``."""
    return web.Response(body=_DOCUMENT, content_type="application/json")
