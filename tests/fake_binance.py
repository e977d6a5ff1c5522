"""A local fake of Binance spot's REST API: the subset ccxt calls, served on 127.0.0.1.

What ccxt 4.5 hits (found by running it against this server): ``GET /api/v3/exchangeInfo``
(``load_markets``), ``POST/GET/DELETE /api/v3/order``, ``GET /api/v3/openOrders`` and
``GET /api/v3/myTrades``. Signed requests must carry ``X-MBX-APIKEY`` (the signature itself is
not checked). Errors are Binance's real payloads: ``-2010`` insufficient balance, ``-2013``
order does not exist, ``-2011`` unknown order on cancel, HTTP 429 ``-1003``.

The exchange is a small one: a MARKET order fills at once at the symbol's price, a LIMIT order
that crosses it fills at once at its own price, anything else rests until ``trade_at`` moves the
price through it. Balances are checked and locked like Binance's (free and locked per asset).
A test scripts faults with ``fail_next`` (an error answer for the next request to a path) and
``hang_next_place`` (the order is placed, but its answer never comes in time).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

FEE_RATE = Decimal("0.001")
INSUFFICIENT = {"code": -2010, "msg": "Account has insufficient balance for requested action."}
NOT_FOUND = {"code": -2013, "msg": "Order does not exist."}
UNKNOWN_ORDER = {"code": -2011, "msg": "Unknown order sent."}
RATE_LIMITED = {
    "code": -1003,
    "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API.",
}
NO_KEY = {"code": -2014, "msg": "API-key format invalid."}


def _text(amount: Decimal) -> str:
    return f"{amount:.8f}"


@dataclass
class FakeOrder:
    """One order at the fake exchange, in Binance's terms."""

    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    created_ms: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    updated_ms: int = 0

    def as_json(self) -> dict[str, Any]:
        """Binance's order answer (``GET /api/v3/order``)."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": _text(self.price),
            "origQty": _text(self.quantity),
            "executedQty": _text(self.executed),
            "cummulativeQuoteQty": _text(self.quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": self.created_ms,
            "updateTime": self.updated_ms or self.created_ms,
            "isWorking": True,
            "workingTime": self.created_ms,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


@dataclass
class FakeBinance:
    """The fake exchange and its HTTP server; ``url`` is set once ``start`` has run."""

    prices: dict[str, Decimal] = field(
        default_factory=lambda: {"BTCUSDT": Decimal("50000"), "ETHUSDT": Decimal("3000")}
    )
    balances: dict[str, Decimal] = field(
        default_factory=lambda: {
            "USDT": Decimal("1000000"),
            "BTC": Decimal(10),
            "ETH": Decimal(100),
        }
    )
    hang_s: float = 30.0
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    locked: dict[str, Decimal] = field(default_factory=dict)
    hang_next_place: bool = False
    url: str = ""
    _failures: dict[tuple[str, str], list[tuple[int, Mapping[str, Any]]]] = field(
        default_factory=dict
    )
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _runner: web.AppRunner | None = None

    # --- the test's handles ---------------------------------------------------------------

    def fail_next(self, method: str, path: str, status: int, payload: Mapping[str, Any]) -> None:
        """Answer the next ``method path`` request with ``status`` and ``payload`` (unchanged)."""
        self._failures.setdefault((method, path), []).append((status, payload))

    def trade_at(self, symbol: str, price: Decimal) -> None:
        """The market trades at ``price``: every resting order it crosses fills whole there."""
        self.prices[symbol] = price
        for order in list(self.orders.values()):
            is_open = order.status in ("NEW", "PARTIALLY_FILLED")
            if order.symbol == symbol and is_open and _crosses(order.side, order.price, price):
                self._fill(order, order.quantity - order.executed, order.price, maker=True)

    def order(self, client_order_id: str) -> FakeOrder:
        """The order named ``client_order_id`` (KeyError if none)."""
        return self.orders[client_order_id]

    # --- the server -------------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the origin to point ccxt at."""
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_post("/api/v3/order", self._place)
        app.router.add_get("/api/v3/order", self._get_order)
        app.router.add_delete("/api/v3/order", self._cancel)
        app.router.add_get("/api/v3/openOrders", self._open_orders)
        app.router.add_get("/api/v3/myTrades", self._my_trades)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        port = sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        """Stop serving (a hung answer is dropped)."""
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        queued = self._failures.get((request.method, request.path))
        if queued:
            status, payload = queued.pop(0)
            return web.json_response(dict(payload), status=status)
        signed = request.path not in ("/api/v3/ping", "/api/v3/time", "/api/v3/exchangeInfo")
        if signed and not request.headers.get("X-MBX-APIKEY"):
            return web.json_response(NO_KEY, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": _now_ms()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": _now_ms(),
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": [_symbol_info(symbol) for symbol in self.prices],
            }
        )

    async def _place(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbol = params["symbol"]
        side = params["side"]
        kind = params["type"]
        quantity = Decimal(params["quantity"])
        market = self.prices[symbol]
        price = Decimal(params["price"]) if "price" in params else market
        client_order_id = params.get("newClientOrderId") or f"fake-{next(self._ids)}"
        existing = self.orders.get(client_order_id)
        if existing is not None and existing.status in ("NEW", "PARTIALLY_FILLED"):
            return web.json_response({"code": -2010, "msg": "Duplicate order sent."}, status=400)
        base, quote = symbol[:-4], symbol[-4:]
        asset, need = (quote, quantity * price) if side == "BUY" else (base, quantity)
        if self.balances.get(asset, Decimal(0)) < need:
            return web.json_response(INSUFFICIENT, status=400)
        self.balances[asset] -= need
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + need
        now = _now_ms()
        order = FakeOrder(
            order_id=next(self._ids),
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            type=kind,
            time_in_force=params.get("timeInForce", "GTC"),
            quantity=quantity,
            price=price if kind != "MARKET" else Decimal(0),
            created_ms=now,
        )
        self.orders[client_order_id] = order
        if kind == "MARKET" or _crosses(side, price, market):
            self._fill(order, quantity, market if kind == "MARKET" else price, maker=False)
        if self.hang_next_place:
            # The order is placed, but its answer never reaches the client in time.
            self.hang_next_place = False
            await asyncio.sleep(self.hang_s)
        answer = order.as_json() | {"transactTime": now, "fills": []}
        return web.json_response(answer)

    async def _get_order(self, request: web.Request) -> web.Response:
        order = self._find(await _params(request))
        if order is None:
            return web.json_response(NOT_FOUND, status=400)
        return web.json_response(order.as_json())

    async def _cancel(self, request: web.Request) -> web.Response:
        params = await _params(request)
        order = self._find(params)
        if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
            return web.json_response(UNKNOWN_ORDER, status=400)
        order.status = "CANCELED"
        order.updated_ms = _now_ms()
        self._unlock(order, order.quantity - order.executed, order.price)
        answer = order.as_json() | {
            "origClientOrderId": order.client_order_id,
            "clientOrderId": f"cancel-{next(self._ids)}",
            "transactTime": order.updated_ms,
        }
        return web.json_response(answer)

    async def _open_orders(self, request: web.Request) -> web.Response:
        symbol = (await _params(request)).get("symbol")
        return web.json_response(
            [
                order.as_json()
                for order in self.orders.values()
                if order.status in ("NEW", "PARTIALLY_FILLED")
                and (symbol is None or order.symbol == symbol)
            ]
        )

    async def _my_trades(self, request: web.Request) -> web.Response:
        params = await _params(request)
        start = int(params.get("startTime", 0))
        return web.json_response(
            [
                trade
                for trade in self.trades
                if trade["symbol"] == params["symbol"] and trade["time"] >= start
            ]
        )

    # --- the exchange -------------------------------------------------------------------------

    def _find(self, params: Mapping[str, str]) -> FakeOrder | None:
        client_order_id = params.get("origClientOrderId")
        if client_order_id is not None:
            return self.orders.get(client_order_id)
        order_id = params.get("orderId")
        return next((o for o in self.orders.values() if str(o.order_id) == order_id), None)

    def _fill(self, order: FakeOrder, quantity: Decimal, price: Decimal, *, maker: bool) -> None:
        now = _now_ms()
        base, quote = order.symbol[:-4], order.symbol[-4:]
        notional = quantity * price
        fee = (notional * FEE_RATE).quantize(Decimal("0.00000001"))
        order.executed += quantity
        order.quote += notional
        order.status = "FILLED" if order.executed == order.quantity else "PARTIALLY_FILLED"
        order.updated_ms = now
        limit = order.price if order.type != "MARKET" else price
        if order.side == "BUY":
            self._unlock(order, quantity, limit, spent=notional)
            self.balances[base] = self.balances.get(base, Decimal(0)) + quantity
            self.balances[quote] -= fee
        else:
            self._unlock(order, quantity, limit, spent=quantity)
            self.balances[quote] = self.balances.get(quote, Decimal(0)) + notional - fee
        self.trades.append(
            {
                "symbol": order.symbol,
                "id": next(self._ids),
                "orderId": order.order_id,
                "orderListId": -1,
                "price": _text(price),
                "qty": _text(quantity),
                "quoteQty": _text(notional),
                "commission": _text(fee),
                "commissionAsset": quote,
                "time": now,
                "isBuyer": order.side == "BUY",
                "isMaker": maker,
                "isBestMatch": True,
            }
        )

    def _unlock(
        self, order: FakeOrder, quantity: Decimal, price: Decimal, spent: Decimal | None = None
    ) -> None:
        base, quote = order.symbol[:-4], order.symbol[-4:]
        asset, held = (quote, quantity * price) if order.side == "BUY" else (base, quantity)
        self.locked[asset] = self.locked.get(asset, Decimal(0)) - held
        self.balances[asset] = self.balances.get(asset, Decimal(0)) + held - (spent or 0)


def _crosses(side: str, limit: Decimal, market: Decimal) -> bool:
    return market <= limit if side == "BUY" else market >= limit


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    if request.can_read_body:
        params.update({key: str(value) for key, value in (await request.post()).items()})
    return params


def _symbol_info(symbol: str) -> dict[str, Any]:
    base, quote = symbol[:-4], symbol[-4:]
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01000000",
                "maxPrice": "1000000.00000000",
                "tickSize": "0.01000000",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001000",
                "maxQty": "9000.00000000",
                "stepSize": "0.00001000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }
