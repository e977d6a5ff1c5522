"""Order entry and queries: place, get, list, cancel, history.

``POST`` and ``DELETE`` turn a request into a command on the ``CommandBus`` and answer 202 once
the bus holds it; the engine applies it later (on whichever replica owns the account). A placed
order is cached before the 202, so a GET after the 202 finds it (read-your-writes).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import orjson
from aiohttp import web

from oms import correlation
from oms.api import identity
from oms.api.encoding import event_json, order_json
from oms.api.forwarding import from_owner
from oms.api.ids import new_id, order_id_for
from oms.api.order_request import (
    OrderRequest,
    decode_json_object,
    parse_amend_request,
    parse_order_request,
)
from oms.api.outages import Dependency
from oms.api.params import bounded_int
from oms.api.problems import (
    DependencyUnavailable,
    FieldError,
    Problem,
    conflict,
    invalid_body,
    invalid_query,
    not_found,
)
from oms.api.rate_limits import ADMISSION_KEY, counts_itself
from oms.api.services import SERVICES_KEY, ApiServices, OrderEntry
from oms.domain.commands import AmendOrder, CancelAll, CancelOrder, PlaceOrder, new_place_order
from oms.domain.enums import OrderStatus, OrderType, Side
from oms.domain.instruments import Instrument
from oms.domain.order_terms import stop_on_wrong_side
from oms.domain.orders import Order
from oms.domain.reasons import OrderCheckReason
from oms.domain.transitions import InvalidTransition, Trigger, next_status
from oms.engine.ports import Claim, OrderQuery

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# A duplicate that finds no order yet waits this long for the first request to send and cache it
# (a send takes a few milliseconds), then sends it again.
_DUPLICATE_WAIT_S = (0.02, 0.05, 0.1, 0.2)
_ZERO = Decimal(0)
T = TypeVar("T")


def _json(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def new_order(request: OrderRequest, order_id: str, created_at: float) -> PlaceOrder:
    """The command for a validated request (its id derived from the order's: replay is harmless),
    named by the HTTP request that sends it (``oms.correlation``)."""
    return new_place_order(
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
        request_id=correlation.get("request_id"),
        post_only=request.post_only,
        stop_price=request.stop_price,
        expire_at=request.expire_at,
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
        post_only=command.post_only,
        stop_price=command.stop_price,
        expire_at=command.expire_at,
    )


def _header_key(request: web.Request) -> str | None:
    """The request's ``Idempotency-Key``, checked (None: there is none)."""
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is not None and not _KEY.fullmatch(header):
        raise invalid_query(
            [FieldError(IDEMPOTENCY_HEADER, "must be 1-128 printable ASCII characters")]
        )
    return header


def _claim_keys(order: OrderRequest, header: str | None) -> list[tuple[str, str]]:
    """``(what, key)`` of each claim the request makes, scoped to its account: its client
    order id (unique per account, key or not) and its idempotency key; none for neither."""
    claims = []
    if header is not None:
        claims.append((IDEMPOTENCY_HEADER, f"{order.account_id}:key:{header}"))
    if order.client_order_id is not None:
        claims.append(("client_order_id", f"{order.account_id}:client:{order.client_order_id}"))
    return claims


def _holder(claims: list[tuple[str, str]], held: list[Claim], fingerprint: bytes) -> str | None:
    """The order an earlier request placed with these claims (None: they are all this one's).

    A claim held for another body refuses the request, the key first: the same idempotency key
    for another order is 422 (the client's bug), the same client order id for another order is
    409 (that order exists). Claims are made together, not atomically, so a refused request
    may leave the other one taken for its body; a later request can only meet it with the same
    body (it then replays an order that does not exist yet, which places it) or be refused.
    """
    for (what, _), claim in zip(claims, held, strict=True):
        if claim.first or claim.fingerprint == fingerprint:
            continue
        if what == IDEMPOTENCY_HEADER:
            raise Problem(
                422,
                "IDEMPOTENCY_KEY_REUSED",
                "Idempotency key reused",
                "this idempotency key was used for a different order",
            )
        raise conflict(
            "CLIENT_ORDER_ID_IN_USE",
            "this client_order_id names another order of the account (send the same body to "
            "get that order back)",
        )
    # Every held claim is this body's: the last one names the order (the client order id's,
    # when there is one: the key's holder can only differ for claims made before ids were
    # derived, and then it is still the order this body placed).
    holders = [claim.order_id for claim in held if not claim.first]
    return holders[-1] if holders else None


def _accepted(order: Order, instruments: Mapping[str, Instrument]) -> web.Response:
    return _json(
        order_json(order, instruments),
        status=202,
        headers={"Location": f"/api/orders/{order.order_id}"},
    )


class MarketView(Protocol):
    """What the door checks a new order against: the listed instruments, the last price (a
    stop's side) and whether a symbol's feed has stopped (a MARKET order). The ``Engine``."""

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        """The listed instruments by symbol."""

    def last_price(self, symbol: str) -> Decimal | None:
        """The last price of ``symbol`` (None: none yet)."""

    def market_data_stale(self, symbol: str) -> bool:
        """Whether ``symbol``'s feed has stopped."""


FirstAnswer = Callable[[OrderRequest, str, float], Awaitable[web.Response]]
"""The answer to a request whose claims an earlier request holds: ``(request, the order it
names, deadline)``; here the first order itself, in a door process its engine's answer."""


async def place_order(request: web.Request) -> web.Response:
    """``POST /api/orders``: validate, claim, send, cache, answer 202 with the NEW order.

    The 202 comes only once Kafka holds the command (acks=all), and the order is cached only
    then, so a cached order was always sent. Redis, Kafka or the engine not answering within
    ``dependency_timeout_s`` is a 503 with ``Retry-After``: the outcome is unknown, and a retry
    with the same key or client order id names the same order (its id is derived from them),
    so it finds or replays that order and can never make a second.
    """
    services = request.app[SERVICES_KEY]
    order_request = await parse_placement(request, services.engine.instruments, services.clock)

    async def first_answer(order: OrderRequest, holder: str, deadline: float) -> web.Response:
        found = await _first_answer(services, order, holder, deadline)
        return _accepted(found, services.engine.instruments)

    return await place(request, order_request, services, services.engine, first_answer)


async def parse_placement(
    request: web.Request, instruments: Mapping[str, Instrument], clock: Callable[[], float]
) -> OrderRequest:
    """The request's order, checked (422 with every field error), for an account the caller
    may act for (403)."""
    body = decode_json_object(await request.read())
    order_request = parse_order_request(body, instruments, clock())
    identity.acting_account(request, order_request.account_id)
    return order_request


async def place(
    request: web.Request,
    order_request: OrderRequest,
    services: OrderEntry,
    market: MarketView,
    first_answer: FirstAnswer,
) -> web.Response:
    """Claim, check against the market, send, cache and answer 202 (``place_order``'s work,
    shared with a door process: ``oms.api.door_worker``)."""
    legs = services.legs.durations
    started = time.perf_counter()
    header = _header_key(request)
    deadline = services.deadline()
    order_id = order_id_for(order_request.account_id, order_request.client_order_id, header)
    correlation.bind(order_id=order_id, command_id=f"place:{order_id}")
    claims = _claim_keys(order_request, header)
    admission = request.get(ADMISSION_KEY)  # the request's rate-limit count, if not made yet
    holder: str | None = None
    async with services.waits(deadline) as waits:  # one timer for the claim and the send
        if claims:
            fingerprint = order_request.fingerprint()
            claiming = time.perf_counter()
            keys = [key for _, key in claims]
            held = await services.claim(keys, order_id, fingerprint, waits, admission)
            legs["claim"].observe(time.perf_counter() - claiming)
            holder = _holder(claims, held, fingerprint)
        elif admission is not None:
            await admission.settle()
        if holder is None:
            _check_stop_side(order_request, market.last_price(order_request.symbol))
            if order_request.type is OrderType.MARKET:
                _check_market_data(order_request, market.market_data_stale(order_request.symbol))
            command = new_order(order_request, order_id, services.clock())
            sending = time.perf_counter()
            await services.send_within([command], waits)
    if holder is not None:  # answered outside the timer: a door relays it, on its own timeout
        return await first_answer(order_request, holder, deadline)
    caching = time.perf_counter()
    legs["produce"].observe(caching - sending)
    order = as_new(command)
    await services.remember(order, deadline)
    answered = time.perf_counter()
    legs["cache"].observe(answered - caching)
    legs["post"].observe(answered - started)
    return _accepted(order, market.instruments)


def _check_stop_side(order: OrderRequest, last_price: Decimal | None) -> None:
    """422 ``STOP_PRICE_WRONG_SIDE`` for a stop the last price has already passed (a BUY stop
    at or below it, a SELL stop at or above: ``oms.domain.order_terms.stop_on_wrong_side``).

    Checked after the claims, for a new order only: a repeated request answers the order its
    first one placed, even when the market has since moved past its stop (it may well have
    triggered it). A refused body leaves its claims held; sent again, it goes on to the engine,
    whose venue applies the same rule on arrival (REJECTED with the same reason code).
    """
    stop_price = order.stop_price
    if stop_price is None or not stop_on_wrong_side(order.side, stop_price, last_price):
        return
    above = "above" if order.side is Side.BUY else "below"
    raise invalid_body(
        [
            FieldError(
                "stop_price",
                f"a {order.side} stop must be {above} the last price {last_price}: "
                "it would trigger at once",
                code=OrderCheckReason.STOP_PRICE_WRONG_SIDE,
            )
        ]
    )


def _check_market_data(order: OrderRequest, stale: bool) -> None:
    """422 ``MARKET_DATA_STALE`` for a MARKET order on a symbol whose feed has stopped
    (``oms.marketdata.freshness``): it would fill against a book that may no longer be the
    market. Like the stop's side, checked for a new order only; one that reaches the venue
    anyway (a Kafka command, the feed stopping on the way) is REJECTED there with the same code.
    """
    if not stale:
        return
    raise invalid_body(
        [
            FieldError(
                "type",
                f"{order.symbol} has had no market data for longer than the stale bound: "
                "MARKET orders wait until its feed is back (a LIMIT order is taken)",
                code=OrderCheckReason.MARKET_DATA_STALE,
            )
        ]
    )


async def _first_answer(
    services: ApiServices, request: OrderRequest, order_id: str, deadline: float
) -> Order:
    """The order an earlier request with the same key (or client order id) and body placed.

    Found in the engine or the cache, it was sent: answer it as it stands. Found nowhere, the
    first request may still be between its claim and its send, or have died there (a crash, a
    503): wait a little, then send the same command again. The engine places an order id once,
    so a resend is harmless, and it is what keeps a claim from ever answering an order that
    was never sent.
    """
    for pause in (0.0, *_DUPLICATE_WAIT_S):
        if pause:
            await asyncio.sleep(pause)
        try:
            found = await services.find_order(order_id, deadline)
        except DependencyUnavailable:
            break  # the engine cannot say: sending again is the safe answer
        if found is not None:
            return found
    command = new_order(request, order_id, services.clock())
    await services.send([command], deadline)
    order = as_new(command)
    await services.remember(order, deadline)
    return order


async def _visible_order(request: web.Request) -> Order:
    services = request.app[SERVICES_KEY]
    order_id = request.match_info["order_id"]
    correlation.bind(order_id=order_id)
    order = await services.find_order(order_id)
    if order is None or not identity.may_act_for(request, order.account_id):
        raise not_found(f"order {order_id}")
    correlation.bind(account_id=order.account_id)
    return order


async def get_order(request: web.Request) -> web.Response:
    """``GET /api/orders/{order_id}``: the owner's state of the order.

    What this replica finds of the order (its store, MongoDB, or the NEW cached at the 202)
    names the account; the answer is the owner's, so a NEW cached here is never served once
    the owner holds a later state.
    """
    instruments = request.app[SERVICES_KEY].engine.instruments
    order = await _visible_order(request)
    if (answer := await from_owner(request, order.account_id)) is not None:
        return answer
    return _json(order_json(order, instruments))


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
        request_id=correlation.get("request_id"),
    )
    correlation.bind(command_id=command.command_id)
    await services.send([command], services.deadline())
    return _json(order_json(order, services.engine.instruments), status=202)


# IN_DOUBT is open: its cancel waits for the venue's word on it.
_OPEN = (
    OrderStatus.NEW,
    OrderStatus.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.IN_DOUBT,
)


async def cancel_all_orders(request: web.Request) -> web.Response:
    """``DELETE /api/orders?account_id=..[&symbol=..]``: 202 with how many open orders it asked
    to cancel (those the account had as the request came; the engine cancels what it finds
    open when the command reaches it)."""
    services = request.app[SERVICES_KEY]
    unknown = sorted(set(request.query) - {"account_id", "symbol"})
    if unknown:
        raise invalid_query([FieldError(name, "unknown parameter") for name in unknown])
    account_id = identity.query_account(request, required=True)
    assert account_id is not None  # required=True answers 422 instead of None
    symbol = request.query.get("symbol")
    if symbol is not None and symbol not in services.engine.instruments:
        raise invalid_query([FieldError("symbol", "is not a listed instrument")])
    asked = 0
    for status in _OPEN:
        query = OrderQuery(account_id=account_id, symbol=symbol, status=status, limit=10**6)
        found: Sequence[Order] = await _read(services, services.engine.list_orders(query))
        asked += len(found)
    command = CancelAll(
        command_id=f"cancel-all:{new_id()}",
        account_id=account_id,
        requested_at=services.clock(),
        symbol=symbol,
        request_id=correlation.get("request_id"),
    )
    correlation.bind(command_id=command.command_id)
    await services.send([command], services.deadline())
    return _json({"account_id": account_id, "symbol": symbol, "requested": asked}, status=202)


async def amend_order(request: web.Request) -> web.Response:
    """``PATCH /api/orders/{order_id}``: 202 amend requested (``quantity`` and/or ``price``);
    409 when the order can no longer be amended; 422 for a body it could never take.

    The order decides on the amend with its state when the command reaches it: an amend it
    refuses then (risk's limits, another amend in flight, fills meanwhile) is an
    ``AmendRejected`` event in its history, and the order stays as it was.
    """
    services = request.app[SERVICES_KEY]
    body = decode_json_object(await request.read())
    order = await _visible_order(request)
    instrument = services.engine.instruments.get(order.symbol)
    if instrument is None:  # listed when it was placed: a listing changed under it
        raise conflict("ORDER_NOT_AMENDABLE", f"{order.symbol} is no longer listed")
    amend = parse_amend_request(body, instrument)
    try:
        next_status(order.status, Trigger.AMEND)
    except InvalidTransition:
        if order.status is not OrderStatus.NEW:  # a NEW order may be accepted by now
            raise conflict(
                "ORDER_NOT_AMENDABLE", f"order {order.order_id} is {order.status.value}"
            ) from None
    if order.type is not OrderType.LIMIT:
        raise conflict("ORDER_NOT_AMENDABLE", f"a {order.type.value} order is not amended")
    if amend.quantity is not None and amend.quantity <= order.filled_quantity:
        raise invalid_body(
            [FieldError("quantity", f"must be above the filled quantity {order.filled_quantity}")]
        )
    command = AmendOrder(
        command_id=f"amend:{new_id()}",
        order_id=order.order_id,
        account_id=order.account_id,
        requested_at=services.clock(),
        quantity=amend.quantity,
        price=amend.price,
        request_id=correlation.get("request_id"),
    )
    correlation.bind(command_id=command.command_id)
    await services.send([command], services.deadline())
    return _json(order_json(order, services.engine.instruments), status=202)


async def order_events(request: web.Request) -> web.Response:
    """``GET /api/orders/{order_id}/events``: the history, oldest first."""
    services = request.app[SERVICES_KEY]
    order = await _visible_order(request)
    if (answer := await from_owner(request, order.account_id)) is not None:
        return answer
    events = await _read(services, services.engine.order_events(order.order_id))
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
    """``GET /api/orders``: ``{items, next_cursor}``, newest first.

    One account's list is its owner's (its live orders are there); a list across every account
    (no ``account_id``, a caller that reaches them all) is read here, from what is durable.
    """
    services = request.app[SERVICES_KEY]
    query = _list_query(request)
    if query.account_id is not None and (answer := await from_owner(request, query.account_id)):
        return answer
    orders = await _read(services, services.engine.list_orders(query))
    instruments = services.engine.instruments
    items: list[dict[str, Any]] = [order_json(o, instruments) for o in orders]
    next_cursor = encode_cursor(orders[-1]) if len(orders) >= query.limit else None
    return _json({"items": items, "next_cursor": next_cursor})


async def _read(services: ApiServices, call: Awaitable[T]) -> T:
    """An order read (the store's memory, else MongoDB off the engine's thread), bounded like
    every call the door waits on: a MongoDB that does not answer is a 503 naming it."""
    settings = services.settings
    return await services.outages.guard(
        Dependency.ENGINE, call, settings.dependency_timeout_s, settings.retry_after_s
    )


def add_order_routes(app: web.Application) -> None:
    """Mount the order routes."""
    router = app.router
    router.add_post("/api/orders", counts_itself(place_order))
    router.add_get("/api/orders", list_orders, allow_head=False)
    router.add_delete("/api/orders", cancel_all_orders)
    router.add_get("/api/orders/{order_id}", get_order, allow_head=False)
    router.add_delete("/api/orders/{order_id}", cancel_order)
    router.add_patch("/api/orders/{order_id}", amend_order)
    router.add_get("/api/orders/{order_id}/events", order_events, allow_head=False)
