"""The order transition table: the one place that says which move of an order is legal."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from oms.domain.enums import OrderStatus
from oms.domain.errors import DomainError


class Trigger(StrEnum):
    """What happens to an order; the table decides where it takes the order."""

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    CANCEL = "CANCEL"  # requested, IOC/MARKET remainder, FOK kill, expiry: reason on the event
    PARTIAL_FILL = "PARTIAL_FILL"
    FILL = "FILL"  # the fill that completes the quantity
    SETTLE = "SETTLE"
    AMEND = "AMEND"  # price and/or quantity changed; the status stays
    AMEND_REJECT = "AMEND_REJECT"  # an amend refused (the order stays as it was): recorded
    TRIGGER = "TRIGGER"  # a stop order's stop price was crossed: it works as what it becomes
    EXPIRE = "EXPIRE"  # a GTD order's time came
    DOUBT = "DOUBT"  # a request to the venue ended without an answer: its outcome is unknown
    RESOLVE = "RESOLVE"  # the venue's word on an in-doubt order, nothing filled yet
    RESOLVE_PARTIAL = "RESOLVE_PARTIAL"  # ... with part of it filled


_S = OrderStatus
_T = Trigger

ORDER_TRANSITIONS: Mapping[tuple[OrderStatus, Trigger], OrderStatus] = MappingProxyType(
    {
        (_S.NEW, _T.ACCEPT): _S.ACCEPTED,
        (_S.NEW, _T.REJECT): _S.REJECTED,
        (_S.NEW, _T.CANCEL): _S.CANCELLED,
        (_S.ACCEPTED, _T.PARTIAL_FILL): _S.PARTIALLY_FILLED,
        (_S.ACCEPTED, _T.FILL): _S.FILLED,
        (_S.ACCEPTED, _T.CANCEL): _S.CANCELLED,
        (_S.PARTIALLY_FILLED, _T.PARTIAL_FILL): _S.PARTIALLY_FILLED,
        (_S.PARTIALLY_FILLED, _T.FILL): _S.FILLED,
        # The filled part stays filled: it was booked fill by fill and is settled.
        (_S.PARTIALLY_FILLED, _T.CANCEL): _S.CANCELLED,
        (_S.FILLED, _T.SETTLE): _S.SETTLED,
        # An open order may be amended (price and/or quantity, never below what has filled);
        # the status stays: an amended PARTIALLY_FILLED order is still partially filled. A NEW
        # order is not amended (risk has not reserved for it yet: cancel and place again), nor
        # a FILLED or terminal one.
        (_S.ACCEPTED, _T.AMEND): _S.ACCEPTED,
        (_S.PARTIALLY_FILLED, _T.AMEND): _S.PARTIALLY_FILLED,
        # A refused amend is recorded on the order's history, which it does not otherwise change.
        (_S.NEW, _T.AMEND_REJECT): _S.NEW,
        (_S.ACCEPTED, _T.AMEND_REJECT): _S.ACCEPTED,
        (_S.PARTIALLY_FILLED, _T.AMEND_REJECT): _S.PARTIALLY_FILLED,
        (_S.FILLED, _T.AMEND_REJECT): _S.FILLED,
        # The venue refuses a post-only order that would take liquidity on arrival, or a stop
        # the last price has already passed: risk had accepted it, so it is rejected from
        # ACCEPTED (with POST_ONLY_WOULD_CROSS or STOP_PRICE_WRONG_SIDE), never filled as a
        # taker; its reservation is released.
        (_S.ACCEPTED, _T.REJECT): _S.REJECTED,
        # A stop rests ACCEPTED, untriggered; triggered, it stays ACCEPTED (nothing filled yet).
        (_S.ACCEPTED, _T.TRIGGER): _S.ACCEPTED,
        # A GTD order expires as a cancel would end it: the filled part stays filled and settled.
        (_S.NEW, _T.EXPIRE): _S.EXPIRED,
        (_S.ACCEPTED, _T.EXPIRE): _S.EXPIRED,
        (_S.PARTIALLY_FILLED, _T.EXPIRE): _S.EXPIRED,
        # A place or a cancel whose answer never came (a timeout, a 5xx, a dropped connection)
        # leaves the order IN_DOUBT: it keeps its reservation and is never sent again; only the
        # venue's word moves it on. That word is its answer to a query by client order id
        # (RESOLVE: back to what its fills make it; REJECT: the venue never had it) or a fill.
        # Deliberately absent: (IN_DOUBT, CANCEL / EXPIRE), because nothing is guessed (a cancel
        # waits for the venue's word, and what the venue holds decides how the order ends).
        (_S.ACCEPTED, _T.DOUBT): _S.IN_DOUBT,
        (_S.PARTIALLY_FILLED, _T.DOUBT): _S.IN_DOUBT,
        (_S.IN_DOUBT, _T.RESOLVE): _S.ACCEPTED,
        (_S.IN_DOUBT, _T.RESOLVE_PARTIAL): _S.PARTIALLY_FILLED,
        (_S.IN_DOUBT, _T.REJECT): _S.REJECTED,
        # A fill is the venue's word that the order is there, but not on what became of the
        # request in doubt (a cancel may still have taken the rest): it is booked and the order
        # stays in doubt until the query answers, unless it filled the order whole.
        (_S.IN_DOUBT, _T.PARTIAL_FILL): _S.IN_DOUBT,
        (_S.IN_DOUBT, _T.FILL): _S.FILLED,
        (_S.IN_DOUBT, _T.AMEND_REJECT): _S.IN_DOUBT,
        # Deliberately absent: (CANCELLED, FILL / PARTIAL_FILL). Real venues do send a fill after
        # a cancel, but only one that crossed the cancel in flight. The order actor treats a
        # cancel as done only when the venue has confirmed it and every fill the venue made before
        # that has arrived (it counts the venue's leaves quantity), so such a fill lands while the
        # order is still open. A fill that still arrives after CANCELLED is an execution the
        # venue made after confirming the cancel: it is refused here (terminal states never
        # change) and the caller surfaces it for reconciliation instead of bending the ledger.
    }
)


class InvalidTransition(DomainError):
    """The table has no move for this trigger in this state; nothing was changed."""

    code = "INVALID_TRANSITION"

    def __init__(self, status: OrderStatus, trigger: Trigger) -> None:
        super().__init__(f"{status.value} -> {trigger.value}")
        self.status = status
        self.trigger = trigger


def next_status(status: OrderStatus, trigger: Trigger) -> OrderStatus:
    """Where ``trigger`` takes an order in ``status``, or ``InvalidTransition``."""
    try:
        return ORDER_TRANSITIONS[(status, trigger)]
    except KeyError:
        raise InvalidTransition(status, trigger) from None
