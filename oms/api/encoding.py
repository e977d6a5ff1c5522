"""The JSON shapes of the API: orders, events, accounts, limits and ticks.

Amounts are decimal strings in plain notation (never a float, never ``1E+3``); times are
ISO-8601 UTC strings. Amounts the API only derives (an order's average fill price, a position's
average price and PnL, an account's PnL) are rounded half-even to the quote precision of their
instrument (``Instrument.display_quote``), so they read ``"123.46"``, not
``"123.456789012345678901234567"``; everything booked (quantities, balances, reservations, fill
prices and fees) is written with every digit. The store (``oms.codec``) keeps every digit of all.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from oms.domain.events import OrderEvent
from oms.domain.instruments import Instrument, display_quote
from oms.domain.limits import RiskLimits
from oms.domain.orders import Order
from oms.domain.reasons import Denial
from oms.marketdata import Tick
from oms.risk import AccountSnapshot


def amount(value: Decimal) -> str:
    """A decimal as a plain string: ``0.00001`` rather than ``1E-5``."""
    return format(value, "f")


def optional_amount(value: Decimal | None) -> str | None:
    """``amount`` or None."""
    return None if value is None else format(value, "f")


def quote_amount(value: Decimal, quantum: Decimal | None) -> str:
    """A derived quote amount rounded for display to ``quantum`` (None: every digit).

    None is for an instrument no longer listed (an old order): better every digit than a guess.
    """
    return amount(value if quantum is None else display_quote(value, quantum))


def _quantum(instruments: Mapping[str, Instrument], symbol: str) -> Decimal | None:
    instrument = instruments.get(symbol)
    return None if instrument is None else instrument.quote_quantum


def iso_time(epoch_s: float) -> str:
    """Epoch seconds as ISO-8601 UTC with microseconds and a ``Z``.

    The events of a busy second share their date and time up to the second: that part is
    formatted once per second (``_second_prefix``), the microseconds each time.
    """
    fraction, whole = math.modf(epoch_s)  # as datetime rounds: the fraction alone, half-even
    second, micro = int(whole), round(fraction * 1_000_000)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    return f"{_second_prefix(second)}.{micro:06d}Z"


@functools.lru_cache(maxsize=4096)
def _second_prefix(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def order_json(order: Order, instruments: Mapping[str, Instrument]) -> dict[str, Any]:
    """An order exactly as the contract lists its fields; ``instruments`` give its precision."""
    created_at = iso_time(order.created_at)
    same_time = order.updated_at == order.created_at  # a new order: format the time once
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "account_id": order.account_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "quantity": amount(order.quantity),
        "price": optional_amount(order.price),
        "time_in_force": order.time_in_force.value,
        "status": order.status.value,
        "filled_quantity": amount(order.filled_quantity),
        "average_fill_price": (
            None
            if order.average_fill_price is None
            else quote_amount(order.average_fill_price, _quantum(instruments, order.symbol))
        ),
        "reject_reason": None if order.reject_reason is None else order.reject_reason.value,
        "created_at": created_at,
        "updated_at": created_at if same_time else iso_time(order.updated_at),
        "version": order.version,
        "stop_price": optional_amount(order.stop_price),
        "expire_at": None if order.expire_at is None else iso_time(order.expire_at),
        "post_only": order.post_only,
        "triggered_at": None if order.triggered_at is None else iso_time(order.triggered_at),
    }


def event_json(event: OrderEvent) -> dict[str, Any]:
    """An event: its kind (``type``, the class name), its fields, ``at`` as an ISO time.

    As on the ``order-events`` topic and in the store (``oms.codec.event_to_dict``),
    ``OrderPlaced``'s own ``type`` field (the order type) is written ``order_type``.
    """
    kind = type(event)
    names = _EVENT_FIELDS.get(kind)
    if names is None:  # once per event class: dataclasses.fields is slow for a hot path
        names = _EVENT_FIELDS[kind] = tuple(f.name for f in dataclasses.fields(event))
    document: dict[str, Any] = {"type": kind.__name__}
    for name in names:
        value = getattr(event, name)
        if name == "type":
            document["order_type"] = value.value
        elif name == "at":
            document["at"] = iso_time(value)
        elif isinstance(value, Decimal):
            document[name] = format(value, "f")
        elif isinstance(value, Enum):
            document[name] = value.value
        else:
            document[name] = value
    return document


_EVENT_FIELDS: dict[type, tuple[str, ...]] = {}


def instrument_json(instrument: Instrument) -> dict[str, Any]:
    """A listed instrument."""
    return {
        "symbol": instrument.symbol,
        "base": instrument.base,
        "quote": instrument.quote,
        "tick_size": amount(instrument.tick_size),
        "lot_size": amount(instrument.lot_size),
        "status": instrument.status.value,
    }


def _decimal_map(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {key: amount(value) for key, value in values.items()}


def limits_json(limits: RiskLimits) -> dict[str, Any]:
    """Every limit; None means that check is off."""
    return {
        "max_order_quantity": optional_amount(limits.max_order_quantity),
        "symbol_max_order_quantity": _decimal_map(limits.symbol_max_order_quantity),
        "max_order_notional": optional_amount(limits.max_order_notional),
        "price_collar": optional_amount(limits.price_collar),
        "max_position": optional_amount(limits.max_position),
        "symbol_max_position": _decimal_map(limits.symbol_max_position),
        "daily_loss_limit": optional_amount(limits.daily_loss_limit),
        "max_concentration": optional_amount(limits.max_concentration),
        "velocity_window_s": limits.velocity_window_s,
        "max_orders_per_window": limits.max_orders_per_window,
        "max_notional_per_window": optional_amount(limits.max_notional_per_window),
    }


def balances_json(snapshot: AccountSnapshot) -> dict[str, dict[str, str]]:
    """Per asset: available, reserved and their total."""
    return {
        asset: {
            "available": amount(balance.available),
            "reserved": amount(balance.reserved),
            "total": amount(balance.total),
        }
        for asset, balance in sorted(snapshot.balances.items())
    }


def positions_json(
    snapshot: AccountSnapshot, instruments: Mapping[str, Instrument]
) -> dict[str, dict[str, str]]:
    """Per symbol: quantity, and average price and PnL at the instrument's quote precision."""
    positions: dict[str, dict[str, str]] = {}
    for symbol, position in sorted(snapshot.positions.items()):
        quantum = _quantum(instruments, symbol)
        positions[symbol] = {
            "quantity": amount(position.quantity),
            "average_price": quote_amount(position.average_price, quantum),
            "realized_pnl": quote_amount(position.realized_pnl, quantum),
            "unrealized_pnl": quote_amount(position.unrealized_pnl, quantum),
        }
    return positions


def account_json(
    snapshot: AccountSnapshot, instruments: Mapping[str, Instrument]
) -> dict[str, Any]:
    """An account: balances, what is reserved, positions, PnL, kill-switch state and limits.

    The account's PnL sums its positions', so it is shown at the finest quote precision among
    their instruments.
    """
    realized, unrealized = snapshot.realized_pnl, snapshot.unrealized_pnl
    quanta = [_quantum(instruments, symbol) for symbol in snapshot.positions]
    quantum = min((q for q in quanta if q is not None), default=None)
    return {
        "account_id": snapshot.account_id,
        "trading_state": snapshot.trading_state.value,
        "balances": balances_json(snapshot),
        "reservations": {
            asset: amount(balance.reserved)
            for asset, balance in sorted(snapshot.balances.items())
            if balance.reserved
        },
        "positions": positions_json(snapshot, instruments),
        "pnl": {
            "realized": quote_amount(realized, quantum),
            "unrealized": quote_amount(unrealized, quantum),
            "total": quote_amount(realized + unrealized, quantum),
        },
        "limits": limits_json(snapshot.limits),
    }


def denial_json(denial: Denial) -> dict[str, Any]:
    """One violation: its reason code, the figures that broke it, and the rendered message."""
    return {"reason": denial.reason.value, "details": dict(denial.details), "message": str(denial)}


def price_json(tick: Tick) -> dict[str, Any]:
    """Last price and top of book."""
    return {
        "symbol": tick.symbol,
        "last_price": amount(tick.last_price),
        "best_bid": optional_amount(tick.best_bid),
        "best_ask": optional_amount(tick.best_ask),
        "time": iso_time(tick.ts),
    }


def book_json(tick: Tick) -> dict[str, Any]:
    """Bids (best first, descending) and asks (best first, ascending)."""
    return {
        **price_json(tick),
        "bids": [{"price": amount(lv.price), "quantity": amount(lv.quantity)} for lv in tick.bids],
        "asks": [{"price": amount(lv.price), "quantity": amount(lv.quantity)} for lv in tick.asks],
    }
