"""The closed vocabularies of an order: side, type, time in force and status."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from typing import TypeVar, cast

_E = TypeVar("_E", bound=StrEnum)


def by_name(enum: type[_E]) -> Mapping[str, _E]:
    """``enum``'s members by name (every name here is its value), read on every decoded order.

    ``Enum.__members__`` builds a new mapping on each read and ``Enum(value)`` walks Enum's
    ``__call__``: a decoded order asked three times for both (issue 19's profiles).
    """
    return cast(Mapping[str, _E], _by_name(enum))


@cache
def _by_name(enum: type[StrEnum]) -> Mapping[str, StrEnum]:
    return dict(enum.__members__)


class Side(StrEnum):
    """Which way the order trades the base asset."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """How the order is priced."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_MARKET = "STOP_MARKET"  # rests untriggered; a MARKET order once the last price crosses
    STOP_LIMIT = "STOP_LIMIT"  # rests untriggered; a LIMIT order once the last price crosses


class TimeInForce(StrEnum):
    """How long an order may rest: until cancelled, immediate-or-cancel, fill-or-kill, or
    until its ``expire_at`` (good-till-date)."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"


class OrderStatus(StrEnum):
    """Where an order is in its life; the legal moves are in the transition table."""

    NEW = "NEW"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    SETTLED = "SETTLED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"  # a GTD order whose time came; the filled part stays filled
    # A request to a network venue (place, cancel) ended without an answer: whether it took
    # effect is unknown. The order keeps its reservation and waits for the venue's word.
    IN_DOUBT = "IN_DOUBT"

    @property
    def is_terminal(self) -> bool:
        """True for the states an order never leaves."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.SETTLED, OrderStatus.EXPIRED}
)
