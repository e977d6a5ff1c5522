"""Firm-wide caps that span accounts (and so replicas): per symbol and per group of accounts.

An account's own limits live with its owner (``oms.domain.limits``). These caps are shared by
every account of the firm, which live on different replicas, so they are counted in Redis
(``oms.store.redis_global_limits``), one atomic script checking and reserving. This module is
the pure part: what a cap is, what one order reserves against them, and the rule the script
applies (``breach``), kept here in Python so that it can be tested and read.

What each cap counts, over every account of the firm:

- ``max_gross_notional`` of a symbol: the notional (quantity times limit price, or the stop
  or protection price) of the open orders in it, reserved when an order is accepted and given
  back when it ends (filled, cancelled, rejected, expired). A partly filled order keeps its
  whole notional until it ends: the count never runs below what the orders might still trade.
- ``max_net_position`` of a symbol: the absolute net position, the open orders counted as if
  they all filled (a BUY against the long side, a SELL against the short side), as each
  account's ``max_position`` counts its own. A fill moves its quantity from the open orders
  into the position.
- ``max_gross_notional`` of a group: the open orders' notional of the group's accounts, in
  every symbol.

Amounts travel to Redis as integers (Lua numbers are doubles: exact only below 2**53):
quantities in units of ``QUANTITY_UNIT``, notionals rounded up to ``NOTIONAL_UNIT``, so a cap
is never passed by a rounding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NamedTuple

from oms.domain.enums import Side
from oms.domain.errors import DomainError
from oms.domain.reasons import RejectReason

QUANTITY_UNIT = Decimal("0.00000001")
NOTIONAL_UNIT = Decimal("0.000001")
LARGEST_UNITS = 2**53  # Lua compares doubles: larger integers lose their last digits

# A group's name is a key of stored documents (the audit trail: MongoDB and FerretDB refuse a
# key with a dot or a leading "$"), a field of the script's hash (``g:{group}``) and a part of
# its ``|``-joined open order; "" means "no group". So a narrower grammar than an account id's.
GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
GROUP_NAME_RULE = "must be 1-64 of A-Za-z0-9_- starting with a letter or digit"


class GlobalLimitsError(DomainError):
    """A global limit that cannot be set or counted (negative, or beyond what Redis counts)."""

    code = "GLOBAL_LIMIT_INVALID"


class GlobalLimitsUnavailable(DomainError):
    """Redis did not answer a reservation: the order is refused (fail closed), never let by."""

    code = RejectReason.GLOBAL_LIMITS_UNAVAILABLE.value


class InvalidGroupName(GlobalLimitsError):
    """A group name outside ``GROUP_NAME``."""

    code = "INVALID_GROUP_NAME"


def check_group_name(value: str) -> str:
    """``value`` if it may name a group of accounts; else ``InvalidGroupName``."""
    if not GROUP_NAME.fullmatch(value):
        raise InvalidGroupName(GROUP_NAME_RULE)
    return value


def _no_caps() -> Mapping[str, SymbolCaps]:
    return {}


def _no_groups() -> Mapping[str, GroupCaps]:
    return {}


@dataclass(frozen=True, slots=True)
class SymbolCaps:
    """The firm's caps in one symbol (None: that cap is off)."""

    max_gross_notional: Decimal | None = None
    max_net_position: Decimal | None = None


@dataclass(frozen=True, slots=True)
class GroupCaps:
    """A group of accounts and the cap on its open orders' notional."""

    accounts: frozenset[str]
    max_gross_notional: Decimal | None = None


@dataclass(frozen=True, slots=True)
class GlobalLimits:
    """Every firm-wide cap: by symbol, and by named group of accounts."""

    symbols: Mapping[str, SymbolCaps] = field(default_factory=_no_caps)
    groups: Mapping[str, GroupCaps] = field(default_factory=_no_groups)

    def group_of(self, account_id: str) -> str | None:
        """The group ``account_id`` belongs to (the first by name), or None."""
        for name in sorted(self.groups):
            if account_id in self.groups[name].accounts:
                return name
        return None


NO_GLOBAL_LIMITS = GlobalLimits()


class GlobalReservation(NamedTuple):
    """What one accepted order holds against the caps (amounts in units: see the docstring)."""

    order_id: str
    partition: int  # of ``orders``: the unit a replica owns, and rebuilds
    symbol: str
    group: str  # "" when the account is in no group
    notional: int
    side: Side  # which side of the net position its quantity counts against
    quantity: int  # still open (not filled)


class Reserved(NamedTuple):
    """Redis's answer for one order: ``refused`` the cap it would pass (None: it holds its
    reservation); ``fresh`` True when reserved by this very call."""

    refused: RejectReason | None
    fresh: bool


class Usage(NamedTuple):
    """What the firm holds in one symbol and the order's group (units), across partitions."""

    notional: int  # open orders' notional in the symbol
    buying: int  # open BUY quantity in the symbol
    selling: int  # open SELL quantity
    position: int  # net position (long positive)
    group_notional: int  # open orders' notional of the group, every symbol


def quantity_units(quantity: Decimal) -> int:
    """``quantity`` in ``QUANTITY_UNIT``s, rounded up; raises beyond what Redis counts."""
    return _units(quantity, QUANTITY_UNIT)


def notional_units(notional: Decimal) -> int:
    """``notional`` in ``NOTIONAL_UNIT``s, rounded up; raises beyond what Redis counts."""
    return _units(notional, NOTIONAL_UNIT)


def _units(amount: Decimal, unit: Decimal) -> int:
    units = int((amount / unit).to_integral_value(ROUND_CEILING))
    if abs(units) >= LARGEST_UNITS:
        raise GlobalLimitsError(f"{amount} is beyond what a global limit can count")
    return units


class CapUnits(NamedTuple):
    """The caps that apply to one order, in units (None: off), as the script reads them."""

    notional: int | None  # the symbol's gross notional cap
    position: int | None  # the symbol's net position cap
    group_notional: int | None  # the order's group's gross notional cap


def caps_for(limits: GlobalLimits, symbol: str, group: str) -> CapUnits:
    """The caps of ``symbol`` and ``group`` in units, each rounded down (a rounding never
    widens a cap)."""
    caps = limits.symbols.get(symbol, SymbolCaps())
    grouped = limits.groups.get(group) if group else None
    return CapUnits(
        _cap_units(caps.max_gross_notional, NOTIONAL_UNIT),
        _cap_units(caps.max_net_position, QUANTITY_UNIT),
        None if grouped is None else _cap_units(grouped.max_gross_notional, NOTIONAL_UNIT),
    )


def breach(caps: CapUnits, usage: Usage, order: GlobalReservation) -> RejectReason | None:
    """The cap ``order`` would pass given ``usage``, or None (the script's rule, in Python)."""
    if caps.notional is not None and usage.notional + order.notional > caps.notional:
        return RejectReason.GLOBAL_NOTIONAL_LIMIT
    group = caps.group_notional
    if group is not None and usage.group_notional + order.notional > group:
        return RejectReason.GLOBAL_NOTIONAL_LIMIT
    net = caps.position
    if net is not None:
        if order.side is Side.BUY and usage.position + usage.buying + order.quantity > net:
            return RejectReason.GLOBAL_POSITION_LIMIT
        if order.side is Side.SELL and usage.position - usage.selling - order.quantity < -net:
            return RejectReason.GLOBAL_POSITION_LIMIT
    return None


def _cap_units(amount: Decimal | None, unit: Decimal) -> int | None:
    if amount is None:
        return None
    if amount < 0:
        raise GlobalLimitsError(f"a cap must not be negative: {amount}")
    units = int((amount / unit).to_integral_value(ROUND_FLOOR))
    if units >= LARGEST_UNITS:
        raise GlobalLimitsError(f"{amount} is beyond what a global limit can count")
    return units
