"""The OpenAPI 3.1 document of the API, served at ``/api/openapi.json``.

Written by hand next to the routes (a test proves both list the same paths and methods), so
that the schemas say exactly what the encoders in ``oms.api.encoding`` write.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from oms import __version__
from oms.api.schemas import ID, SCHEMAS, enum_of, ref
from oms.domain.audit import ENTRY_ID
from oms.domain.enums import OrderStatus


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer.update(_json_content(schema))
    return answer


_PROBLEM = {
    "description": "A problem (RFC 9457)",
    "content": {"application/problem+json": {"schema": ref("Problem")}},
}
_UNAVAILABLE = {
    **_PROBLEM,
    "description": (
        "DEPENDENCY_UNAVAILABLE: Redis, Kafka, MongoDB or the engine did not answer in time"
        " (`dependency` says which); try again after `Retry-After` seconds. On POST the outcome"
        " is unknown: retry with the same Idempotency-Key or client_order_id, which names the"
        " same order (its id is derived from them), so a retry never places a second order."
    ),
    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}},
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
        operation["requestBody"] = {"required": True, **_json_content(ref(body))}
    if parameters:
        operation["parameters"] = parameters
    return operation


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_ACCOUNT_QUERY = _query("account_id", ID, required=True)
_WEBSOCKET = {"101": {"description": "Switching protocols: a WebSocket of JSON text messages"}}

PATHS: dict[str, dict[str, Any]] = {
    "/api/instruments": {
        "get": _op(
            "Listed instruments",
            {"200": _answer("Instruments", {"type": "array", "items": ref("Instrument")})},
        ),
    },
    "/api/accounts": {
        "post": _op(
            "Open an account with starting balances and optional limits",
            {"201": _answer("The new account", ref("Account"))},
            errors=(400, 409, 422),
            body="OpenAccount",
        ),
    },
    "/api/accounts/{account_id}": {
        "get": _op(
            "Balances, reservations, positions and PnL",
            {"200": _answer("The account", ref("Account"))},
            errors=(404,),
            parameters=[_path_param("account_id")],
        ),
    },
    "/api/orders": {
        "post": _op(
            "Place an order (answered once the command is on Kafka)",
            {
                "202": _answer(
                    "The order, status NEW (or as it stands, for a repeated key or"
                    " client_order_id with the same body)",
                    ref("Order"),
                )
            },
            # 409 CLIENT_ORDER_ID_IN_USE: the client_order_id names another order of the
            # account; 422 IDEMPOTENCY_KEY_REUSED: the key was used for another body; 422
            # VALIDATION_FAILED with an error coded STOP_PRICE_WRONG_SIDE: a stop the last
            # price has already passed, or MARKET_DATA_STALE: a MARKET order on a symbol whose
            # feed has stopped.
            errors=(400, 409, 413, 422),
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
        "delete": _op(
            "Ask to cancel every open order of an account (of one symbol)",
            {
                "202": _answer(
                    "Cancel-all requested; how many open orders it asked to cancel",
                    ref("CancelAll"),
                )
            },
            errors=(403, 422),
            parameters=[_query("account_id", ID), _query("symbol", {"type": "string"})],
        ),
        "get": _op(
            "Orders, newest first",
            {"200": _answer("A page of orders", ref("OrderPage"))},
            errors=(422,),
            parameters=[
                _query("account_id", ID),
                _query("symbol", {"type": "string"}),
                _query("status", enum_of(OrderStatus)),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                _query("cursor", {"type": "string"}),
            ],
        ),
    },
    "/api/orders/{order_id}": {
        "get": _op(
            "An order",
            {"200": _answer("The order", ref("Order"))},
            errors=(404,),
            parameters=[_path_param("order_id")],
        ),
        "delete": _op(
            "Ask to cancel an order",
            {"202": _answer("Cancel requested; the order as it stood", ref("Order"))},
            errors=(404, 409),
            parameters=[_path_param("order_id")],
        ),
        "patch": _op(
            "Ask to amend an order's quantity and/or price (a resting LIMIT order)",
            {"202": _answer("Amend requested; the order as it stood", ref("Order"))},
            errors=(400, 404, 409, 422),
            body="AmendOrder",
            parameters=[_path_param("order_id")],
        ),
    },
    "/api/orders/{order_id}/events": {
        "get": _op(
            "An order's history, oldest first",
            {"200": _answer("The history", ref("OrderHistory"))},
            errors=(404,),
            parameters=[_path_param("order_id")],
        ),
    },
    "/api/risk/validate": {
        "post": _op(
            "Dry run of the pre-trade checks",
            {"200": _answer("The verdict", ref("Validation"))},
            errors=(400, 422),
            body="PlaceOrder",
        ),
    },
    "/api/risk/positions": {
        "get": _op(
            "Positions and balances of an account",
            {"200": _answer("Positions", ref("Positions"))},
            errors=(404, 422),
            parameters=[_ACCOUNT_QUERY],
        ),
    },
    "/api/risk/limits": {
        "get": _op(
            "An account's limits",
            {"200": _answer("Limits", ref("AccountLimits"))},
            errors=(404, 422),
            parameters=[_ACCOUNT_QUERY],
        ),
    },
    "/api/risk/limits/{account_id}": {
        "put": _op(
            "Replace an account's limits (absent ones switch off)",
            {"200": _answer("Limits", ref("AccountLimits"))},
            errors=(400, 404, 422),
            body="Limits",
            parameters=[_path_param("account_id")],
        ),
    },
    "/api/risk/global-limits": {
        "get": _op(
            "The firm-wide caps and what every replica's accounts hold against them",
            {"200": _answer("Caps and usage", ref("GlobalLimitsState"))},
        ),
        "put": _op(
            "Replace the firm-wide caps per symbol and per group of accounts (absent: off)",
            {"200": _answer("Caps and usage", ref("GlobalLimitsState"))},
            errors=(400, 422),
            body="GlobalLimits",
        ),
    },
    "/api/risk/kill-switch": {
        "post": _op(
            "Halt, reduce-only or resume one account, or everything",
            {"200": _answer("The state set", ref("KillSwitch"))},
            errors=(400, 404, 422),
            body="KillSwitch",
        ),
    },
    "/api/audit": {
        "get": _op(
            "Who opened accounts and changed limits, kill switches and keys, newest first",
            {"200": _answer("A page of audit entries", ref("AuditPage"))},
            errors=(422,),
            parameters=[
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                _query("cursor", {"type": "string", "pattern": f"^{ENTRY_ID.pattern}$"}),
            ],
        ),
    },
    "/api/venue/reconciliation": {
        "get": _op(
            "What reconciliation with the venue found: the last run and discrepancies by kind",
            {"200": _answer("The reconciliation report", ref("Reconciliation"))},
        ),
    },
    "/api/market-data/prices/{symbol}": {
        "get": _op(
            "Last price, best bid and ask, time",
            {"200": _answer("Price", ref("Price"))},
            errors=(404,),
            parameters=[_path_param("symbol")],
        ),
    },
    "/api/market-data/orderbook/{symbol}": {
        "get": _op(
            "Bids and asks",
            {"200": _answer("The book", ref("OrderBook"))},
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
            errors=(400, 422),  # 400: a plain GET, not a WebSocket upgrade
            parameters=[_query("symbols", {"type": "string", "examples": ["BTC-USD,ETH-USD"]})],
        ),
    },
    "/ws/orders": {
        "get": _op(
            "WebSocket of an account's order events ({type: order_event, account_id, order_id, status, event})",
            _WEBSOCKET,
            errors=(400, 422),  # 400: a plain GET, not a WebSocket upgrade
            parameters=[_query("account_id", ID)],
        ),
    },
    "/api/me": {
        "get": _op(
            "Who the credential says the caller is: role, accounts, key id or JWT subject",
            {
                "200": _answer(
                    "The caller",
                    {
                        "type": "object",
                        "required": ["role", "accounts", "key_id", "subject"],
                        "properties": {
                            "role": {"enum": ["admin", "risk", "trader", "viewer"]},
                            "accounts": {"type": "array", "items": {"type": "string"}},
                            "key_id": {"type": ["string", "null"]},
                            "subject": {"type": ["string", "null"]},
                        },
                        "additionalProperties": False,
                    },
                )
            },
        ),
    },
    "/api/cluster": {
        "get": _op(
            "This replica, its partitions of orders, and the owner map: every live replica"
            " (name, internal address, partitions, last heartbeat) and the partitions none holds",
            {"200": _answer("The cluster as this replica sees it", ref("Cluster"))},
            errors=(503,),
        ),
    },
    "/api/ws-ticket": {
        "post": _op(
            "A single-use ticket for a browser's WebSocket: open /ws/...?ticket=<ticket> within"
            " expires_in_s (browsers cannot send Authorization on a WebSocket)",
            {
                "200": _answer(
                    "The ticket",
                    {
                        "type": "object",
                        "required": ["ticket", "expires_in_s"],
                        "properties": {
                            "ticket": {"type": "string"},
                            "expires_in_s": {"type": "integer", "minimum": 1},
                        },
                        "additionalProperties": False,
                    },
                )
            },
        ),
    },
    "/health": {
        "get": _op(
            "Liveness: the event loop turns, no actor failed, the engine thread makes progress",
            {"200": _answer("Up", ref("Health")), "503": _answer("Failed", ref("Health"))},
        )
    },
    "/ready": {
        "get": _op(
            "Readiness: Kafka, MongoDB, Redis reachable and partitions assigned",
            {"200": _answer("Ready", ref("Ready")), "503": _answer("Not ready", ref("Ready"))},
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


# Order entry and order reads wait on Redis, Kafka and the engine: each may answer 503.
for _path, _method in (
    ("/api/orders", "post"),
    ("/api/orders", "get"),
    ("/api/orders/{order_id}", "get"),
    ("/api/orders/{order_id}", "delete"),
    ("/api/orders/{order_id}/events", "get"),
):
    PATHS[_path][_method]["responses"]["503"] = _UNAVAILABLE

# Reads of an account are its owner's: answered here or forwarded to the replica that owns it.
_OWNER_UNAVAILABLE = (
    "OWNER_UNAVAILABLE: the replica that owns the account is not known now (a rebalance, a"
    " replica that died) or did not answer within OMS_FORWARD_TIMEOUT_S; never a stale"
    " answer: try again after `Retry-After` seconds"
)
for _path, _method in (
    ("/api/accounts/{account_id}", "get"),
    ("/api/risk/positions", "get"),
    ("/api/risk/limits", "get"),
    ("/api/risk/validate", "post"),
    ("/api/orders", "get"),
    ("/api/orders/{order_id}", "get"),
    ("/api/orders/{order_id}/events", "get"),
):
    _known = PATHS[_path][_method]["responses"].get("503")
    PATHS[_path][_method]["responses"]["503"] = {
        **(_known or _UNAVAILABLE),
        "description": (_known or {"description": ""})["description"]
        + (" Or " if _known else "")
        + _OWNER_UNAVAILABLE,
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}},
    }

# Who may call: every /api and /ws route takes a bearer credential (an API key or a JWT; a
# WebSocket also a ticket), and may answer 401 (none, or a bad one), 403 (a role or an account
# the caller lacks) and 429 (over a rate limit, with Retry-After). The open ones take none.
_OPEN = frozenset({"/health", "/ready", "/metrics", "/api/openapi.json"})
_UNAUTHENTICATED = {
    **_PROBLEM,
    "description": "MISSING_CREDENTIAL or INVALID_CREDENTIAL: send Authorization: Bearer"
    " <API key or JWT> (unknown, revoked and expired credentials prove nobody)",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
}
_FORBIDDEN = {
    **_PROBLEM,
    "description": "ROLE_FORBIDS_ACTION or ACCOUNT_NOT_PERMITTED: the caller's role or accounts"
    " do not allow this (another account's order answers 404 instead)",
}
_TOO_MANY = {
    **_PROBLEM,
    "description": "Over a rate limit (per key, per client address); retry after Retry-After",
    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}},
}
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "oms_<key_id>_<secret>",
        "description": "An API key made by `oms keys create`",
    },
    "jwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT from the configured OAuth2/OIDC provider (role and accounts in"
        " its claims)",
    },
    "wsTicket": {
        "type": "apiKey",
        "in": "query",
        "name": "ticket",
        "description": "WebSockets only: a ticket from POST /api/ws-ticket, good once",
    },
}
_BEARER: list[dict[str, list[str]]] = [{"apiKey": []}, {"jwt": []}]
for _path, _item in PATHS.items():
    for _operation in _item.values():
        if _path in _OPEN:
            _operation["security"] = []
            continue
        _operation["security"] = (
            [*_BEARER, {"wsTicket": []}] if _path.startswith("/ws/") else _BEARER
        )
        _operation["responses"].update(
            {"401": _UNAUTHENTICATED, "403": _FORBIDDEN, "429": _TOO_MANY}
        )


def openapi_document() -> dict[str, Any]:
    """The whole document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "oms",
            "version": __version__,
            "description": "Order management for crypto spot trading. Amounts are decimal "
            "strings; derived ones (average prices, PnL) are rounded half-even to the "
            "instrument's tick precision, booked ones carry every digit. Errors are "
            "application/problem+json (RFC 9457).",
        },
        "paths": PATHS,
        "security": _BEARER,
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }


_DOCUMENT = orjson.dumps(openapi_document())


async def get_openapi(_request: web.Request) -> web.Response:
    """``GET /api/openapi.json``."""
    return web.Response(body=_DOCUMENT, content_type="application/json")
