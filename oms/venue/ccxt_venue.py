"""The ccxt adapter of the venue port: one exchange through ``ccxt.async_support``.

Amounts never pass through a float: the exchange object parses numbers as strings
(``exchange.number = str``, a documented ccxt switch) and the adapter reads them as ``Decimal``;
what it sends goes out as decimal strings.

Binance spot has no amend that changes the price (its ``order/cancelReplace`` is a cancel and a
new order, which loses the queue place and can fill in between; ccxt's ``edit_order`` uses it),
so ``amend_support`` is ``UNSUPPORTED`` there and ``amend`` refuses with ``AMEND_UNSUPPORTED``
instead of faking one. A GTD order goes out GTC (oms cancels it when it expires).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import ccxt.async_support as ccxt

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.venue.ccxt_errors import venue_error
from oms.venue.port import (
    AmendRequest,
    AmendSupport,
    InstrumentRules,
    PlaceRequest,
    RefusalReason,
    UnknownReason,
    VenueOrderState,
    VenueOrderStatus,
    VenueOutcomeUnknown,
    VenuePort,
    VenueRefused,
    VenueTrade,
)

# Exchanges whose ccxt ``edit_order`` is a true in-place amend (same order, same client id).
# Binance spot's is cancel-replace, so it is not here.
_NATIVE_AMEND: frozenset[str] = frozenset()

_STATUSES = {
    "open": VenueOrderStatus.OPEN,
    "closed": VenueOrderStatus.FILLED,
    "canceled": VenueOrderStatus.CANCELLED,
    "cancelled": VenueOrderStatus.CANCELLED,
    "expired": VenueOrderStatus.EXPIRED,
    "rejected": VenueOrderStatus.REJECTED,
}


class CcxtSettings(NamedTuple):
    """How to reach one exchange; built by the composition root from ``oms.config``."""

    exchange: str  # a ccxt id: "binance"
    api_key: str
    api_secret: str
    sandbox: bool = False
    url: str | None = None  # scheme://host[:port] replacing the exchange's API origin
    timeout_s: float = 10.0


def build_exchange(settings: CcxtSettings) -> Any:
    """A ccxt async exchange for ``settings`` (spot only, numbers as strings, URLs rebased)."""
    exchange_class = getattr(ccxt, settings.exchange, None)
    if exchange_class is None or not isinstance(exchange_class, type):
        raise VenueRefused(RefusalReason.REFUSED, f"ccxt has no exchange {settings.exchange!r}")
    exchange = exchange_class(
        {
            "apiKey": settings.api_key,
            "secret": settings.api_secret,
            "timeout": int(settings.timeout_s * 1000),
            "enableRateLimit": True,
            "options": {
                "defaultType": "spot",
                # Binance: only spot markets (not futures and options: other hosts), and no
                # currencies or margin pairs from the wallet and margin APIs (they need
                # permissions spot trading does not).
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
                # Reconciliation asks for every open order at once, knowing it weighs more.
                "warnOnFetchOpenOrdersWithoutSymbol": False,
            },
        }
    )
    if settings.sandbox:
        exchange.set_sandbox_mode(True)
    if settings.url:
        exchange.urls["api"] = rebased(exchange.urls["api"], settings.url)
    exchange.number = str
    return exchange


def rebased(urls: Any, origin: str) -> Any:
    """``urls`` (a string or a nested dict of them) with each scheme and host set to ``origin``."""
    if isinstance(urls, dict):
        return {key: rebased(value, origin) for key, value in urls.items()}
    if not isinstance(urls, str):
        return urls
    target = urlsplit(origin)
    parts = urlsplit(urls)
    path = target.path.rstrip("/") + parts.path
    return urlunsplit((target.scheme, target.netloc, path, parts.query, parts.fragment))


def market_symbol(symbol: str) -> str:
    """ccxt's unified symbol of an oms symbol: ``BTC-USDT`` is ``BTC/USDT``."""
    return symbol.replace("-", "/", 1)


def oms_symbol(symbol: str) -> str:
    """The oms symbol of a ccxt spot symbol: ``BTC/USDT`` is ``BTC-USDT``."""
    return symbol.replace("/", "-", 1)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _required(value: Any, name: str) -> Decimal:
    amount = _decimal(value)
    if amount is None:
        raise VenueOutcomeUnknown(UnknownReason.UNEXPECTED, f"the venue's answer has no {name}")
    return amount


def order_state(order: Mapping[str, Any], client_order_id: str | None = None) -> VenueOrderState:
    """A ccxt unified order as the port's ``VenueOrderState``."""
    status = _STATUSES.get(str(order.get("status")))
    if status is None:
        raise VenueOutcomeUnknown(
            UnknownReason.UNEXPECTED, f"the venue's order status {order.get('status')!r}"
        )
    filled = _decimal(order.get("filled")) or Decimal(0)
    updated = order.get("lastUpdateTimestamp") or order.get("timestamp")
    return VenueOrderState(
        # Ours when we know it: Binance's cancel answer carries the cancel's own id there.
        client_order_id=client_order_id or str(order.get("clientOrderId") or ""),
        venue_order_id=str(order.get("id") or ""),
        symbol=oms_symbol(str(order.get("symbol"))),
        status=status,
        quantity=_required(order.get("amount"), "amount"),
        filled=filled,
        price=_decimal(order.get("price")) or None,
        average_price=_decimal(order.get("average")) if filled else None,
        updated_at=float(updated) / 1000 if updated is not None else None,
    )


def trade(raw: Mapping[str, Any]) -> VenueTrade:
    """A ccxt unified trade as the port's ``VenueTrade``."""
    fee = raw.get("fee") or {}
    return VenueTrade(
        trade_id=str(raw["id"]),
        venue_order_id=str(raw.get("order") or ""),
        client_order_id=raw.get("clientOrderId"),
        symbol=oms_symbol(str(raw["symbol"])),
        side=Side(str(raw["side"]).upper()),
        quantity=_required(raw.get("amount"), "amount"),
        price=_required(raw.get("price"), "price"),
        fee=_decimal(fee.get("cost")) or Decimal(0),
        fee_asset=fee.get("currency"),
        executed_at=float(raw["timestamp"]) / 1000,
    )


def instrument_rules(market: Mapping[str, Any]) -> InstrumentRules:
    """A ccxt market as tick, lot and minimums (ccxt's Binance precision is the step itself)."""
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    lot = _required(precision.get("amount"), "lot size")
    return InstrumentRules(
        symbol=oms_symbol(str(market["symbol"])),
        tick_size=_required(precision.get("price"), "tick size"),
        lot_size=lot,
        min_quantity=_decimal((limits.get("amount") or {}).get("min")) or lot,
        min_notional=_decimal((limits.get("cost") or {}).get("min")),
        trading=bool(market.get("active", True)),
    )


class CcxtVenue(VenuePort):
    """One exchange through ccxt; every ccxt error becomes a refusal or an unknown outcome."""

    def __init__(self, exchange: Any) -> None:
        self._exchange = exchange

    @property
    def amend_support(self) -> AmendSupport:
        """``NATIVE`` only where ccxt's edit is a true amend; Binance spot's is not."""
        if self._exchange.id in _NATIVE_AMEND:
            return AmendSupport.NATIVE
        return AmendSupport.UNSUPPORTED

    async def open(self) -> None:
        """Load the exchange's markets (its ``load_markets``: exchangeInfo on Binance)."""
        await self._call(self._exchange.load_markets)

    async def close(self) -> None:
        """Close ccxt's HTTP session."""
        await self._exchange.close()

    async def instrument_rules(self) -> Mapping[str, InstrumentRules]:
        """Every spot market's rules by oms symbol."""
        markets = await self._call(self._exchange.load_markets)
        return {
            rules.symbol: rules
            for rules in (instrument_rules(m) for m in markets.values() if m.get("spot", True))
        }

    async def place(self, request: PlaceRequest) -> VenueOrderState:
        """Send ``request`` once, named by its client order id."""
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        kind = "market"
        if request.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            kind = "limit"
            tif = request.time_in_force
            params["timeInForce"] = "GTC" if tif is TimeInForce.GTD else tif.value
        if request.post_only:
            params["postOnly"] = True
            params.pop("timeInForce", None)  # Binance's LIMIT_MAKER takes none
        if request.stop_price is not None:
            params["triggerPrice"] = str(request.stop_price)
        order = await self._call(
            self._exchange.create_order,
            market_symbol(request.symbol),
            kind,
            request.side.value.lower(),
            str(request.quantity),
            str(request.price) if request.price is not None else None,
            params,
        )
        return order_state(order, request.client_order_id)

    async def amend(self, request: AmendRequest) -> VenueOrderState:
        """Refused here: no venue this adapter knows amends in place (see the module's note)."""
        raise VenueRefused(
            RefusalReason.AMEND_UNSUPPORTED,
            f"{self._exchange.id} has no in-place amend; cancel and place again instead",
        )

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrderState:
        """Cancel by client order id (Binance: ``origClientOrderId``)."""
        order = await self._call(
            self._exchange.cancel_order,
            "",
            market_symbol(symbol),
            {"origClientOrderId": client_order_id},
        )
        return order_state(order, client_order_id)

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrderState:
        """The venue's word on one order, by client order id."""
        order = await self._call(
            self._exchange.fetch_order,
            "",
            market_symbol(symbol),
            {"origClientOrderId": client_order_id},
        )
        return order_state(order, client_order_id)

    async def open_orders(self, symbol: str | None = None) -> Sequence[VenueOrderState]:
        """Open orders at the venue, for one symbol or all."""
        target = market_symbol(symbol) if symbol is not None else None
        orders = await self._call(self._exchange.fetch_open_orders, target)
        return [order_state(order) for order in orders]

    async def my_trades(self, symbol: str, since: float | None = None) -> Sequence[VenueTrade]:
        """Our executions on ``symbol`` from ``since`` on, oldest first."""
        since_ms = int(since * 1000) if since is not None else None
        trades = await self._call(self._exchange.fetch_my_trades, market_symbol(symbol), since_ms)
        return sorted((trade(raw) for raw in trades), key=lambda t: (t.executed_at, t.trade_id))

    async def _call(self, method: Any, *args: Any) -> Any:
        # Every ccxt failure leaves as the port's error; nothing else escapes an adapter call.
        try:
            return await method(*args)
        except (ccxt.BaseError, TimeoutError) as error:
            raise venue_error(error) from error
