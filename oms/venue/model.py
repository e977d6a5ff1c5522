"""What goes into the venue and what comes out: orders, executions and match results.

These three are ``NamedTuple``s, not frozen dataclasses, on purpose: they are made once or more
per order on the hot path, and on this machine a frozen slotted dataclass took about 0.5 µs per
field to build (``object.__setattr__`` per field) against about 0.1 µs for a ``NamedTuple``,
which is just as immutable (safe to hand across threads) and reads the same by attribute.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from oms.domain.commands import ApplyFill
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.errors import DomainError
from oms.domain.events import positional_builder

# ApplyFill (a frozen dataclass: the API and the stream build it too) made positionally: one
# per execution on the hot path, at a quarter of the dataclass ``__init__``'s cost.
_new_fill = positional_builder(ApplyFill)


class VenueError(DomainError):
    """The venue refused a request (duplicate order id, malformed order, bad report)."""

    code = "VENUE_ERROR"


class VenueOrder(NamedTuple):
    """An accepted order as the venue sees it.

    ``protection_price`` is the worst price the order may ever fill at (from the risk
    reservation); for a LIMIT order it is normally its limit price, and the venue uses whichever
    of the two is stricter.
    """

    order_id: str
    account_id: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    limit_price: Decimal | None
    protection_price: Decimal
    post_only: bool = False  # refused (POST_ONLY_REJECTED) rather than take liquidity
    stop_price: Decimal | None = None  # a stop rests untriggered until the last price crosses


class Execution(NamedTuple):
    """One fill of one order: ``quantity`` at ``price``, ``fee`` in the quote asset.

    ``execution_id`` is ``"{order_id}:{n}"`` with ``n`` counting that order's executions from 1,
    so it is deterministic and unique, and doubles as the ``ApplyFill`` command id.
    """

    execution_id: str
    order_id: str
    account_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal

    def to_fill(self, executed_at: float) -> ApplyFill:
        """The ``ApplyFill`` command that books this execution (its id is the execution id)."""
        return _new_fill(  # command_id, order_id, account_id, quantity, price, fee, executed_at
            self.execution_id,
            self.order_id,
            self.account_id,
            self.quantity,
            self.price,
            self.fee,
            executed_at,
        )


class Outcome(StrEnum):
    """How an arrival ended."""

    FILLED = "FILLED"
    """Nothing left: the executions add up to the order's quantity."""
    RESTING = "RESTING"
    """A GTC LIMIT order whose remainder now rests in the venue's index."""
    CANCELLED_REMAINDER = "CANCELLED_REMAINDER"
    """IOC, or MARKET, or the protection price was reached: the remainder is cancelled."""
    KILLED = "KILLED"
    """FOK that could not fill whole: no executions at all."""
    POST_ONLY_REJECTED = "POST_ONLY_REJECTED"
    """A post-only order that would have taken liquidity: no executions, nothing rests."""
    STOP_WRONG_SIDE = "STOP_WRONG_SIDE"
    """A stop whose trigger the last price has already passed (``stop_on_wrong_side``): no
    executions, nothing waits."""
    MARKET_DATA_STALE = "MARKET_DATA_STALE"
    """A MARKET order on a symbol whose feed has stopped (``oms.marketdata.freshness``): no
    executions against a book that may no longer be the market."""


class MatchResult(NamedTuple):
    """The executions of one arrival, the quantity left over and what became of it."""

    executions: tuple[Execution, ...]
    remaining: Decimal
    outcome: Outcome
