"""The order process: what one order's actor decides, as a pure state machine.

``OrderProcess`` holds one order's process state and turns each message into a new state, the
events to record and the effects to send: ``(state, message) -> (state, events, effects)``. It
does no I/O and knows no actor: the actor shell (``oms.actors.order``) hands it the messages it
receives, records the events it wrote in the journal, and turns the effects into messages to the
risk supervisor, the venue and the directory.

Two tables, two questions. The order's *status* (NEW, ACCEPTED, ...) moves only along
``ORDER_TRANSITIONS``, through ``oms.domain.orders.apply`` (check, then change). The process's own
*phase* (waiting for risk, arriving at the venue, resting, closing, settling, ...) moves only
along ``PHASE_MOVES`` below: a message the table has no move for in the current phase is refused
with ``InvalidPhaseMove`` ("RESTING -> ACCEPT") and changes nothing. Every message checks both
before it changes anything (the fills of one venue batch excepted: each is applied in turn, and a
refused one stops the batch, as ``apply`` refuses it, after those before it).

Life of an order:
  PlaceOrder -> OrderPlaced (NEW) -> ask risk -> OrderAccepted / OrderRejected -> submit to the
  venue -> its answer (fills, and whether the rest rests) -> OrderFilled* -> settle (book the
  fills, and release the reservation once nothing more can fill) -> released -> OrderSettled /
  OrderCancelled. A resting order waits for fills or a cancel; once nothing is in flight it
  reports itself idle, so that its actor may be passivated.

A cancel is final only when the venue has confirmed it *and* every fill the venue made before
confirming has arrived: the venue reports the quantity it removed (its leaves), and the order is
closed once ``filled == quantity - leaves``. That is why a fill crossing a cancel in flight never
meets a CANCELLED order.

An amend (a resting LIMIT order only) asks risk first, which reserves for the larger of the old
and the new terms (the venue may fill either until it has changed the order), then the venue,
and only then records ``OrderAmended`` and lets risk trim the reservation (``CommitAmend``); a
refusal anywhere is an ``AmendRejected`` event and the order stays as it was. A stop rests
untriggered in RESTING until the venue reports it triggered (``OrderTriggered``, then its
arrival as what it became); a GTD order's expiry leaves as a cancel does and ends EXPIRED; a
post-only order the venue refuses is REJECTED from ACCEPTED and its reservation released.

Recovery goes through the same decisions: a NEW order rehydrated from the store sits in PLACED,
the phase of a just-placed order, and ``Resume`` makes the move a placement makes (ask risk); an
accepted one whose arrival result was lost is closed the way the venue closes an IOC remainder.

Why here, in the domain: the process reads only domain values (commands, fills, events,
``CancelReason``, amounts) and writes its own effect types, so it depends on nothing above the
domain. The shell unpacks the actor messages (``RiskAnswer``, ``Matched``, ...) into these
values, as the actor did already, so the layering costs no extra object per message.

Speed: this is the engine's hot path (every order is at least four messages here: place, risk's
answer, the venue's answer, the release). The state has slots, effects without data are shared
singletons, the outbox's two lists are reused by every order of an engine, and enum members used
per message are bound to module names (an attribute of an Enum class costs about 0.2 us to read
here, a global a tenth of that).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple, TypeAlias

from oms.domain.commands import AmendOrder, ApplyFill, CancelOrder, ExpireOrder, PlaceOrder
from oms.domain.enums import TERMINAL_STATUSES, OrderStatus, OrderType
from oms.domain.errors import DomainError, InvalidOrder
from oms.domain.events import (
    CancelReason,
    DoubtedRequest,
    OrderEvent,
    VenueWord,
    new_amend_rejected,
    new_order_accepted,
    new_order_amended,
    new_order_cancelled,
    new_order_doubt_resolved,
    new_order_expired,
    new_order_filled,
    new_order_in_doubt,
    new_order_placed,
    new_order_rejected,
    new_order_settled,
    new_order_triggered,
)
from oms.domain.instruments import Instrument
from oms.domain.messages import distinct
from oms.domain.order_terms import term_problems
from oms.domain.orders import Order, apply
from oms.domain.reasons import (
    OrderCheckReason,
    RejectionReason,
    RejectReason,
    known_rejection_reason,
)
from oms.domain.transitions import ORDER_TRANSITIONS, InvalidTransition, Trigger


class Phase(StrEnum):
    """Where an order's process stands; the legal moves are in ``PHASE_MOVES``."""

    # Hashed as the plain string (C, cached) rather than by Enum's Python-level __hash__: the
    # table is looked up several times per order (about 0.45 us a lookup the other way).
    __hash__ = str.__hash__

    UNPLACED = "UNPLACED"  # no order yet
    PLACED = "PLACED"  # NEW, risk not asked (just placed, or rehydrated: Resume asks it)
    AWAITING_RISK = "AWAITING_RISK"  # NEW, risk asked
    WITHDRAWN = "WITHDRAWN"  # CANCELLED while risk was deciding; its answer is still due
    ARRIVING = "ARRIVING"  # accepted and sent to the venue; its answer is not back
    CANCEL_HELD = "CANCEL_HELD"  # arriving, and a cancel waits for the venue's answer
    RESTING = "RESTING"  # in the venue's book (rehydrated orders start here)
    CANCELLING = "CANCELLING"  # the venue was asked to take it out
    WORKING = "WORKING"  # open, not in the simulated venue's book: fills come from outside
    AMEND_RISK = "AMEND_RISK"  # resting, an amend asked risk to reserve for the new terms
    AMEND_VENUE = "AMEND_VENUE"  # risk reserved for the amend: the venue was asked to change it
    IN_DOUBT = "IN_DOUBT"  # the place's answer never came: the venue's word is asked
    DOUBT_CANCEL_HELD = "DOUBT_CANCEL_HELD"  # in doubt, and a cancel waits for the venue's word
    CANCEL_IN_DOUBT = "CANCEL_IN_DOUBT"  # the cancel's answer never came: the word is asked
    CLOSING = "CLOSING"  # nothing more rests: waiting for the fills up to ``close_at``
    SETTLING = "SETTLING"  # every fill is in: the release of the reservation is asked
    ENDING = "ENDING"  # released: waiting for the last answers, then SETTLED or CANCELLED
    DONE = "DONE"  # ended, nothing in flight: the actor stops


class Step(StrEnum):
    """What happens to the process: a message it received, or a move that follows from one."""

    __hash__ = str.__hash__  # see Phase

    PLACE = "PLACE"  # a PlaceOrder creates the order
    ASK_RISK = "ASK_RISK"  # a placed order is sent to risk (after PLACE, or on Resume)
    ACCEPT = "ACCEPT"  # risk accepted: on to the simulated venue
    ACCEPT_EXTERNAL = "ACCEPT_EXTERNAL"  # risk accepted, no simulated venue: fills from outside
    REJECT = "REJECT"  # risk (or validation, or a risk error) refused the order
    CANCEL = "CANCEL"  # a CancelOrder not seen before
    FILL = "FILL"  # an execution from outside (ApplyFill) not seen before
    VENUE_FILLS = "VENUE_FILLS"  # executions the simulated venue made on the resting order
    ARRIVED_RESTING = "ARRIVED_RESTING"  # the venue's answer to the arrival: the rest rests
    ARRIVED_CLOSED = (
        "ARRIVED_CLOSED"  # ... nothing rests: filled whole, remainder cancelled, killed
    )
    VENUE_CANCELLED = "VENUE_CANCELLED"  # the venue removed what it held (its leaves)
    VENUE_NOT_HELD = "VENUE_NOT_HELD"  # the venue no longer held it: its fills are on their way
    SETTLED = "SETTLED"  # risk booked fills
    RELEASE = "RELEASE"  # nothing more can fill: ask risk to release the reservation
    RELEASED = "RELEASED"  # risk released the reservation
    RESUME = "RESUME"  # after a restart: the arrival's answer was lost
    AMEND = "AMEND"  # an AmendOrder not seen before, that passes the order's own checks
    AMEND_RESERVED = "AMEND_RESERVED"  # risk reserved for the amended terms
    AMEND_DENIED = "AMEND_DENIED"  # risk refused the amended terms
    VENUE_AMENDED = "VENUE_AMENDED"  # the venue changed the order (or refused: nothing changed)
    VENUE_AMEND_NOT_HELD = "VENUE_AMEND_NOT_HELD"  # the venue no longer held it: fills on the way
    TRIGGERED_RESTING = "TRIGGERED_RESTING"  # a stop triggered: it rests as the LIMIT it became
    TRIGGERED_CLOSED = "TRIGGERED_CLOSED"  # ... it arrived and nothing rests (MARKET, filled)
    END = "END"  # released and nothing in flight: SETTLED or CANCELLED, then done
    # A network venue (``oms.venue.port``): a request's outcome is unknown, and the venue's
    # word on the order, as its answer to the place, to a cancel, or to the query of a doubt.
    DOUBT = "DOUBT"
    VENUE_OPEN = "VENUE_OPEN"  # it holds the order: fills come as they happen
    VENUE_CLOSED = "VENUE_CLOSED"  # nothing rests there (filled, cancelled, expired)
    VENUE_NOT_FOUND = "VENUE_NOT_FOUND"  # it never had the order


_P = Phase
_S = Step

PHASE_MOVES: Mapping[tuple[Phase, Step], Phase] = MappingProxyType(
    {
        # -- placing, and risk's answer ------------------------------------------------------
        (_P.UNPLACED, _S.PLACE): _P.PLACED,
        # Recovery makes this move too: a rehydrated NEW order is in PLACED, and Resume asks.
        (_P.PLACED, _S.ASK_RISK): _P.AWAITING_RISK,
        (_P.PLACED, _S.REJECT): _P.DONE,  # invalid as placed: refused before risk is asked
        (_P.PLACED, _S.CANCEL): _P.DONE,  # rehydrated NEW, risk not asked again: nothing due
        (_P.AWAITING_RISK, _S.ACCEPT): _P.ARRIVING,
        (_P.AWAITING_RISK, _S.ACCEPT_EXTERNAL): _P.WORKING,
        (_P.AWAITING_RISK, _S.REJECT): _P.DONE,
        (_P.AWAITING_RISK, _S.CANCEL): _P.WITHDRAWN,
        # Risk reserved for an order cancelled meanwhile: the reservation is released at once.
        (_P.WITHDRAWN, _S.ACCEPT): _P.SETTLING,
        (_P.WITHDRAWN, _S.ACCEPT_EXTERNAL): _P.SETTLING,
        (_P.WITHDRAWN, _S.REJECT): _P.DONE,
        # -- arriving at the venue -----------------------------------------------------------
        (_P.ARRIVING, _S.ARRIVED_RESTING): _P.RESTING,
        (_P.ARRIVING, _S.ARRIVED_CLOSED): _P.CLOSING,
        (_P.ARRIVING, _S.CANCEL): _P.CANCEL_HELD,
        # Odd but legal: fills from outside while the simulated venue decides (both fill it;
        # the venue's fills are then kept to what is left, as on a resting order).
        (_P.ARRIVING, _S.FILL): _P.ARRIVING,
        (_P.ARRIVING, _S.SETTLED): _P.ARRIVING,
        (_P.ARRIVING, _S.RELEASE): _P.SETTLING,  # filled whole from outside: the answer still comes
        (_P.CANCEL_HELD, _S.ARRIVED_RESTING): _P.CANCELLING,  # the held cancel goes now
        # Nothing rests, so the held cancel has nothing to take: the order closes as the venue
        # says (REMAINDER or FOK_KILLED), not REQUESTED.
        (_P.CANCEL_HELD, _S.ARRIVED_CLOSED): _P.CLOSING,
        (_P.CANCEL_HELD, _S.CANCEL): _P.CANCEL_HELD,  # already on its way out
        (_P.CANCEL_HELD, _S.FILL): _P.CANCEL_HELD,
        (_P.CANCEL_HELD, _S.SETTLED): _P.CANCEL_HELD,
        (_P.CANCEL_HELD, _S.RELEASE): _P.SETTLING,
        # -- resting in the venue's book -----------------------------------------------------
        (_P.RESTING, _S.CANCEL): _P.CANCELLING,
        (_P.RESTING, _S.FILL): _P.RESTING,  # filled whole from outside: withdrawn from the venue
        (_P.RESTING, _S.VENUE_FILLS): _P.RESTING,
        (_P.RESTING, _S.SETTLED): _P.RESTING,
        (_P.RESTING, _S.RELEASE): _P.SETTLING,
        # Rehydrated after a restart and not put back in the venue's book (recovery puts back
        # only GTC LIMIT orders, which are not resumed): its moment to match has passed, so the
        # rest is closed as the venue closes an IOC remainder (REMAINDER).
        (_P.RESTING, _S.RESUME): _P.CLOSING,
        (_P.CANCELLING, _S.CANCEL): _P.CANCELLING,  # already on its way out
        (_P.CANCELLING, _S.FILL): _P.CANCELLING,
        (_P.CANCELLING, _S.VENUE_FILLS): _P.CANCELLING,  # made before the venue took it out
        (_P.CANCELLING, _S.SETTLED): _P.CANCELLING,
        (_P.CANCELLING, _S.VENUE_CANCELLED): _P.CLOSING,
        (_P.CANCELLING, _S.VENUE_NOT_HELD): _P.WORKING,  # filled whole there: fills on their way
        # A fill completed the order while its cancel was on the way; the venue's answer comes.
        (_P.CANCELLING, _S.RELEASE): _P.SETTLING,
        # -- amending a resting order: risk first (it reserves for the larger of the old and the
        # new terms, so no fill ever finds too little reserved), then the venue, then the amend
        # is recorded and risk trims the reservation to the new terms. Fills go on meanwhile.
        (_P.RESTING, _S.AMEND): _P.AMEND_RISK,
        (_P.AMEND_RISK, _S.AMEND_RESERVED): _P.AMEND_VENUE,
        (_P.AMEND_RISK, _S.AMEND_DENIED): _P.RESTING,
        (_P.AMEND_RISK, _S.CANCEL): _P.CANCELLING,  # the cancel wins: the amend's answer is late
        (_P.AMEND_RISK, _S.FILL): _P.AMEND_RISK,
        (_P.AMEND_RISK, _S.VENUE_FILLS): _P.AMEND_RISK,
        (_P.AMEND_RISK, _S.SETTLED): _P.AMEND_RISK,
        (_P.AMEND_RISK, _S.RELEASE): _P.SETTLING,  # filled whole meanwhile: the answer is late
        (_P.AMEND_VENUE, _S.VENUE_AMENDED): _P.RESTING,
        (_P.AMEND_VENUE, _S.VENUE_AMEND_NOT_HELD): _P.WORKING,  # filled whole there
        # Sent after the amend, the cancel reaches the venue after it: the venue's answer to the
        # amend comes first, and the leaves the cancel reports are of the amended order.
        (_P.AMEND_VENUE, _S.CANCEL): _P.CANCELLING,
        (_P.AMEND_VENUE, _S.FILL): _P.AMEND_VENUE,
        (_P.AMEND_VENUE, _S.VENUE_FILLS): _P.AMEND_VENUE,
        (_P.AMEND_VENUE, _S.SETTLED): _P.AMEND_VENUE,
        (_P.AMEND_VENUE, _S.RELEASE): _P.SETTLING,
        # Late answers to an amend (a cancel or the last fill crossed it): recorded, no move.
        **{
            (phase, step): phase
            for phase in (_P.CANCELLING, _P.CLOSING, _P.WORKING, _P.SETTLING, _P.ENDING)
            for step in (_S.AMEND_RESERVED, _S.AMEND_DENIED, _S.VENUE_AMENDED)
        },
        **{
            (phase, _S.VENUE_AMEND_NOT_HELD): phase
            for phase in (_P.CANCELLING, _P.CLOSING, _P.WORKING, _P.SETTLING, _P.ENDING)
        },
        # -- stops: an untriggered stop rests (the venue holds it apart); the market triggers
        # it, and it arrives then as the MARKET or LIMIT order it becomes.
        (_P.RESTING, _S.TRIGGERED_RESTING): _P.RESTING,
        (_P.RESTING, _S.TRIGGERED_CLOSED): _P.CLOSING,
        # Triggered while its cancel was on the way: the venue takes out what rests, or has
        # nothing left to take (its answer, not held, then finds the order closing).
        (_P.CANCELLING, _S.TRIGGERED_RESTING): _P.CANCELLING,
        (_P.CANCELLING, _S.TRIGGERED_CLOSED): _P.CLOSING,
        # The cancel's not-held answer came first. (Closed by its trigger, the order has every
        # fill at once and moves on to SETTLING, where a late not-held answer already fits.)
        (_P.WORKING, _S.TRIGGERED_CLOSED): _P.CLOSING,
        # -- open, not in the venue's book ---------------------------------------------------
        (_P.WORKING, _S.CANCEL): _P.CLOSING,  # closes at what has filled: released at once
        (_P.WORKING, _S.FILL): _P.WORKING,
        (_P.WORKING, _S.VENUE_FILLS): _P.WORKING,
        (_P.WORKING, _S.SETTLED): _P.WORKING,
        (_P.WORKING, _S.RELEASE): _P.SETTLING,
        # -- closing: waiting for the fills made before the close ----------------------------
        (_P.CLOSING, _S.CANCEL): _P.CLOSING,  # already on its way out
        (_P.CLOSING, _S.FILL): _P.CLOSING,
        (_P.CLOSING, _S.VENUE_FILLS): _P.CLOSING,
        (_P.CLOSING, _S.SETTLED): _P.CLOSING,
        (_P.CLOSING, _S.RELEASE): _P.SETTLING,
        # -- settling: the release is asked --------------------------------------------------
        (_P.SETTLING, _S.CANCEL): _P.SETTLING,  # closed, not FILLED: already on its way out
        # Odd: a fill beyond the close (from outside, or venue fills when something else filled
        # part of it); applied if the order has room, and booked before the end.
        (_P.SETTLING, _S.FILL): _P.SETTLING,
        (_P.SETTLING, _S.VENUE_FILLS): _P.SETTLING,
        (_P.SETTLING, _S.SETTLED): _P.SETTLING,
        # Late answers to a request that crossed the last fill: the venue's answer to the
        # arrival (after fills from outside completed the order) or to a cancel.
        (_P.SETTLING, _S.ARRIVED_RESTING): _P.SETTLING,  # what rests there is withdrawn
        (_P.SETTLING, _S.ARRIVED_CLOSED): _P.SETTLING,
        (_P.SETTLING, _S.VENUE_CANCELLED): _P.SETTLING,
        (_P.SETTLING, _S.VENUE_NOT_HELD): _P.SETTLING,
        (_P.SETTLING, _S.RELEASED): _P.ENDING,
        # -- a network venue's word ------------------------------------------------------------
        # Its answer to the place: the order is open there (fills come as they happen, from
        # outside), or nothing rests (filled, or an IOC/FOK remainder expired).
        (_P.ARRIVING, _S.VENUE_OPEN): _P.RESTING,
        (_P.ARRIVING, _S.VENUE_CLOSED): _P.CLOSING,
        (_P.CANCEL_HELD, _S.VENUE_OPEN): _P.CANCELLING,  # the held cancel goes now
        (_P.CANCEL_HELD, _S.VENUE_CLOSED): _P.CLOSING,
        # -- in doubt: a request's answer never came, so the venue is asked (by client order
        # id, never by sending the request again) and the order waits for its word, keeping
        # its reservation. Fills go on meanwhile; a cancel waits for the word.
        (_P.ARRIVING, _S.DOUBT): _P.IN_DOUBT,
        (_P.CANCEL_HELD, _S.DOUBT): _P.DOUBT_CANCEL_HELD,
        (_P.CANCELLING, _S.DOUBT): _P.CANCEL_IN_DOUBT,
        (_P.IN_DOUBT, _S.VENUE_OPEN): _P.RESTING,
        (_P.IN_DOUBT, _S.VENUE_CLOSED): _P.CLOSING,
        (_P.IN_DOUBT, _S.VENUE_NOT_FOUND): _P.CLOSING,  # REJECTED: closes at nothing filled
        (_P.IN_DOUBT, _S.CANCEL): _P.DOUBT_CANCEL_HELD,
        (_P.DOUBT_CANCEL_HELD, _S.VENUE_OPEN): _P.CANCELLING,  # the held cancel goes now
        (_P.DOUBT_CANCEL_HELD, _S.VENUE_CLOSED): _P.CLOSING,
        (_P.DOUBT_CANCEL_HELD, _S.VENUE_NOT_FOUND): _P.CLOSING,
        (_P.DOUBT_CANCEL_HELD, _S.CANCEL): _P.DOUBT_CANCEL_HELD,
        # Still open after a cancel whose answer was lost: the cancel is sent again (a second
        # cancel can take nothing the first did not; only a place is never repeated).
        (_P.CANCEL_IN_DOUBT, _S.VENUE_OPEN): _P.CANCELLING,
        (_P.CANCEL_IN_DOUBT, _S.VENUE_CLOSED): _P.CLOSING,
        (_P.CANCEL_IN_DOUBT, _S.CANCEL): _P.CANCEL_IN_DOUBT,
        **{
            (phase, step): phase
            for phase in (_P.IN_DOUBT, _P.DOUBT_CANCEL_HELD, _P.CANCEL_IN_DOUBT)
            for step in (_S.FILL, _S.SETTLED)
        },
        (_P.IN_DOUBT, _S.RELEASE): _P.SETTLING,  # filled whole: the word comes late
        (_P.DOUBT_CANCEL_HELD, _S.RELEASE): _P.SETTLING,
        (_P.CANCEL_IN_DOUBT, _S.RELEASE): _P.SETTLING,
        # Late words and doubts (a fill completed the order while they were on their way).
        **{
            (phase, step): phase
            for phase in (_P.SETTLING, _P.ENDING)
            for step in (_S.DOUBT, _S.VENUE_OPEN, _S.VENUE_CLOSED, _S.VENUE_NOT_FOUND)
        },
        # Deliberately absent: (CANCEL_IN_DOUBT, VENUE_NOT_FOUND): the venue acknowledged the
        # order and now says it never had it. Nothing explains that, so nothing is guessed: the
        # order stays in doubt for reconciliation (``venue_said`` answers False).
        # -- ending: released, the last answers still due ------------------------------------
        (_P.ENDING, _S.CANCEL): _P.ENDING,
        (_P.ENDING, _S.FILL): _P.ENDING,
        (_P.ENDING, _S.VENUE_FILLS): _P.ENDING,
        (_P.ENDING, _S.SETTLED): _P.ENDING,
        (_P.ENDING, _S.ARRIVED_RESTING): _P.ENDING,
        (_P.ENDING, _S.ARRIVED_CLOSED): _P.ENDING,
        (_P.ENDING, _S.VENUE_CANCELLED): _P.ENDING,
        (_P.ENDING, _S.VENUE_NOT_HELD): _P.ENDING,
        (_P.ENDING, _S.END): _P.DONE,
        # Deliberately absent: every move out of DONE (its actor has stopped; what reaches it
        # later is routed again to the order as the store has it), and every answer in a phase
        # that asked nothing of whoever answers (a risk answer while resting, an arrival while
        # cancelling): either would be a bug, and is refused rather than guessed at.
    }
)


def _by_phase(moves: Mapping[tuple[Phase, Step], Phase]) -> dict[Phase, dict[Step, Phase]]:
    nested: dict[Phase, dict[Step, Phase]] = {phase: {} for phase in Phase}
    for (phase, step), to in moves.items():
        nested[phase][step] = to
    return nested


# The table as nested plain dicts, for the hot path (a MappingProxyType adds a call per lookup).
_MOVES = _by_phase(PHASE_MOVES)

# The phases that may move to SETTLING once nothing more can fill.
_MAY_RELEASE = frozenset(phase for (phase, step) in PHASE_MOVES if step is Step.RELEASE)


class InvalidPhaseMove(DomainError):
    """The phase table has no move for this step in this phase; nothing was changed."""

    code = "INVALID_PHASE_MOVE"

    def __init__(self, phase: Phase, step: Step) -> None:
        super().__init__(f"{phase.value} -> {step.value}")
        self.phase = phase
        self.step = step


def next_phase(phase: Phase, step: Step) -> Phase:
    """Where ``step`` takes a process in ``phase``, or ``InvalidPhaseMove``."""
    try:
        return _MOVES[phase][step]
    except KeyError:
        raise InvalidPhaseMove(phase, step) from None


# -- effects: what the process asks the outside world to do -----------------------------------
# Messages, so written as every message is (``oms.domain.messages``): ``NamedTuple``s, made
# ``distinct`` so that two effects with equal fields (the empty ones especially) never compare
# equal. The two made for every order (``AskRisk``, ``SettleWithRisk``) are built straight from
# a tuple; those without data (or with only a flag) are built once, below, and tested by identity.


@distinct
class AskRisk(NamedTuple):
    """Ask risk to check the order as placed and, if it passes, reserve for it (answer: accept
    or reject)."""

    order: PlaceOrder
    now: float


@distinct
class SubmitToVenue(NamedTuple):
    """Send the accepted order (as the process holds it) to the simulated venue (answer: its
    arrival result)."""


@distinct
class PullFromVenue(NamedTuple):
    """Take the order out of the venue's book; ``answer``: the venue reports what it removed
    (False: a withdrawal nobody waits for, of an order filled from outside)."""

    answer: bool


@distinct
class SettleWithRisk(NamedTuple):
    """Ask risk to book these fills and then, if ``release``, release what is left of the
    reservation (answer: settled, or released)."""

    fills: tuple[ApplyFill, ...]
    release: bool


@distinct
class ReportIdle(NamedTuple):
    """Nothing in flight and resting at the venue: the order's actor may be passivated."""


@distinct
class ReportFinished(NamedTuple):
    """The order has ended and nothing is in flight: stop its actor, the directory forgets it."""


@distinct
class DropVenueFill(NamedTuple):
    """A simulated venue's execution the order has no room for (it filled or ended meanwhile):
    not applied, to be logged."""

    fill: ApplyFill


@distinct
class ReserveForAmend(NamedTuple):
    """Ask risk to check the order with ``delta`` more quantity (negative: less) at ``price``
    and, if it passes, reserve for the larger of the old and the new terms (answer: reserved,
    with the protection price, or denied)."""

    delta: Decimal
    price: Decimal
    now: float


@distinct
class AmendAtVenue(NamedTuple):
    """Ask the venue to change the resting order by ``delta`` quantity, to ``price`` (answer:
    what it now holds, or that it no longer holds the order)."""

    delta: Decimal
    price: Decimal


@distinct
class QueryVenue(NamedTuple):
    """Ask the venue for its word on the order (by client order id): a restored in-doubt
    order's query (answer: the venue's word)."""


@distinct
class CommitAmend(NamedTuple):
    """Tell risk the amend's outcome (``delta`` zero and the old price: it was refused) and let
    it trim the reservation; ``venue_remaining`` is what the venue holds after the amend (None:
    unknown). No answer: the trim only gives back."""

    delta: Decimal
    price: Decimal
    venue_remaining: Decimal | None


Effect: TypeAlias = (
    AskRisk
    | SubmitToVenue
    | PullFromVenue
    | SettleWithRisk
    | ReportIdle
    | ReportFinished
    | DropVenueFill
    | ReserveForAmend
    | AmendAtVenue
    | CommitAmend
    | QueryVenue
)

# Effects without data (or with only a flag) are built once and shared by every order.
SUBMIT_TO_VENUE = SubmitToVenue()
PULL_FROM_VENUE = PullFromVenue(answer=True)
WITHDRAW_FROM_VENUE = PullFromVenue(answer=False)
RELEASE_RESERVATION = SettleWithRisk(fills=(), release=True)
REPORT_IDLE = ReportIdle()
REPORT_FINISHED = ReportFinished()
QUERY_VENUE = QueryVenue()
_new = tuple.__new__  # builds AskRisk and SettleWithRisk from a tuple of their fields


class ProcessContext:
    """What every order process of one engine shares: the listed instruments, and the outbox.

    The outbox (``events``, ``effects``) is where a process writes what one message decided; the
    shell empties both after every message. One pair of lists serves every order because one
    dispatcher thread runs them all, one message at a time: a list pair per order would cost two
    allocations per order and about a hundred bytes per live order.
    """

    __slots__ = ("effects", "events", "instruments")

    def __init__(self, instruments: Mapping[str, Instrument]) -> None:
        self.instruments = instruments
        self.events: list[OrderEvent] = []
        self.effects: list[Effect] = []


# Members bound once (see the module docstring).
_NEW = OrderStatus.NEW
_ACCEPTED = OrderStatus.ACCEPTED
_PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
_FILLED = OrderStatus.FILLED
_LIMIT = OrderType.LIMIT
_TERMINAL = TERMINAL_STATUSES  # a set lookup: ``is_terminal`` is a property call more
_MARKET = OrderType.MARKET
_REQUESTED = CancelReason.REQUESTED
_REMAINDER = CancelReason.REMAINDER
_EXPIRED = CancelReason.EXPIRED
_UNPLACED = Phase.UNPLACED
_PLACED = Phase.PLACED
_AWAITING_RISK = Phase.AWAITING_RISK
_WITHDRAWN = Phase.WITHDRAWN
_RESTING = Phase.RESTING
_CANCELLING = Phase.CANCELLING
_WORKING = Phase.WORKING
_CLOSING = Phase.CLOSING
_SETTLING = Phase.SETTLING
_ENDING = Phase.ENDING
_DONE = Phase.DONE
_PLACE = Step.PLACE
_ASK_RISK = Step.ASK_RISK
_ACCEPT = Step.ACCEPT
_ACCEPT_EXTERNAL = Step.ACCEPT_EXTERNAL
_REJECT = Step.REJECT
_CANCEL = Step.CANCEL
_FILL = Step.FILL
_VENUE_FILLS = Step.VENUE_FILLS
_ARRIVED_RESTING = Step.ARRIVED_RESTING
_ARRIVED_CLOSED = Step.ARRIVED_CLOSED
_VENUE_CANCELLED = Step.VENUE_CANCELLED
_VENUE_NOT_HELD = Step.VENUE_NOT_HELD
_SETTLED = Step.SETTLED
_RELEASE = Step.RELEASE
_RELEASED = Step.RELEASED
_RESUME = Step.RESUME
_END = Step.END
_AMEND = Step.AMEND
_AMEND_RESERVED = Step.AMEND_RESERVED
_AMEND_DENIED = Step.AMEND_DENIED
_VENUE_AMENDED = Step.VENUE_AMENDED
_VENUE_AMEND_NOT_HELD = Step.VENUE_AMEND_NOT_HELD
_TRIGGERED_RESTING = Step.TRIGGERED_RESTING
_TRIGGERED_CLOSED = Step.TRIGGERED_CLOSED
_ZERO = Decimal(0)
_IN_DOUBT = Phase.IN_DOUBT
_DOUBT_CANCEL_HELD = Phase.DOUBT_CANCEL_HELD
_CANCEL_IN_DOUBT = Phase.CANCEL_IN_DOUBT
_IN_DOUBT_STATUS = OrderStatus.IN_DOUBT
_AMEND_RISK = Phase.AMEND_RISK
_AMEND_VENUE = Phase.AMEND_VENUE
_ARRIVING = Phase.ARRIVING
_DOUBT = Step.DOUBT
_VENUE_NOT_FOUND = Step.VENUE_NOT_FOUND
_WORD_STEPS = {
    VenueWord.OPEN: Step.VENUE_OPEN,
    VenueWord.FILLED: Step.VENUE_CLOSED,
    VenueWord.CLOSED: Step.VENUE_CLOSED,
    VenueWord.NOT_FOUND: Step.VENUE_NOT_FOUND,
}
_AT_VENUE = (
    _RESTING,
    _CANCELLING,
    _AMEND_RISK,
    _AMEND_VENUE,
)  # the venue's book holds the order (a fill may withdraw it)
_LATE = (_SETTLING, _ENDING)  # answers here crossed the last fill
# Phases where the order is already leaving (a cancel or a close is under way).
_ON_ITS_WAY_OUT = frozenset(
    {
        Phase.CANCEL_HELD,
        Phase.DOUBT_CANCEL_HELD,
        Phase.CANCEL_IN_DOUBT,
        Phase.CANCELLING,
        Phase.CLOSING,
        Phase.SETTLING,
        Phase.ENDING,
    }
)


class OrderProcess:
    """One order's process state, and the decisions each message makes on it.

    Every method takes one message (unpacked into domain values) and the time, checks the moves
    (the order table's, through ``apply``, and the phase table's), then changes the state and
    writes the events to record and the effects to send into the shared outbox. Refusals raise
    and change nothing.

    The four methods every order goes through (``place``, ``risk_accepted``, ``arrived``,
    ``settled``) and what they call look the phase table up and record events inline rather
    than through ``next_phase`` and ``_record``: measured against the old actor's handlers
    (driven directly, old and new interleaved in one process), the first version, with a helper
    call for each, took about a fifth longer per order. The table they read is the same.
    """

    __slots__ = (
        "amending",
        "applied",
        "cancel_id",
        "cancel_request",
        "close_at",
        "close_reason",
        "context",
        "expiring",
        "order",
        "pending",
        "phase",
        "place_request",
    )

    def __init__(self, context: ProcessContext) -> None:
        """A process with no order yet (its first message is a PlaceOrder)."""
        self.context = context
        self.order: Order | None = None
        self.phase = _UNPLACED
        self.applied: set[str] = set()  # command ids this order has applied: replays are no-ops
        self.pending = 0  # requests told to risk or the venue and not answered yet
        self.close_reason: CancelReason | None = None  # why the rest will never fill (CLOSING+)
        self.close_at: Decimal | None = None  # filled quantity at which a closing order is done
        self.cancel_id: str | None = None  # the CancelOrder the OrderCancelled will answer
        # The requests (``oms.correlation``) of the place and of the cancel the OrderCancelled
        # answers, carried by the events they cause; None when a command came without one.
        self.place_request: str | None = None
        self.cancel_request: str | None = None
        self.amending: AmendOrder | None = None  # the amend in flight (AMEND_RISK, AMEND_VENUE)
        self.expiring = False  # on its way out because its GTD time came (no cancel asked)

    @classmethod
    def restored(
        cls,
        context: ProcessContext,
        order: Order,
        command_ids: Iterable[str],
        place_request: str | None = None,
        *,
        external: bool = False,
    ) -> OrderProcess:
        """A process rehydrated from the store: NEW is PLACED (``resume`` asks risk again), an
        accepted order rests at the venue as recovery left it (``external``: no simulated venue,
        it works for fills from outside, as ``risk_accepted`` left it), an ended one is DONE."""
        process = cls(context)
        process.order = order
        process.applied = set(command_ids)
        process.place_request = place_request
        if order.status is _NEW:
            process.phase = _PLACED
        elif order.status is _IN_DOUBT_STATUS:
            # Its query was lost with the process: ``resume`` asks again. (Which request was in
            # doubt is not kept: a cancel in doubt comes back as a place in doubt, so an order
            # the venue still holds rests again, and its cancel must be asked again.)
            process.phase = _IN_DOUBT
        elif order.status.is_terminal:
            process.phase = _DONE
        else:
            process.phase = _WORKING if external else _RESTING
        return process

    # -- routed commands -------------------------------------------------------------------

    def place(self, command: PlaceOrder, now: float) -> Order:
        """Create the order (NEW) and ask risk, or reject it if it can never be valid.

        Answers the order as placed; a PlaceOrder for an order that exists changes nothing.
        """
        if self.order is not None:
            return self.order
        phase = self.phase
        if _MOVES[phase].get(_PLACE) is not _PLACED:
            raise InvalidPhaseMove(phase, _PLACE)
        event = new_order_placed(
            command.order_id,
            1,
            command.command_id,
            command.created_at,
            command.client_order_id,
            command.account_id,
            command.symbol,
            command.side,
            command.type,
            command.quantity,
            command.price,
            command.time_in_force,
            command.request_id,
            command.post_only,
            command.stop_price,
            command.expire_at,
        )
        placed = apply(None, event)
        context = self.context
        invalid = _invalid(command, context.instruments)
        # Checked; now change. (The move out of PLACED is looked up as it is made: the table
        # has both ASK_RISK and REJECT from there.)
        self.order = placed
        self.applied.add(event.command_id)
        self.place_request = command.request_id
        context.events.append(event)
        if invalid is None:
            self.phase = _MOVES[_PLACED][_ASK_RISK]
            self.pending = 1
            context.effects.append(_new(AskRisk, (command, now)))
            return placed
        self.phase = _PLACED
        rejected = new_order_rejected(
            command.order_id,
            2,
            command.command_id,
            now,
            _validation_reason(invalid),
            str(invalid),
            command.request_id,
        )
        self._record(apply(placed, rejected), rejected)
        self.phase = next_phase(_PLACED, _REJECT)
        self._finish()
        return placed

    def cancel(self, command: CancelOrder, now: float) -> Order:
        """Cancel what is left; refused (``InvalidTransition``) once FILLED or ended.

        Answers the order: CANCELLED at once while NEW, else as it stands (the cancel is on its
        way: to the venue, or closing at what has filled).
        """
        order = self._current()
        command_id = command.command_id
        if command_id in self.applied:
            return order
        phase = self.phase
        status = order.status
        if status is _NEW:
            # Legal from NEW: cancelled before risk answered; an acceptance that still arrives
            # is released at once (WITHDRAWN).
            event = new_order_cancelled(
                order.order_id, order.version + 1, command_id, now, _REQUESTED, command.request_id
            )
            cancelled = apply(order, event)
            to = next_phase(phase, _CANCEL)
            self.phase = to
            self._record(cancelled, event)
            if to is _DONE:
                self._finish()
            return cancelled
        if status is _FILLED or status.is_terminal:
            raise InvalidTransition(status, Trigger.CANCEL)
        to = next_phase(phase, _CANCEL)
        self.applied.add(command_id)
        if self.cancel_id is None:
            self.cancel_id = command_id
            self.cancel_request = command.request_id
        self.phase = to
        if phase is _RESTING or phase is _AMEND_RISK or phase is _AMEND_VENUE:
            self._ask(PULL_FROM_VENUE)  # an amend in flight gets its answer late
        elif phase is _WORKING:
            self.close_reason = _REQUESTED
            self.close_at = order.filled_quantity
            self._after(now)
        # Else the phase kept it (already on its way out), or held it for the venue's answer.
        return order

    def fill(self, fill: ApplyFill) -> Order:
        """An execution from outside: refused loudly if it does not fit (overfill, NEW, ended)."""
        order = self._current()
        if fill.command_id in self.applied:
            return order
        event = new_order_filled(
            order.order_id,
            order.version + 1,
            fill.command_id,
            fill.executed_at,
            fill.quantity,
            fill.price,
            fill.fee,
        )
        filled = apply(order, event)  # the order table speaks first: NEW or ended refuse fills
        phase = self.phase
        next_phase(phase, _FILL)  # a move to the same phase: checked, nothing to change
        self._record(filled, event)
        self._settle_fills((fill,))  # in flight now: nothing for ``_after`` to do
        if filled.status is _FILLED and phase in _AT_VENUE:
            # Filled elsewhere: take the leftover out of the simulated venue (its later fills,
            # if any were in flight, find nothing left and are dropped).
            self.context.effects.append(WITHDRAW_FROM_VENUE)
        return filled

    def venue_fills(self, fills: tuple[ApplyFill, ...], now: float) -> None:
        """Executions the simulated venue made on this resting order (clipped to what is left,
        dropped if nothing is: never refused loudly)."""
        self._current()
        next_phase(self.phase, _VENUE_FILLS)  # a move to the same phase
        kept = self._keep(fills)
        if kept:
            self._book(kept)
        else:
            self._after(now)

    def resume(self, now: float) -> None:
        """After a restart, an open order that does not rest at the venue carries on.

        NEW: risk never answered durably, so it is asked again with the order as placed (the
        move a placement makes); it may accept or reject it now, with risk's reason. Accepted
        (a MARKET, IOC or FOK order whose arrival at the venue was not recorded): its moment to
        match has passed, so the rest is closed (REMAINDER) and its reservation released, as
        when the venue cancels a remainder. FILLED: released, then SETTLED.
        """
        order = self._current()
        phase = self.phase
        if phase is _PLACED:
            self.phase = next_phase(phase, _ASK_RISK)
            self._ask(_new(AskRisk, (_as_placed(order), now)))
            return
        if phase is _IN_DOUBT and not self.pending:
            # Restored in doubt: only the venue's word resolves it, so the venue is asked.
            self._ask(QUERY_VENUE)
            return
        self.phase = next_phase(phase, _RESUME)
        self.close_reason = None if order.status is _FILLED else _REMAINDER
        self.close_at = order.filled_quantity
        self._after(now)

    def amend(self, command: AmendOrder, now: float) -> Order:
        """Change a resting LIMIT order's price and/or quantity; refused (``InvalidTransition``)
        once FILLED or ended.

        Answers the order as it stands: the amend is on its way (risk, then the venue), or was
        refused at once with an ``AmendRejected`` event (its reason: not a resting LIMIT order,
        nothing to change, a quantity not above the filled, off the instrument's grid, or
        another amend still in flight).
        """
        order = self._current()
        command_id = command.command_id
        if command_id in self.applied:
            return order
        status = order.status
        if status is _FILLED or status.is_terminal:
            raise InvalidTransition(status, Trigger.AMEND)
        quantity = order.quantity if command.quantity is None else command.quantity
        price = order.price if command.price is None else command.price
        refusal = self._amend_refusal(order, quantity, price)
        if refusal is not None:
            self._reject_amend(command, *refusal, now)
            return self._current()
        assert price is not None, "a LIMIT order has its price"
        self.phase = next_phase(self.phase, _AMEND)
        self.applied.add(command_id)
        self.amending = replace(command, quantity=quantity, price=price)
        self._ask(_new(ReserveForAmend, (quantity - order.quantity, price, now)))
        return order

    def _amend_refusal(  # noqa: PLR0911 - one return per refusal, in the order they are tested
        self, order: Order, quantity: Decimal, price: Decimal | None
    ) -> tuple[RejectionReason, str] | None:
        """Why the order refuses these terms before anyone is asked, or None."""
        phase = self.phase
        if phase is _AMEND_RISK or phase is _AMEND_VENUE:
            return OrderCheckReason.AMEND_IN_PROGRESS, "the previous amend is not done"
        if order.type is not _LIMIT or price is None or phase is not _RESTING:
            return OrderCheckReason.ORDER_NOT_AMENDABLE, (
                f"a {order.type.value} order {order.status.value} is not resting at the venue"
            )
        if quantity == order.quantity and price == order.price:
            return OrderCheckReason.NOTHING_TO_AMEND, "price and quantity are unchanged"
        if quantity <= order.filled_quantity:
            return OrderCheckReason.QUANTITY_BELOW_FILLED, (
                f"quantity={quantity}, filled={order.filled_quantity}"
            )
        instrument = self.context.instruments.get(order.symbol)
        if instrument is None:
            return RejectReason.UNKNOWN_INSTRUMENT, f"{order.symbol!r} is not listed"
        try:
            instrument.check_quantity(quantity)
            instrument.check_price(price)
        except InvalidOrder as invalid:
            return _validation_reason(invalid), str(invalid)
        return None

    def _reject_amend(
        self, command: AmendOrder, reason: RejectionReason, detail: str, now: float
    ) -> None:
        """Record the refusal of ``command`` (the order is otherwise unchanged)."""
        order = self._current()
        event = new_amend_rejected(
            order.order_id,
            order.version + 1,
            command.command_id,
            now,
            reason,
            detail,
            command.request_id,
        )
        self._record(apply(order, event), event)

    def amend_reserved(self, protection_price: Decimal, now: float) -> None:
        """Risk reserved for the amended terms: on to the venue (or, if a cancel or the last
        fill crossed the amend, refused as too late and the reservation trimmed back)."""
        order = self._current()
        amend = self.amending
        phase = self.phase
        to = next_phase(phase, _AMEND_RESERVED)
        if amend is None or not self.pending:
            raise InvalidPhaseMove(phase, _AMEND_RESERVED)
        assert amend.quantity is not None, "the amend's terms were completed"
        assert amend.price is not None, "the amend's terms were completed"
        self.pending -= 1
        context = self.context
        if to is _AMEND_VENUE:
            if amend.quantity > order.filled_quantity:
                self.phase = to
                # A LIMIT order's protection price is its price: the venue's answer records it.
                assert protection_price == amend.price, "risk protects a LIMIT at its price"
                self._ask(_new(AmendAtVenue, (amend.quantity - order.quantity, amend.price)))
                return
            # Fills made while risk decided took the order to the new quantity.
            self.phase = _RESTING
            reason = OrderCheckReason.QUANTITY_BELOW_FILLED
            detail = f"quantity={amend.quantity}, filled={order.filled_quantity}"
        else:
            self.phase = to
            reason, detail = OrderCheckReason.ORDER_NOT_AMENDABLE, "the order is closing"
        self._end_amend(reason, detail, now)
        context.effects.append(_new(CommitAmend, (_ZERO, order.price, None)))
        self._after(now)

    def amend_denied(self, reason: RejectionReason, detail: str, now: float) -> None:
        """Risk refused the amended terms: the order stays as it was."""
        self._current()
        phase = self.phase
        to = next_phase(phase, _AMEND_DENIED)
        if self.amending is None or not self.pending:
            raise InvalidPhaseMove(phase, _AMEND_DENIED)
        self.pending -= 1
        self.phase = to
        self._end_amend(reason, detail, now)
        self._after(now)

    def venue_amended(
        self, remaining: Decimal | None, now: float, *, refused: RejectionReason | None = None
    ) -> None:
        """The venue's answer to the amend: what it now holds (nothing changed there when that
        is not positive: the amend was below what it had filled, or ``refused`` says why the
        venue would not), or None: it no longer held the order (filled whole, its fills on
        their way)."""
        order = self._current()
        amend = self.amending
        phase = self.phase
        step = _VENUE_AMEND_NOT_HELD if remaining is None else _VENUE_AMENDED
        to = next_phase(phase, step)
        if amend is None or not self.pending:
            raise InvalidPhaseMove(phase, step)
        assert amend.quantity is not None, "the amend's terms were completed"
        assert amend.price is not None, "the amend's terms were completed"
        self.pending -= 1
        self.phase = to
        status = order.status
        if (
            remaining is not None
            and remaining > 0
            and (status is _ACCEPTED or status is _PARTIALLY_FILLED)
            and amend.quantity > order.filled_quantity
        ):
            event = new_order_amended(
                order.order_id,
                order.version + 1,
                amend.command_id,
                now,
                amend.quantity,
                amend.price,
                amend.price,
                amend.request_id,
            )
            delta = amend.quantity - order.quantity
            self._record(apply(order, event), event)
            self.amending = None
            self.context.effects.append(_new(CommitAmend, (delta, amend.price, remaining)))
        else:
            if refused is not None:
                reason, detail = refused, "the venue does not amend an order in place"
            elif remaining is None:
                reason, detail = OrderCheckReason.ORDER_NOT_AMENDABLE, "no longer at the venue"
            else:
                reason = OrderCheckReason.QUANTITY_BELOW_FILLED
                detail = f"quantity={amend.quantity}, filled={order.quantity - remaining}"
            self._end_amend(reason, detail, now)
            self.context.effects.append(_new(CommitAmend, (_ZERO, order.price, None)))
        self._after(now)

    def _end_amend(self, reason: RejectionReason, detail: str, now: float) -> None:
        """The amend in flight is refused: recorded if the order may still record it."""
        amend = self.amending
        assert amend is not None, "only an amend in flight ends"
        self.amending = None
        order = self._current()
        if (order.status, Trigger.AMEND_REJECT) in ORDER_TRANSITIONS:
            self._reject_amend(amend, reason, detail, now)

    def expire(self, command: ExpireOrder, now: float) -> Order:
        """The order's GTD time came: EXPIRED once what was left is out (the filled part
        stays filled and is settled). Too late (FILLED or ended) or already on its way out
        for a cancel: nothing to do. Answers the order as it stands."""
        order = self._current()
        command_id = command.command_id
        status = order.status
        if command_id in self.applied or status is _FILLED or status.is_terminal:
            return order
        phase = self.phase
        to = next_phase(phase, _CANCEL)  # the phase table's: an expiry leaves as a cancel does
        if status is _NEW:
            event = new_order_expired(order.order_id, order.version + 1, command_id, now, None)
            expired = apply(order, event)
            self.phase = to
            self._record(expired, event)
            if to is _DONE:
                self._finish()
            return expired
        self.applied.add(command_id)
        self.phase = to
        if self.cancel_id is None and phase not in _ON_ITS_WAY_OUT:
            self.expiring = True
        if phase is _RESTING or phase is _AMEND_RISK or phase is _AMEND_VENUE:
            self._ask(PULL_FROM_VENUE)
        elif phase is _WORKING:
            self.close_reason = _EXPIRED if self.expiring else _REQUESTED
            self.close_at = order.filled_quantity
            self._after(now)
        return order

    def triggered(
        self,
        last_price: Decimal,
        fills: tuple[ApplyFill, ...],
        reason: CancelReason | None,
        now: float,
        *,
        resting: bool,
    ) -> None:
        """The last price crossed the stop: ``OrderTriggered``, then the venue's arrival of what
        it became (its fills, and whether the rest rests or is gone: ``reason``)."""
        order = self._current()
        phase = self.phase
        step = _TRIGGERED_RESTING if resting else _TRIGGERED_CLOSED
        to = next_phase(phase, step)
        event = new_order_triggered(
            order.order_id, order.version + 1, f"trigger:{order.order_id}", now, last_price, None
        )
        triggered = apply(order, event)  # refused (nothing changed) unless an untriggered stop
        self._record(triggered, event)
        self.phase = to
        if to is _CLOSING:
            self.close_reason = reason
            filled = triggered.filled_quantity
            for fill in fills:
                filled += fill.quantity
            self.close_at = triggered.quantity if reason is None else filled
        kept = self._keep(fills)
        if kept:
            self._book(kept)
        else:
            self._after(now)

    def refused_at_venue(self, reason: RejectionReason, detail: str, now: float) -> None:
        """The venue refused the arriving order (a post-only order that would take liquidity, a
        stop the last price had already passed): REJECTED with ``reason``, and its reservation
        released; nothing rests or fills."""
        order = self._current()
        phase = self.phase
        if _MOVES[phase].get(_ARRIVED_CLOSED) is None or not self.pending:
            raise InvalidPhaseMove(phase, _ARRIVED_CLOSED)
        if order.status is _ACCEPTED:
            event = new_order_rejected(
                order.order_id,
                order.version + 1,
                f"place:{order.order_id}",
                now,
                reason,
                detail,
                self.place_request,
            )
            self._record(apply(order, event), event)
        self.arrived((), _REMAINDER, now, resting=False)

    def in_doubt(self, request: DoubtedRequest, reason: str, now: float) -> None:
        """A place or cancel ended without an answer (``reason``: the port's code): IN_DOUBT,
        reservation kept. The answer is still due: the venue's word on the order."""
        order = self._current()
        phase = self.phase
        to = next_phase(phase, _DOUBT)
        if not self.pending:
            raise InvalidPhaseMove(phase, _DOUBT)
        if order.status is _ACCEPTED or order.status is _PARTIALLY_FILLED:
            event = new_order_in_doubt(
                order.order_id,
                order.version + 1,
                f"doubt:{order.order_id}:{order.version + 1}",
                now,
                request,
                reason,
                None,
            )
            self._record(apply(order, event), event)
        self.phase = to

    def venue_said(self, word: VenueWord, venue_filled: Decimal, now: float) -> bool:
        """The network venue's word on the order (``venue_filled``: what it has filled there;
        the fills arrive on their own): its answer to the place, or to the query of a doubt.

        Answers False, changing nothing, when the word cannot be true of this order (it says
        it never had an order that has fills, or that it acknowledged): nothing is guessed,
        the order stays in doubt for reconciliation.
        """
        order = self._current()
        phase = self.phase
        step = _WORD_STEPS[word]
        to = _MOVES[phase].get(step)
        if to is None and step is _VENUE_NOT_FOUND and phase is _CANCEL_IN_DOUBT:
            return False
        if to is None or not self.pending:
            raise InvalidPhaseMove(phase, step)
        not_found = step is _VENUE_NOT_FOUND
        if not_found and order.filled_quantity and phase not in _LATE:
            return False  # it has fills from the venue: the venue had it
        if order.status is _IN_DOUBT_STATUS:
            if not_found:
                event: OrderEvent = new_order_rejected(
                    order.order_id,
                    order.version + 1,
                    f"place:{order.order_id}",
                    now,
                    OrderCheckReason.VENUE_ORDER_NOT_FOUND,
                    "the venue never had the order whose place was in doubt",
                    self.place_request,
                )
            else:
                event = new_order_doubt_resolved(
                    order.order_id,
                    order.version + 1,
                    f"resolve:{order.order_id}:{order.version + 1}",
                    now,
                    word,
                    venue_filled,
                    None,
                )
            self._record(apply(order, event), event)
            order = self._current()
        self.pending -= 1
        self.phase = to
        if to is _CLOSING:
            if word is VenueWord.FILLED:
                self.close_reason = None
                self.close_at = order.quantity
            else:
                asked = phase is not _ARRIVING and phase is not _IN_DOUBT
                self.close_reason = (
                    _EXPIRED if self.expiring else _REQUESTED if asked else _REMAINDER
                )
                self.close_at = order.filled_quantity if not_found else venue_filled
        elif to is _CANCELLING:
            self._ask(PULL_FROM_VENUE)
        self._after(now)
        return True

    # -- answers ---------------------------------------------------------------------------

    def risk_accepted(self, protection_price: Decimal, now: float, *, to_venue: bool) -> None:
        """Risk reserved for the order up to ``protection_price``: ACCEPTED, then to the venue
        (``to_venue``) or open for fills from outside. Already cancelled: release at once."""
        order = self.order
        if order is None:
            raise _unknown()
        phase = self.phase
        step = _ACCEPT if to_venue else _ACCEPT_EXTERNAL
        to = _MOVES[phase].get(step)
        if to is None or not self.pending:
            raise InvalidPhaseMove(phase, step)
        context = self.context
        if phase is _WITHDRAWN:
            self.phase = to
            context.effects.append(RELEASE_RESERVATION)  # one answered, one asked
            return
        order_id = order.order_id
        event = new_order_accepted(
            order_id,
            order.version + 1,
            f"place:{order_id}",
            now,
            protection_price,
            self.place_request,
        )
        self.order = apply(order, event)
        self.applied.add(event.command_id)
        context.events.append(event)
        self.phase = to
        if to_venue:
            context.effects.append(SUBMIT_TO_VENUE)  # one answered, one asked
        else:
            self.pending -= 1

    def risk_rejected(self, reason: RejectionReason, detail: str, now: float) -> None:
        """Risk refused the order (or could not decide: ``RISK_ERROR``)."""
        order = self._current()
        phase = self.phase
        to = _MOVES[phase].get(_REJECT)
        if to is None or not self.pending:
            raise InvalidPhaseMove(phase, _REJECT)
        if phase is not _WITHDRAWN:
            order_id = order.order_id
            event = new_order_rejected(
                order_id,
                order.version + 1,
                f"place:{order_id}",
                now,
                reason,
                detail,
                self.place_request,
            )
            self._record(apply(order, event), event)
        self.pending -= 1
        self.phase = to
        self._finish()

    def arrived(
        self,
        fills: tuple[ApplyFill, ...],
        reason: CancelReason | None,
        now: float,
        *,
        resting: bool,
    ) -> None:
        """The venue's answer to the arrival: its fills, and whether the rest rests (``resting``)
        or is gone (``reason``: why the rest was cancelled; None when it filled whole)."""
        order = self.order
        if order is None:
            raise _unknown()
        phase = self.phase
        step = _ARRIVED_RESTING if resting else _ARRIVED_CLOSED
        to = _MOVES[phase].get(step)
        if to is None or not self.pending:
            raise InvalidPhaseMove(phase, step)
        if order.filled_quantity:
            # Filled from outside while the venue decided (both venues fill it): the venue's
            # fills are kept to what is left, as its fills on a resting order are, rather than
            # refused as an overfill. Filled whole meanwhile (SETTLING): they find nothing left,
            # and what the venue rests is taken out, or it would fill an order that has none.
            fills = self._keep(fills)
            if resting and phase in _LATE:
                self.context.effects.append(WITHDRAW_FROM_VENUE)
        self.pending -= 1
        self.phase = to
        if to is _CLOSING:
            self.close_reason = reason
            if reason is None:  # filled whole: FILLED once these fills are in
                self.close_at = order.quantity
            else:
                filled = order.filled_quantity
                for fill in fills:
                    filled += fill.quantity
                self.close_at = filled
        elif to is _CANCELLING:
            self._ask(PULL_FROM_VENUE)  # the cancel held while the venue decided
        if fills:
            self._book(fills)
        else:
            self._after(now)

    def venue_cancelled(self, leaves: Decimal | None, now: float) -> None:
        """The venue removed ``leaves`` (None: it no longer held the order, its fills are on
        their way): closed once every fill made before the cancel is in."""
        order = self._current()
        phase = self.phase
        step = _VENUE_NOT_HELD if leaves is None else _VENUE_CANCELLED
        to = _MOVES[phase].get(step)
        if to is None or not self.pending:
            raise InvalidPhaseMove(phase, step)
        self.pending -= 1
        self.phase = to
        if to is _CLOSING:
            assert leaves is not None, "only leaves close the order"
            self.close_reason = _EXPIRED if self.expiring else _REQUESTED
            self.close_at = order.quantity - leaves
        self._after(now)

    def settled(self, now: float, *, released: bool) -> None:
        """Risk booked the fills (and released the reservation when asked: ``released``)."""
        if self.order is None:
            raise _unknown()
        phase = self.phase
        step = _RELEASED if released else _SETTLED
        to = _MOVES[phase].get(step)
        if to is None or not self.pending:  # an answer nobody waits for is a bug too
            raise InvalidPhaseMove(phase, step)
        self.pending -= 1
        self.phase = to
        if to is _ENDING and not self.pending:
            self._end(now)  # what ``_after`` would do: every order ends here
        else:
            self._after(now)

    # -- the machinery ---------------------------------------------------------------------

    def _ask(self, effect: Effect) -> None:
        """Send a request whose answer the process waits for."""
        self.pending += 1
        self.context.effects.append(effect)

    def _keep(self, fills: tuple[ApplyFill, ...]) -> tuple[ApplyFill, ...]:
        """The simulated venue's fills the order has room for: new ones, clipped to what is left
        (it was also filled from outside); the others dropped (reported). Usually ``fills``."""
        order = self.order
        assert order is not None, "only an existing order fills"
        status = order.status
        # Identity tests: ``status.is_terminal`` hashes the member in Python.
        closed = not (status is _ACCEPTED or status is _PARTIALLY_FILLED or status is _NEW)
        left = order.remaining_quantity
        applied = self.applied
        kept: list[ApplyFill] = []
        for fill in fills:
            if fill.command_id in applied:
                continue
            if closed or left <= 0:
                self.context.effects.append(DropVenueFill(fill))
                continue
            if fill.quantity > left:
                fill = _clip(fill, left, self.context.instruments[order.symbol])  # noqa: PLW2901
            left -= fill.quantity
            kept.append(fill)
        return tuple(kept)

    def _book(self, fills: tuple[ApplyFill, ...]) -> None:
        """Apply the fills (all or, on the first refusal, only those before it) and settle them,
        releasing with them if they were the last that can fill. Nothing is left for ``_after``
        to do then: the settle is in flight, and a release due went with it."""
        booked = 0
        order = self.order
        assert order is not None, "only an existing order fills"
        applied = self.applied
        events = self.context.events
        try:
            for fill in fills:
                event = new_order_filled(
                    order.order_id,
                    order.version + 1,
                    fill.command_id,
                    fill.executed_at,
                    fill.quantity,
                    fill.price,
                    fill.fee,
                )
                order = apply(order, event)
                self.order = order
                applied.add(event.command_id)
                events.append(event)
                booked += 1
        finally:
            if booked:
                # ``_settle_fills``, inline: every order books its fills here.
                if booked < len(fills):
                    fills = fills[:booked]
                phase = self.phase
                release = phase in _MAY_RELEASE and (
                    order.status is _FILLED
                    or (phase is _CLOSING and order.filled_quantity == self.close_at)
                )
                if release:
                    self.phase = _MOVES[phase][_RELEASE]
                self.pending += 1
                self.context.effects.append(_new(SettleWithRisk, (fills, release)))

    def _settle_fills(self, fills: tuple[ApplyFill, ...]) -> None:
        """Ask risk to book ``fills``, and to release the reservation with them if they were
        the last that can fill (then the order moves to SETTLING)."""
        order = self.order
        assert order is not None, "only an existing order settles"
        phase = self.phase
        release = phase in _MAY_RELEASE and (
            order.status is _FILLED
            or (phase is _CLOSING and order.filled_quantity == self.close_at)
        )
        if release:
            self.phase = _MOVES[phase][_RELEASE]  # in the table: _MAY_RELEASE says so
        self.pending += 1
        self.context.effects.append(_new(SettleWithRisk, (fills, release)))

    def _after(self, now: float) -> None:
        """After any change: release the reservation (once nothing more can fill: FILLED, or
        closing and every fill before the close is in), end the order, or report it idle."""
        phase = self.phase
        if phase is _ENDING:
            if not self.pending:
                self._end(now)
            return
        if phase not in _MAY_RELEASE:
            return
        order = self.order
        assert order is not None, "only an existing order moves on"
        if order.status is _FILLED or (
            phase is _CLOSING and order.filled_quantity == self.close_at
        ):
            self.phase = _MOVES[phase][_RELEASE]
            self._ask(RELEASE_RESERVATION)
        elif phase is _RESTING and not self.pending:
            self.context.effects.append(REPORT_IDLE)

    def _end(self, now: float) -> None:
        """Everything booked and released: SETTLED if filled, else CANCELLED; then done."""
        order = self.order
        assert order is not None, "only an existing order ends"
        to = _MOVES[_ENDING][_END]
        order_id = order.order_id
        status = order.status
        event: OrderEvent | None = None
        if status is _FILLED:
            event = new_order_settled(order_id, order.version + 1, f"settle:{order_id}", now)
        elif status not in _TERMINAL:
            reason = self.close_reason or _REQUESTED
            # Carries the cancel's own id when one was asked for, so that a replay of that
            # CancelOrder after the actor is gone is still recognised from the history.
            if reason is _REQUESTED and self.cancel_id:
                command_id, request = self.cancel_id, self.cancel_request
            else:
                command_id, request = f"cancel:{order_id}", None
            if reason is _EXPIRED:
                event = new_order_expired(
                    order_id, order.version + 1, f"expire:{order_id}", now, None
                )
            else:
                event = new_order_cancelled(
                    order_id, order.version + 1, command_id, now, reason, request
                )
        context = self.context
        if event is not None:
            self.order = apply(order, event)
            self.applied.add(event.command_id)
            context.events.append(event)
        self.phase = to
        context.effects.append(REPORT_FINISHED)  # nothing is in flight: ENDING waited for it

    def _finish(self) -> None:
        """Ended and nothing in flight: the actor may stop."""
        assert not self.pending, "an order finishes only once nothing is in flight"
        self.context.effects.append(REPORT_FINISHED)

    def _record(self, order: Order, event: OrderEvent) -> None:
        """Take the order ``event`` made (already checked by ``apply``) and write the event."""
        self.order = order
        self.applied.add(event.command_id)
        self.context.events.append(event)

    def _current(self) -> Order:
        order = self.order
        if order is None:
            raise _unknown()
        return order


def _unknown() -> DomainError:
    """A message for an order that has not been placed (its actor was never given one)."""
    return DomainError("no such order yet", code="UNKNOWN_ORDER")


def _invalid(command: PlaceOrder, instruments: Mapping[str, Instrument]) -> InvalidOrder | None:
    """Validation that needs no state (the API does it at the door; streams may not)."""
    try:
        instrument = instruments.get(command.symbol)
        if instrument is None:
            return InvalidOrder(f"{command.symbol!r} is not listed", code="UNKNOWN_INSTRUMENT")
        instrument.check_quantity(command.quantity)
        if command.type is _LIMIT:
            if command.price is None:
                return InvalidOrder("a LIMIT order needs a price", code="PRICE_REQUIRED")
            instrument.check_price(command.price)
        elif command.price is not None and command.type is _MARKET:
            return InvalidOrder("a MARKET order takes no price", code="PRICE_NOT_ALLOWED")
        problems = term_problems(
            command.type,
            command.time_in_force,
            price=command.price,
            stop_price=command.stop_price,
            expire_at=command.expire_at,
            post_only=command.post_only,
            now=command.created_at,  # as placed: an expiry due since is the timer's to make
        )
        if problems:
            field, reason, message = problems[0]
            return InvalidOrder(f"{field} {message}", code=reason.value)
        if command.price is not None:
            instrument.check_price(command.price)
        if command.stop_price is not None:
            instrument.check_price(command.stop_price)
    except InvalidOrder as invalid:
        return invalid
    return None


def _validation_reason(invalid: InvalidOrder) -> RejectionReason:
    """The closed reason of a failed validation (each code ``_invalid`` can return is one; an
    unlisted one would be a new check without its reason: ``INVALID_ORDER``, not a crash)."""
    return known_rejection_reason(invalid.code) or OrderCheckReason.INVALID_ORDER


def _as_placed(order: Order) -> PlaceOrder:
    """The PlaceOrder an order was placed with, rebuilt from its state (risk reads only these)."""
    return PlaceOrder(
        f"place:{order.order_id}",
        order.order_id,
        order.client_order_id,
        order.account_id,
        order.symbol,
        order.side,
        order.type,
        order.quantity,
        order.price,
        order.time_in_force,
        order.created_at,
        None,
        order.post_only,
        order.stop_price,
        order.expire_at,
    )


def _clip(fill: ApplyFill, quantity: Decimal, instrument: Instrument) -> ApplyFill:
    """A simulated fill cut to what the order has left (it was also filled from outside)."""
    exponent = instrument.tick_size.as_tuple().exponent
    assert isinstance(exponent, int)
    fee = (fill.fee * quantity / fill.quantity).quantize(Decimal(1).scaleb(exponent), ROUND_DOWN)
    return ApplyFill(
        fill.command_id, fill.order_id, fill.account_id, quantity, fill.price, fee, fill.executed_at
    )
