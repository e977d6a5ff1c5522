"""Events: what happened to an order. Past-tense names, immutable, numbered per order.

Every event carries the order's ``sequence`` number (1, 2, 3, ... with no gaps: the order's
``version`` after the event) and the ``command_id`` of the command it answers, so that an order's
history alone says which commands it has already applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TypeAlias

from oms.domain.enums import OrderType, Side, TimeInForce


class CancelReason(StrEnum):
    """Why an order ended CANCELLED."""

    REQUESTED = "REQUESTED"  # someone asked
    REMAINDER = "REMAINDER"  # IOC / MARKET remainder, or the protection price was reached
    FOK_KILLED = "FOK_KILLED"  # fill-or-kill that could not fill whole
    EXPIRED = "EXPIRED"


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    """The order exists, in state NEW, exactly as it was placed."""

    order_id: str
    sequence: int
    command_id: str
    at: float
    client_order_id: str
    account_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    time_in_force: TimeInForce


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    """Risk accepted the order and reserved for it up to ``protection_price``."""

    order_id: str
    sequence: int
    command_id: str
    at: float
    protection_price: Decimal


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """Risk or validation refused the order: ``reason`` is a code, ``detail`` its figures."""

    order_id: str
    sequence: int
    command_id: str
    at: float
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """One execution: partial or full is decided by what was filled before."""

    order_id: str
    sequence: int
    command_id: str  # the execution id
    at: float
    quantity: Decimal
    price: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    """What was left of the order will never fill; the filled part stays filled."""

    order_id: str
    sequence: int
    command_id: str
    at: float
    reason: CancelReason


@dataclass(frozen=True, slots=True)
class OrderSettled:
    """Every fill is booked in the ledger and the rest of the reservation released."""

    order_id: str
    sequence: int
    command_id: str
    at: float


OrderEvent: TypeAlias = (
    OrderPlaced | OrderAccepted | OrderRejected | OrderFilled | OrderCancelled | OrderSettled
)
