"""Commands: what someone asks the engine to do. Imperative names, immutable, each with an id.

A command's ``command_id`` is what makes replay safe: whoever applies a command remembers its id
and applying the same id again changes nothing. ``request_id`` names the request (or Kafka
record) that asked for it, for the logs and the events it causes (``oms.correlation``); it plays
no part in any decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import positional_builder
from oms.domain.limits import RiskLimits, TradingState


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place a new order. ``price`` is set for LIMIT and STOP_LIMIT orders only,
    ``stop_price`` for stops only, ``expire_at`` (epoch seconds) for GTD only; ``post_only``
    (LIMIT only) refuses to take liquidity on arrival."""

    command_id: str
    order_id: str
    client_order_id: str
    account_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    time_in_force: TimeInForce
    created_at: float  # epoch seconds, assigned at the door
    request_id: str | None = None
    post_only: bool = False
    stop_price: Decimal | None = None
    expire_at: float | None = None


# Each order's command is built once at its door and once more where the engine decodes it:
# through the frozen dataclass's ``__init__`` that took 3.7 us, this 1.9 (called by keyword).
new_place_order = positional_builder(PlaceOrder)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel what is left of an order."""

    command_id: str
    order_id: str
    account_id: str
    requested_at: float
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AmendOrder:
    """Change an open LIMIT order's ``price`` and/or ``quantity`` (None: kept as it is).

    ``quantity`` is the order's new whole quantity, filled part included: it must stay above
    what has filled. A lower quantity at the same price keeps the order's place in the venue's
    queue; a new price or a larger quantity loses it (as exchanges do).
    """

    command_id: str
    order_id: str
    account_id: str
    requested_at: float
    quantity: Decimal | None = None
    price: Decimal | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class CancelAll:
    """Cancel every open order of an account (only those of ``symbol`` if given)."""

    command_id: str
    account_id: str
    requested_at: float
    symbol: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ExpireOrder:
    """A GTD order's time has come: end what is left of it (EXPIRED). ``command_id`` is
    ``expire:<order_id>``, one per order, so the timer firing twice is harmless."""

    command_id: str
    order_id: str
    account_id: str
    at: float


@dataclass(frozen=True, slots=True)
class ApplyFill:
    """Book one execution against an order (from the simulated venue or an external gateway).

    ``command_id`` is the execution id: a venue that sends the same execution twice is harmless.
    ``fee`` is in the instrument's quote asset.
    """

    command_id: str
    order_id: str
    account_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    executed_at: float


# Account commands: the supervisor applies them in order with the account's orders (they travel
# on ``orders`` keyed by the account, so the replica that owns the account applies them).


@dataclass(frozen=True, slots=True)
class OpenAccount:
    """Open an account with starting balances (and limits; the book's defaults if None).

    ``exist_ok``: an account already open is left as it is (the opening, recorded once in the
    store, reaching the replica that owns the account after this one opened it too).
    """

    account_id: str
    balances: Mapping[str, Decimal]
    limits: RiskLimits | None = None
    exist_ok: bool = False


@dataclass(frozen=True, slots=True)
class SetLimits:
    """Replace an account's limits."""

    account_id: str
    limits: RiskLimits


@dataclass(frozen=True, slots=True)
class SetTradingState:
    """Flip the kill switch of one account (or the global one when ``account_id`` is None)."""

    state: TradingState
    account_id: str | None = None
