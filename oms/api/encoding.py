"""The JSON shapes of the API: orders, events, accounts, limits and ticks.

Amounts are decimal strings in plain notation (never a float, never ``1E+3``); times are
ISO-8601 UTC strings. S1's ``oms/codec.py`` had not landed when this was written; once it does,
``order_json`` can delegate to it as long as the field list below stays the contract.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from oms.domain.events import OrderEvent
from oms.domain.instruments import Instrument
from oms.domain.orders import Order
from oms.marketdata import Tick
from oms.risk import AccountSnapshot, Denial, RiskLimits


def amount(value: Decimal) -> str:
    """A decimal as a plain string: ``0.00001`` rather than ``1E-5``."""
    return format(value, "f")


def optional_amount(value: Decimal | None) -> str | None:
    """``amount`` or None."""
    return None if value is None else format(value, "f")


def iso_time(epoch_s: float) -> str:
    """Epoch seconds as ISO-8601 UTC with microseconds and a ``Z``."""
    stamp = datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="microseconds")
    return stamp.replace("+00:00", "Z")


def order_json(order: Order) -> dict[str, Any]:
    """An order exactly as the contract lists its fields."""
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
        "average_fill_price": optional_amount(order.average_fill_price),
        "reject_reason": order.reject_reason,
        "created_at": created_at,
        "updated_at": created_at if same_time else iso_time(order.updated_at),
        "version": order.version,
    }


def event_json(event: OrderEvent) -> dict[str, Any]:
    """An event: its kind (``type``, the class name), its fields, ``at`` as an ISO time.

    As on the ``order-events`` topic and in the store (``oms.codec.event_to_dict``),
    ``OrderPlaced``'s own ``type`` field (the order type) is written ``order_type``.
    """
    document: dict[str, Any] = {"type": type(event).__name__}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if field.name == "type":
            document["order_type"] = value.value
        elif field.name == "at":
            document["at"] = iso_time(value)
        elif isinstance(value, Decimal):
            document[field.name] = amount(value)
        elif isinstance(value, Enum):
            document[field.name] = value.value
        else:
            document[field.name] = value
    return document


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


def positions_json(snapshot: AccountSnapshot) -> dict[str, dict[str, str]]:
    """Per symbol: quantity, average price, realized and unrealized PnL."""
    return {
        symbol: {
            "quantity": amount(position.quantity),
            "average_price": amount(position.average_price),
            "realized_pnl": amount(position.realized_pnl),
            "unrealized_pnl": amount(position.unrealized_pnl),
        }
        for symbol, position in sorted(snapshot.positions.items())
    }


def account_json(snapshot: AccountSnapshot) -> dict[str, Any]:
    """An account: balances, what is reserved, positions, PnL, kill-switch state and limits."""
    realized, unrealized = snapshot.realized_pnl, snapshot.unrealized_pnl
    return {
        "account_id": snapshot.account_id,
        "trading_state": snapshot.trading_state.value,
        "balances": balances_json(snapshot),
        "reservations": {
            asset: amount(balance.reserved)
            for asset, balance in sorted(snapshot.balances.items())
            if balance.reserved
        },
        "positions": positions_json(snapshot),
        "pnl": {
            "realized": amount(realized),
            "unrealized": amount(unrealized),
            "total": amount(realized + unrealized),
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
