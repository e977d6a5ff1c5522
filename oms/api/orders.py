"""Order entry and queries: place, get, list, cancel, history.

``POST`` and ``DELETE`` turn a request into a command on the ``CommandBus`` and answer 202 once
the bus holds it; the engine applies it later (on whichever replica owns the account). The order
is cached right away, so a GET after the 202 finds it (read-your-writes).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from oms.actors.aio import reply
from oms.api import identity
from oms.api.encoding import event_json, order_json
from oms.api.ids import new_id
from oms.api.order_request import OrderRequest, decode_json_object, parse_order_request
from oms.api.params import bounded_int
from oms.api.problems import FieldError, Problem, conflict, invalid_query, not_found
from oms.api.services import SERVICES_KEY, ApiServices
from oms.domain.commands import CancelOrder, PlaceOrder
from oms.domain.enums import OrderStatus
from oms.domain.instruments import Instrument
from oms.domain.orders import Order
from oms.domain.transitions import InvalidTransition, Trigger, next_status
from oms.store.ports import OrderQuery

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# A duplicate that finds no order yet waits this long for the first request to cache it.
_DUPLICATE_WAIT_S = (0.02, 0.05, 0.1, 0.2)
_ZERO = Decimal(0)


def _json(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def new_order(request: OrderRequest, order_id: str, created_at: float) -> PlaceOrder:
    """The command for a validated request (its id derived from the order's: replay is harmless)."""
    return PlaceOrder(
        command_id=f"place:{order_id}",
        order_id=order_id,
        client_order_id=request.client_order_id or order_id,
        account_id=request.account_id,
        symbol=request.symbol,
        side=request.side,
        type=request.type,
        quantity=request.quantity,
        price=request.price,
        time_in_force=request.time_in_force,
        created_at=created_at,
    )


def as_new(command: PlaceOrder) -> Order:
    """The order as the engine will create it (NEW, version 1), for the 202 and the cache."""
    return Order(
        order_id=command.order_id,
        client_order_id=command.client_order_id,
        account_id=command.account_id,
        symbol=command.symbol,
        side=command.side,
        type=command.type,
        quantity=command.quantity,
        price=command.price,
        time_in_force=command.time_in_force,
        status=OrderStatus.NEW,
        filled_quantity=_ZERO,
        filled_notional=_ZERO,
        fees=_ZERO,
        average_fill_price=None,
        protection_price=None,
        reject_reason=None,
        created_at=command.created_at,
        updated_at=command.created_at,
        version=1,
    )


def _idempotency_key(request: web.Request, order: OrderRequest) -> str | None:
    """The key this request is deduplicated by, scoped to its account (None: not deduplicated)."""
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is not None:
        if not _KEY.fullmatch(header):
            raise invalid_query(
                [FieldError(IDEMPOTENCY_HEADER, "must be 1-128 printable ASCII characters")]
            )
        return f"{order.account_id}:key:{header}"
    if order.client_order_id is not None:
        return f"{order.account_id}:client:{order.client_order_id}"
    return None


def _accepted(order: Order, instruments: Mapping[str, Instrument]) -> web.Response:
    return _json(
        order_json(order, instruments),
        status=202,
        headers={"Location": f"/api/orders/{order.order_id}"},
    )


async def place_order(request: web.Request) -> web.Response:
    """``POST /api/orders``: validate, deduplicate, cache, send, answer 202 with the NEW order."""
    services = request.app[SERVICES_KEY]
    body = decode_json_object(await request.read())
    order_request = parse_order_request(body, services.engine.instruments)
    identity.acting_account(request, order_request.account_id)
    key = _idempotency_key(request, order_request)
    command = new_order(order_request, new_id(), services.clock())
    order = as_new(command)
    if key is None:
        await services.cache.put(order, services.settings.order_cache_ttl_s)
    else:
        fingerprint = order_request.fingerprint()
        claim = await services.claim(key, order, fingerprint)
        if not claim.first:
            if claim.fingerprint != fingerprint:
                raise Problem(
                    422,
                    "IDEMPOTENCY_KEY_REUSED",
                    "Idempotency key reused",
                    "this key (or client_order_id) was used for a different order",
                )
            order = await _first_answer(services, order_request, claim.order_id)
            return _accepted(order, services.engine.instruments)
    await services.bus.send([command])
    return _accepted(order, services.engine.instruments)


async def _first_answer(services: ApiServices, request: OrderRequest, order_id: str) -> Order:
    """The order an earlier request with the same key and body placed.

    If it is nowhere yet, the first request may be between its claim and its cache write; wait
    a little, then send the same command again: the engine places an order id once, so a resend
    is harmless and covers a first request that died before sending.
    """
    for pause in (0.0, *_DUPLICATE_WAIT_S):
        if pause:
            await asyncio.sleep(pause)
        found = await services.find_order(order_id)
        if found is not None:
            return found
    command = new_order(request, order_id, services.clock())
    order = as_new(command)
    await services.cache.put(order, services.settings.order_cache_ttl_s)
    await services.bus.send([command])
    return order


async def _visible_order(request: web.Request) -> Order:
    services = request.app[SERVICES_KEY]
    order_id = request.match_info["order_id"]
    order = await services.find_order(order_id)
    if order is None or not identity.may_act_for(request, order.account_id):
        raise not_found(f"order {order_id}")
    return order


async def get_order(request: web.Request) -> web.Response:
    """``GET /api/orders/{order_id}``."""
    instruments = request.app[SERVICES_KEY].engine.instruments
    return _json(order_json(await _visible_order(request), instruments))


async def cancel_order(request: web.Request) -> web.Response:
    """``DELETE /api/orders/{order_id}``: 202 cancel requested; 409 when it can no longer cancel."""
    services = request.app[SERVICES_KEY]
    order = await _visible_order(request)
    try:
        next_status(order.status, Trigger.CANCEL)
    except InvalidTransition:
        raise conflict(
            "ORDER_NOT_CANCELLABLE", f"order {order.order_id} is {order.status.value}"
        ) from None
    command = CancelOrder(
        command_id=f"cancel:{new_id()}",
        order_id=order.order_id,
        account_id=order.account_id,
        requested_at=services.clock(),
    )
    await services.bus.send([command])
    return _json(order_json(order, services.engine.instruments), status=202)


async def order_events(request: web.Request) -> web.Response:
    """``GET /api/orders/{order_id}/events``: the history, oldest first."""
    services = request.app[SERVICES_KEY]
    order = await _visible_order(request)
    events = await reply(services.engine.order_events(order.order_id))
    return _json({"order_id": order.order_id, "events": [event_json(e) for e in events]})


def encode_cursor(order: Order) -> str:
    """An opaque cursor: where the next page starts (after this order, newest first)."""
    raw = orjson.dumps([order.created_at, order.order_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The position a cursor names, or a 422 naming the cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, order_id = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise invalid_query([FieldError("cursor", "is not a cursor this API gave out")]) from None
    if not isinstance(created_at, int | float) or not isinstance(order_id, str):
        raise invalid_query([FieldError("cursor", "is not a cursor this API gave out")])
    return float(created_at), order_id


def _list_query(request: web.Request) -> OrderQuery:
    query = request.query
    errors: list[FieldError] = [
        FieldError(name, "unknown parameter")
        for name in sorted(set(query) - {"account_id", "symbol", "status", "limit", "cursor"})
    ]
    status: OrderStatus | None = None
    if "status" in query:
        if query["status"] not in OrderStatus.__members__:
            errors.append(FieldError("status", "must be one of " + ", ".join(OrderStatus)))
        else:
            status = OrderStatus(query["status"])
    limit = bounded_int(query, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT, errors=errors)
    if errors:
        raise invalid_query(errors)
    before = decode_cursor(query["cursor"]) if "cursor" in query else None
    return OrderQuery(
        account_id=identity.query_account(request, required=False),
        symbol=query.get("symbol"),
        status=status,
        limit=limit,
        before=before,
    )


async def list_orders(request: web.Request) -> web.Response:
    """``GET /api/orders``: ``{items, next_cursor}``, newest first."""
    services = request.app[SERVICES_KEY]
    query = _list_query(request)
    orders = await reply(services.engine.list_orders(query))
    instruments = services.engine.instruments
    items: list[dict[str, Any]] = [order_json(o, instruments) for o in orders]
    next_cursor = encode_cursor(orders[-1]) if len(orders) >= query.limit else None
    return _json({"items": items, "next_cursor": next_cursor})


def add_order_routes(app: web.Application) -> None:
    """Mount the order routes."""
    router = app.router
    router.add_post("/api/orders", place_order)
    router.add_get("/api/orders", list_orders, allow_head=False)
    router.add_get("/api/orders/{order_id}", get_order, allow_head=False)
    router.add_delete("/api/orders/{order_id}", cancel_order)
    router.add_get("/api/orders/{order_id}/events", order_events, allow_head=False)
