"""The order process alone (no actor): every phase move of the table, and what each decides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest

from oms.domain.enums import OrderStatus, OrderType, TimeInForce
from oms.domain.errors import DomainError
from oms.domain.events import (
    AmendRejected,
    CancelReason,
    DoubtedRequest,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
    VenueWord,
)
from oms.domain.order_process import (
    PHASE_MOVES,
    PULL_FROM_VENUE,
    RELEASE_RESERVATION,
    REPORT_FINISHED,
    REPORT_IDLE,
    SUBMIT_TO_VENUE,
    WITHDRAW_FROM_VENUE,
    AmendAtVenue,
    AskRisk,
    CommitAmend,
    DropVenueFill,
    InvalidPhaseMove,
    OrderProcess,
    Phase,
    ProcessContext,
    ReserveForAmend,
    SettleWithRisk,
    Step,
    next_phase,
)
from oms.domain.orders import Overfill, fold
from oms.domain.reasons import OrderCheckReason, RejectionReason, RejectReason
from oms.domain.transitions import InvalidTransition, Trigger
from tests.unit.domain.order_process_builders import (
    NOW,
    PRICE,
    QUANTITY,
    REACH,
    amend_command,
    amend_risk,
    amend_venue,
    arriving,
    cancel_command,
    cancelling,
    closing,
    context,
    fill,
    place_command,
    placed_process,
    resting,
    restored_new,
    snapshot,
    take,
    then,
    working,
)

_P = Phase
_S = Step


def test_reach_when_driven_by_messages_then_each_phase_is_reached() -> None:
    for phase, reach in REACH.items():
        assert reach(context()).phase is phase, phase


# -- every move of the table ------------------------------------------------------------------

Send = Callable[[OrderProcess], object]


def _filled_from_outside_while_arriving(ctx: ProcessContext) -> OrderProcess:
    """SETTLING with the venue's answer to the arrival still due."""
    process = arriving(ctx)
    process.fill(fill(9, "1"))
    return process


def _closed_partly_filled(ctx: ProcessContext) -> OrderProcess:
    """SETTLING, not FILLED: closed at 0.4 filled of 1 (room left for a fill beyond it)."""
    process = closing(ctx)
    process.venue_fills((fill(1, "0.4"),), NOW)
    return process


def _settling_with_a_fill_settle_due(ctx: ProcessContext) -> OrderProcess:
    """SETTLING, risk still to answer a settle of fills sent before the release."""
    process = resting(ctx)
    process.venue_fills((fill(1, "0.2"),), NOW)
    process.cancel(cancel_command(), NOW)
    process.venue_cancelled(Decimal("0.8"), NOW)  # closed at the 0.2 already in: released
    return process


def _ending_with_a_fill_settle_due(ctx: ProcessContext) -> OrderProcess:
    """ENDING, risk still to answer a settle of a fill that came after the close."""
    process = _closed_partly_filled(ctx)
    process.fill(fill(9, "0.1"))
    process.settled(NOW, released=True)
    return process


# (phase, step) -> (how to get there if not REACH[phase], what to send, the moves that follow
# from the step within the same message). The test walks the table through step + sequels and
# checks the process ended where the table says.
SCENARIOS: dict[
    tuple[Phase, Step],
    tuple[Callable[[ProcessContext], OrderProcess] | None, Send, tuple[Step, ...]],
] = {
    (_P.UNPLACED, _S.PLACE): (None, lambda p: p.place(place_command(), NOW), (_S.ASK_RISK,)),
    (_P.PLACED, _S.ASK_RISK): (None, lambda p: p.resume(NOW), ()),
    (_P.PLACED, _S.REJECT): (
        OrderProcess,
        lambda p: p.place(place_command(quantity=Decimal("0.00001")), NOW),
        (),
    ),
    (_P.PLACED, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(), NOW), ()),
    (_P.AWAITING_RISK, _S.ACCEPT): (None, lambda p: p.risk_accepted(PRICE, NOW, to_venue=True), ()),
    (_P.AWAITING_RISK, _S.ACCEPT_EXTERNAL): (
        None,
        lambda p: p.risk_accepted(PRICE, NOW, to_venue=False),
        (),
    ),
    (_P.AWAITING_RISK, _S.REJECT): (
        None,
        lambda p: p.risk_rejected(RejectReason.NO_MARKET_PRICE, "", NOW),
        (),
    ),
    (_P.AWAITING_RISK, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(), NOW), ()),
    (_P.WITHDRAWN, _S.ACCEPT): (None, lambda p: p.risk_accepted(PRICE, NOW, to_venue=True), ()),
    (_P.WITHDRAWN, _S.ACCEPT_EXTERNAL): (
        None,
        lambda p: p.risk_accepted(PRICE, NOW, to_venue=False),
        (),
    ),
    (_P.WITHDRAWN, _S.REJECT): (
        None,
        lambda p: p.risk_rejected(OrderCheckReason.RISK_ERROR, "", NOW),
        (),
    ),
    (_P.ARRIVING, _S.ARRIVED_RESTING): (
        None,
        lambda p: p.arrived((fill(1, "0.3"),), None, NOW, resting=True),
        (),
    ),
    (_P.ARRIVING, _S.ARRIVED_CLOSED): (
        None,
        lambda p: p.arrived((fill(1, "0.3"),), CancelReason.REMAINDER, NOW, resting=False),
        (_S.RELEASE,),
    ),
    (_P.ARRIVING, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(), NOW), ()),
    (_P.ARRIVING, _S.FILL): (None, lambda p: p.fill(fill(9, "0.2")), ()),
    (_P.ARRIVING, _S.SETTLED): (
        lambda ctx: then(arriving(ctx), lambda p: p.fill(fill(9, "0.2"))),
        lambda p: p.settled(NOW, released=False),
        (),
    ),
    (_P.ARRIVING, _S.RELEASE): (None, lambda p: p.fill(fill(9, "1")), ()),
    (_P.CANCEL_HELD, _S.ARRIVED_RESTING): (
        None,
        lambda p: p.arrived((), None, NOW, resting=True),
        (),
    ),
    (_P.CANCEL_HELD, _S.ARRIVED_CLOSED): (
        None,
        lambda p: p.arrived((), CancelReason.FOK_KILLED, NOW, resting=False),
        (_S.RELEASE,),
    ),
    (_P.CANCEL_HELD, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(2), NOW), ()),
    (_P.CANCEL_HELD, _S.FILL): (None, lambda p: p.fill(fill(9, "0.2")), ()),
    (_P.CANCEL_HELD, _S.SETTLED): (
        lambda ctx: then(REACH[_P.CANCEL_HELD](ctx), lambda p: p.fill(fill(9, "0.2"))),
        lambda p: p.settled(NOW, released=False),
        (),
    ),
    (_P.CANCEL_HELD, _S.RELEASE): (None, lambda p: p.fill(fill(9, "1")), ()),
    (_P.RESTING, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(), NOW), ()),
    (_P.RESTING, _S.FILL): (None, lambda p: p.fill(fill(9, "0.2")), ()),
    (_P.RESTING, _S.VENUE_FILLS): (None, lambda p: p.venue_fills((fill(1, "0.2"),), NOW), ()),
    (_P.RESTING, _S.SETTLED): (
        lambda ctx: then(resting(ctx), lambda p: p.venue_fills((fill(1, "0.2"),), NOW)),
        lambda p: p.settled(NOW, released=False),
        (),
    ),
    (_P.RESTING, _S.RELEASE): (None, lambda p: p.venue_fills((fill(1, "1"),), NOW), ()),
    (_P.RESTING, _S.RESUME): (None, lambda p: p.resume(NOW), (_S.RELEASE,)),
    (_P.CANCELLING, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(2), NOW), ()),
    (_P.CANCELLING, _S.FILL): (None, lambda p: p.fill(fill(9, "0.2")), ()),
    (_P.CANCELLING, _S.VENUE_FILLS): (None, lambda p: p.venue_fills((fill(1, "0.2"),), NOW), ()),
    (_P.CANCELLING, _S.SETTLED): (
        lambda ctx: then(cancelling(ctx), lambda p: p.venue_fills((fill(1, "0.2"),), NOW)),
        lambda p: p.settled(NOW, released=False),
        (),
    ),
    (_P.CANCELLING, _S.VENUE_CANCELLED): (
        None,
        lambda p: p.venue_cancelled(Decimal("0.6"), NOW),
        (),
    ),
    (_P.CANCELLING, _S.VENUE_NOT_HELD): (None, lambda p: p.venue_cancelled(None, NOW), ()),
    (_P.CANCELLING, _S.RELEASE): (None, lambda p: p.fill(fill(9, "1")), ()),
    (_P.WORKING, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(), NOW), (_S.RELEASE,)),
    (_P.WORKING, _S.FILL): (None, lambda p: p.fill(fill(9, "0.2")), ()),
    (_P.WORKING, _S.VENUE_FILLS): (
        lambda ctx: then(cancelling(ctx), lambda p: p.venue_cancelled(None, NOW)),
        lambda p: p.venue_fills((fill(1, "0.2"),), NOW),
        (),
    ),
    (_P.WORKING, _S.SETTLED): (
        lambda ctx: then(working(ctx), lambda p: p.fill(fill(9, "0.2"))),
        lambda p: p.settled(NOW, released=False),
        (),
    ),
    (_P.WORKING, _S.RELEASE): (None, lambda p: p.fill(fill(9, "1")), ()),
    (_P.CLOSING, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(2), NOW), ()),
    (_P.CLOSING, _S.FILL): (None, lambda p: p.fill(fill(9, "0.1")), ()),
    (_P.CLOSING, _S.VENUE_FILLS): (None, lambda p: p.venue_fills((fill(1, "0.1"),), NOW), ()),
    (_P.CLOSING, _S.SETTLED): (
        lambda ctx: then(closing(ctx), lambda p: p.venue_fills((fill(1, "0.1"),), NOW)),
        lambda p: p.settled(NOW, released=False),
        (),
    ),
    (_P.CLOSING, _S.RELEASE): (None, lambda p: p.venue_fills((fill(1, "0.4"),), NOW), ()),
    (_P.SETTLING, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(2), NOW), ()),
    (_P.SETTLING, _S.FILL): (None, lambda p: p.fill(fill(9, "0.1")), ()),
    (_P.SETTLING, _S.VENUE_FILLS): (
        _closed_partly_filled,
        lambda p: p.venue_fills((fill(2, "0.1"),), NOW),
        (),
    ),
    (_P.SETTLING, _S.SETTLED): (
        _settling_with_a_fill_settle_due,
        lambda p: p.settled(NOW, released=False),
        (),
    ),
    (_P.SETTLING, _S.ARRIVED_RESTING): (
        _filled_from_outside_while_arriving,
        lambda p: p.arrived((), None, NOW, resting=True),
        (),
    ),
    (_P.SETTLING, _S.ARRIVED_CLOSED): (
        _filled_from_outside_while_arriving,
        lambda p: p.arrived((fill(1, "1"),), None, NOW, resting=False),
        (),
    ),
    (_P.SETTLING, _S.VENUE_CANCELLED): (
        lambda ctx: then(cancelling(ctx), lambda p: p.fill(fill(9, "1"))),
        lambda p: p.venue_cancelled(Decimal("1"), NOW),
        (),
    ),
    (_P.SETTLING, _S.VENUE_NOT_HELD): (
        lambda ctx: then(cancelling(ctx), lambda p: p.fill(fill(9, "1"))),
        lambda p: p.venue_cancelled(None, NOW),
        (),
    ),
    (_P.SETTLING, _S.RELEASED): (None, lambda p: p.settled(NOW, released=True), (_S.END,)),
    (_P.ENDING, _S.CANCEL): (
        _ending_with_a_fill_settle_due,
        lambda p: p.cancel(cancel_command(2), NOW),
        (),
    ),
    (_P.ENDING, _S.FILL): (_ending_with_a_fill_settle_due, lambda p: p.fill(fill(10, "0.1")), ()),
    (_P.ENDING, _S.VENUE_FILLS): (
        _ending_with_a_fill_settle_due,
        lambda p: p.venue_fills((fill(2, "0.1"),), NOW),
        (),
    ),
    (_P.ENDING, _S.SETTLED): (
        _ending_with_a_fill_settle_due,
        lambda p: p.settled(NOW, released=False),
        (_S.END,),
    ),
    (_P.ENDING, _S.ARRIVED_RESTING): (
        lambda ctx: then(
            _filled_from_outside_while_arriving(ctx), lambda p: p.settled(NOW, released=True)
        ),
        lambda p: p.arrived((), None, NOW, resting=True),
        (_S.END,),
    ),
    (_P.ENDING, _S.ARRIVED_CLOSED): (
        lambda ctx: then(
            _filled_from_outside_while_arriving(ctx), lambda p: p.settled(NOW, released=True)
        ),
        lambda p: p.arrived((fill(1, "1"),), None, NOW, resting=False),
        (_S.END,),
    ),
    (_P.ENDING, _S.VENUE_CANCELLED): (
        None,
        lambda p: p.venue_cancelled(Decimal("1"), NOW),
        (_S.END,),
    ),
    (_P.ENDING, _S.VENUE_NOT_HELD): (None, lambda p: p.venue_cancelled(None, NOW), (_S.END,)),
    (_P.ENDING, _S.END): (None, lambda p: p.venue_cancelled(None, NOW), ()),
}


def _steps_then(
    reach: Callable[[ProcessContext], OrderProcess], *acts: Callable[[OrderProcess], object]
) -> Callable[[ProcessContext], OrderProcess]:
    """A process reached by ``reach``, then sent ``acts`` in turn."""

    def build(ctx: ProcessContext) -> OrderProcess:
        process = reach(ctx)
        for act in acts:
            act(process)
        return process

    return build


def _cancel(p: OrderProcess) -> object:
    return p.cancel(cancel_command(), NOW)


def _fill_whole(p: OrderProcess) -> object:
    return p.venue_fills((fill(1, "1"),), NOW)


_AMEND_ANSWERS: dict[Step, Send] = {
    _S.AMEND_RESERVED: lambda p: p.amend_reserved(PRICE, NOW),
    _S.AMEND_DENIED: lambda p: p.amend_denied(RejectReason.PRICE_OUTSIDE_COLLAR, "", NOW),
    _S.VENUE_AMENDED: lambda p: p.venue_amended(Decimal("2"), NOW),
    _S.VENUE_AMEND_NOT_HELD: lambda p: p.venue_amended(None, NOW),
}
# A late answer to an amend: where each phase is reached with the amend's risk answer still due
# (risk steps) or its venue answer still due (venue steps).
_LATE_REACH: dict[Phase, tuple[Callable[[OrderProcess], object], ...]] = {
    _P.CANCELLING: (_cancel,),
    _P.CLOSING: (_cancel, lambda p: p.venue_cancelled(Decimal("0.6"), NOW)),
    _P.WORKING: (_cancel, lambda p: p.venue_cancelled(None, NOW)),
    _P.SETTLING: (_fill_whole,),
    _P.ENDING: (_fill_whole, lambda p: p.settled(NOW, released=True)),
}
for _phase, _acts in _LATE_REACH.items():
    for _step, _send in _AMEND_ANSWERS.items():
        _before = amend_risk if _step in {_S.AMEND_RESERVED, _S.AMEND_DENIED} else amend_venue
        SCENARIOS[(_phase, _step)] = (
            _steps_then(_before, *_acts),
            _send,
            (_S.END,) if _phase is _P.ENDING else (),
        )
SCENARIOS.update(
    {
        (_P.RESTING, _S.AMEND): (None, lambda p: p.amend(amend_command(), NOW), ()),
        (_P.AMEND_RISK, _S.AMEND_RESERVED): (None, _AMEND_ANSWERS[_S.AMEND_RESERVED], ()),
        (_P.AMEND_RISK, _S.AMEND_DENIED): (None, _AMEND_ANSWERS[_S.AMEND_DENIED], ()),
        (_P.AMEND_VENUE, _S.VENUE_AMENDED): (None, _AMEND_ANSWERS[_S.VENUE_AMENDED], ()),
        (_P.AMEND_VENUE, _S.VENUE_AMEND_NOT_HELD): (
            None,
            _AMEND_ANSWERS[_S.VENUE_AMEND_NOT_HELD],
            (),
        ),
    }
)
for _phase, _reach in ((_P.AMEND_RISK, amend_risk), (_P.AMEND_VENUE, amend_venue)):
    SCENARIOS.update(
        {
            (_phase, _S.CANCEL): (None, _cancel, ()),
            (_phase, _S.FILL): (None, lambda p: p.fill(fill(9, "0.2")), ()),
            (_phase, _S.VENUE_FILLS): (None, lambda p: p.venue_fills((fill(1, "0.2"),), NOW), ()),
            (_phase, _S.SETTLED): (
                _steps_then(_reach, lambda p: p.venue_fills((fill(1, "0.2"),), NOW)),
                lambda p: p.settled(NOW, released=False),
                (),
            ),
            (_phase, _S.RELEASE): (None, _fill_whole, ()),
        }
    )


def stop_resting(ctx: ProcessContext) -> OrderProcess:
    """RESTING: an untriggered STOP_LIMIT BUY (stop 100.50, limit 101.00) held by the venue."""
    process = OrderProcess(ctx)
    command = replace(
        place_command(), type=OrderType.STOP_LIMIT, price=Decimal("101.00"),
        stop_price=Decimal("100.50"),
    )  # fmt: skip
    process.place(command, NOW)
    process.risk_accepted(Decimal("101.00"), NOW, to_venue=True)
    process.arrived((), None, NOW, resting=True)
    return process


def _trigger_resting(p: OrderProcess) -> object:
    return p.triggered(Decimal("100.50"), (), None, NOW, resting=True)


def _trigger_closed(p: OrderProcess) -> object:
    return p.triggered(
        Decimal("100.50"), (fill(1, "0.3"),), CancelReason.REMAINDER, NOW, resting=False
    )


SCENARIOS.update(
    {
        (_P.RESTING, _S.TRIGGERED_RESTING): (stop_resting, _trigger_resting, ()),
        (_P.RESTING, _S.TRIGGERED_CLOSED): (stop_resting, _trigger_closed, (_S.RELEASE,)),
        (_P.CANCELLING, _S.TRIGGERED_RESTING): (
            _steps_then(stop_resting, _cancel),
            _trigger_resting,
            (),
        ),
        (_P.CANCELLING, _S.TRIGGERED_CLOSED): (
            _steps_then(stop_resting, _cancel),
            _trigger_closed,
            (_S.RELEASE,),
        ),
        (_P.WORKING, _S.TRIGGERED_CLOSED): (
            _steps_then(stop_resting, _cancel, lambda p: p.venue_cancelled(None, NOW)),
            _trigger_closed,
            (_S.RELEASE,),
        ),
    }
)


# -- a network venue's word, and its doubts ---------------------------------------------------


def _doubt(request: DoubtedRequest) -> Send:
    return lambda p: p.in_doubt(request, "VENUE_TIMEOUT", NOW)


def _said(word: VenueWord, filled: str = "0") -> Send:
    return lambda p: p.venue_said(word, Decimal(filled), NOW)


def in_doubt(ctx: ProcessContext) -> OrderProcess:
    """IN_DOUBT: the place's answer never came."""
    return then(arriving(ctx), _doubt(DoubtedRequest.PLACE))


def doubt_cancel_held(ctx: ProcessContext) -> OrderProcess:
    """DOUBT_CANCEL_HELD: in doubt, and a cancel waits for the venue's word."""
    return then(in_doubt(ctx), _cancel)


def cancel_in_doubt(ctx: ProcessContext) -> OrderProcess:
    """CANCEL_IN_DOUBT: the cancel's answer never came."""
    return then(cancelling(ctx), _doubt(DoubtedRequest.CANCEL))


REACH[_P.IN_DOUBT] = in_doubt
REACH[_P.DOUBT_CANCEL_HELD] = doubt_cancel_held
REACH[_P.CANCEL_IN_DOUBT] = cancel_in_doubt
_OPEN, _FILLED, _CLOSED, _NOT_FOUND = (
    VenueWord.OPEN,
    VenueWord.FILLED,
    VenueWord.CLOSED,
    VenueWord.NOT_FOUND,
)
_late_settling = _filled_from_outside_while_arriving
_late_ending = _steps_then(_late_settling, lambda p: p.settled(NOW, released=True))
SCENARIOS.update(
    {
        (_P.ARRIVING, _S.VENUE_OPEN): (None, _said(_OPEN), ()),
        (_P.ARRIVING, _S.VENUE_CLOSED): (None, _said(_CLOSED), (_S.RELEASE,)),
        (_P.CANCEL_HELD, _S.VENUE_OPEN): (None, _said(_OPEN), ()),
        (_P.CANCEL_HELD, _S.VENUE_CLOSED): (None, _said(_CLOSED), (_S.RELEASE,)),
        (_P.ARRIVING, _S.DOUBT): (None, _doubt(DoubtedRequest.PLACE), ()),
        (_P.CANCEL_HELD, _S.DOUBT): (None, _doubt(DoubtedRequest.PLACE), ()),
        (_P.CANCELLING, _S.DOUBT): (None, _doubt(DoubtedRequest.CANCEL), ()),
        (_P.IN_DOUBT, _S.VENUE_OPEN): (None, _said(_OPEN), ()),
        (_P.IN_DOUBT, _S.VENUE_CLOSED): (None, _said(_CLOSED), (_S.RELEASE,)),
        (_P.IN_DOUBT, _S.VENUE_NOT_FOUND): (None, _said(_NOT_FOUND), (_S.RELEASE,)),
        (_P.IN_DOUBT, _S.CANCEL): (None, _cancel, ()),
        (_P.DOUBT_CANCEL_HELD, _S.VENUE_OPEN): (None, _said(_OPEN), ()),
        (_P.DOUBT_CANCEL_HELD, _S.VENUE_CLOSED): (None, _said(_CLOSED), (_S.RELEASE,)),
        (_P.DOUBT_CANCEL_HELD, _S.VENUE_NOT_FOUND): (None, _said(_NOT_FOUND), (_S.RELEASE,)),
        (_P.DOUBT_CANCEL_HELD, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(2), NOW), ()),
        (_P.CANCEL_IN_DOUBT, _S.VENUE_OPEN): (None, _said(_OPEN), ()),
        (_P.CANCEL_IN_DOUBT, _S.VENUE_CLOSED): (None, _said(_CLOSED), (_S.RELEASE,)),
        (_P.CANCEL_IN_DOUBT, _S.CANCEL): (None, lambda p: p.cancel(cancel_command(2), NOW), ()),
    }
)
for _phase in (_P.IN_DOUBT, _P.DOUBT_CANCEL_HELD, _P.CANCEL_IN_DOUBT):
    SCENARIOS.update(
        {
            (_phase, _S.FILL): (None, lambda p: p.fill(fill(9, "0.2")), ()),
            (_phase, _S.SETTLED): (
                _steps_then(REACH[_phase], lambda p: p.fill(fill(9, "0.2"))),
                lambda p: p.settled(NOW, released=False),
                (),
            ),
            (_phase, _S.RELEASE): (None, lambda p: p.fill(fill(9, "1")), ()),
        }
    )
for _step, _send in (
    (_S.DOUBT, _doubt(DoubtedRequest.PLACE)),
    (_S.VENUE_OPEN, _said(_OPEN, "1")),
    (_S.VENUE_CLOSED, _said(_FILLED, "1")),
    (_S.VENUE_NOT_FOUND, _said(_NOT_FOUND)),
):
    SCENARIOS[(_P.SETTLING, _step)] = (_late_settling, _send, ())
    SCENARIOS[(_P.ENDING, _step)] = (_late_ending, _send, () if _step is _S.DOUBT else (_S.END,))


def _walk(phase: Phase, steps: tuple[Step, ...]) -> tuple[Phase, list[tuple[Phase, Step]]]:
    """Where the table takes ``phase`` through ``steps``, and the moves it made."""
    moves = []
    for step in steps:
        moves.append((phase, step))
        phase = PHASE_MOVES[(phase, step)]
    return phase, moves


def _steps(key: tuple[Phase, Step]) -> tuple[Step, ...]:
    """The steps a scenario makes: its own (absent for a move made only as a sequel, such as
    ENDING -> END), then its sequels."""
    phase, step = key
    _, _, sequels = SCENARIOS[key]
    if step is _S.END:
        return (_S.VENUE_NOT_HELD, _S.END)
    if phase is _P.PLACED and step is _S.REJECT:
        return (_S.PLACE, _S.REJECT)
    return (step, *sequels)


def _start(key: tuple[Phase, Step]) -> Phase:
    phase, step = key
    return _P.UNPLACED if (phase is _P.PLACED and step is _S.REJECT) else phase


def test_scenarios_when_walked_then_every_move_of_the_table_is_made() -> None:
    made = set()
    for key in SCENARIOS:
        _, moves = _walk(_start(key), _steps(key))
        made.update(moves)

    assert made == set(PHASE_MOVES)


@pytest.mark.parametrize("key", list(SCENARIOS), ids=lambda key: f"{key[0]}-{key[1]}")
def test_message_when_the_table_has_the_move_then_the_process_moves_along_it(
    key: tuple[Phase, Step],
) -> None:
    # Arrange
    ctx = context()
    reach, send, _ = SCENARIOS[key]
    start = _start(key)
    process = (reach or REACH[start])(ctx)
    assert process.phase is start, "the scenario starts where its move starts"
    take(ctx)

    # Act
    send(process)

    # Assert
    expected, _ = _walk(start, _steps(key))
    assert process.phase is expected


# Every message a process can receive, as the step it makes when legal.
MESSAGES: dict[Step, Send] = {
    _S.ACCEPT: lambda p: p.risk_accepted(PRICE, NOW, to_venue=True),
    _S.ACCEPT_EXTERNAL: lambda p: p.risk_accepted(PRICE, NOW, to_venue=False),
    _S.REJECT: lambda p: p.risk_rejected(RejectReason.INSUFFICIENT_BUYING_POWER, "", NOW),
    _S.ARRIVED_RESTING: lambda p: p.arrived((), None, NOW, resting=True),
    _S.ARRIVED_CLOSED: lambda p: p.arrived((), CancelReason.REMAINDER, NOW, resting=False),
    _S.VENUE_CANCELLED: lambda p: p.venue_cancelled(Decimal("0.5"), NOW),
    _S.VENUE_NOT_HELD: lambda p: p.venue_cancelled(None, NOW),
    _S.SETTLED: lambda p: p.settled(NOW, released=False),
    _S.RELEASED: lambda p: p.settled(NOW, released=True),
    _S.RESUME: lambda p: p.resume(NOW),
    _S.VENUE_FILLS: lambda p: p.venue_fills((fill(7, "0.1"),), NOW),
    **_AMEND_ANSWERS,
    _S.TRIGGERED_RESTING: _trigger_resting,
    _S.TRIGGERED_CLOSED: _trigger_closed,
    _S.DOUBT: _doubt(DoubtedRequest.PLACE),
    _S.VENUE_OPEN: _said(VenueWord.OPEN),
    _S.VENUE_CLOSED: _said(VenueWord.CLOSED),
    _S.VENUE_NOT_FOUND: _said(VenueWord.NOT_FOUND),
}
ILLEGAL = [
    (phase, step)
    for phase in Phase
    if phase is not _P.UNPLACED
    for step in MESSAGES
    if (phase, step) not in PHASE_MOVES
    and not (phase is _P.PLACED and step is _S.RESUME)  # PLACED's Resume is its ASK_RISK
    # Refused quietly (``venue_said`` answers False), not loudly: tested on its own.
    and not (phase is _P.CANCEL_IN_DOUBT and step is _S.VENUE_NOT_FOUND)
]


@pytest.mark.parametrize("key", ILLEGAL, ids=lambda key: f"{key[0]}-{key[1]}")
def test_message_when_the_table_has_no_move_then_refused_naming_phase_and_step_and_nothing_changes(
    key: tuple[Phase, Step],
) -> None:
    # Arrange
    phase, step = key
    ctx = context()
    process = REACH[phase](ctx)
    take(ctx)
    before = snapshot(process)

    # Act
    with pytest.raises(InvalidPhaseMove) as refused:
        MESSAGES[step](process)

    # Assert
    assert str(refused.value) == f"{phase.value} -> {step.value}"
    assert refused.value.code == "INVALID_PHASE_MOVE"
    assert (refused.value.phase, refused.value.step) == (phase, step)
    assert snapshot(process) == before


@pytest.mark.parametrize("step", list(MESSAGES), ids=str)
def test_message_when_no_order_yet_then_refused_unknown_order(step: Step) -> None:
    process = OrderProcess(context())

    with pytest.raises(DomainError) as refused:
        MESSAGES[step](process)

    assert refused.value.code == "UNKNOWN_ORDER"
    assert process.phase is _P.UNPLACED


def test_answer_when_nothing_was_asked_then_refused_and_nothing_changes() -> None:
    # Arrange: resting, the venue's fills settled: nothing in flight
    ctx = context()
    process = resting(ctx)
    take(ctx)
    before = snapshot(process)

    # Act
    with pytest.raises(InvalidPhaseMove) as refused:
        process.settled(NOW, released=False)

    # Assert
    assert str(refused.value) == "RESTING -> SETTLED"
    assert snapshot(process) == before


def test_next_phase_when_move_absent_then_invalid_phase_move() -> None:
    with pytest.raises(InvalidPhaseMove, match="DONE -> CANCEL"):
        next_phase(_P.DONE, _S.CANCEL)

    assert next_phase(_P.RESTING, _S.CANCEL) is _P.CANCELLING


# -- what each decision writes ----------------------------------------------------------------


def test_place_when_valid_then_new_and_risk_asked_with_the_command() -> None:
    ctx = context()
    process = OrderProcess(ctx)
    command = place_command()

    placed = process.place(command, NOW)

    events, effects = take(ctx)
    assert placed.status is OrderStatus.NEW
    assert [type(e) for e in events] == [OrderPlaced]
    assert effects == [AskRisk(command, NOW)]
    assert (process.phase, process.pending) == (_P.AWAITING_RISK, 1)


def test_place_when_quantity_off_lot_then_rejected_with_its_reason_and_finished() -> None:
    ctx = context()
    process = OrderProcess(ctx)

    placed = process.place(place_command(quantity=Decimal("0.00001")), NOW)

    events, effects = take(ctx)
    assert placed.status is OrderStatus.NEW  # the answer is the order as placed
    assert [type(e) for e in events] == [OrderPlaced, OrderRejected]
    rejected = events[-1]
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason == "QUANTITY_NOT_MULTIPLE_OF_LOT"
    assert effects == [REPORT_FINISHED]
    assert process.phase is _P.DONE


_INVALID = {
    "unlisted": ({"symbol": "DOGE-XYZ"}, RejectReason.UNKNOWN_INSTRUMENT),
    "zero quantity": ({"quantity": Decimal(0)}, OrderCheckReason.INVALID_QUANTITY),
    "off lot": ({"quantity": Decimal("0.00001")}, OrderCheckReason.QUANTITY_NOT_MULTIPLE_OF_LOT),
    "zero price": ({"price": Decimal(0)}, OrderCheckReason.INVALID_PRICE),
    "off tick": ({"price": Decimal("100.001")}, OrderCheckReason.PRICE_NOT_MULTIPLE_OF_TICK),
    "no price": ({"price": None}, OrderCheckReason.PRICE_REQUIRED),
    "market price": (
        {"type": OrderType.MARKET, "time_in_force": TimeInForce.IOC},
        OrderCheckReason.PRICE_NOT_ALLOWED,
    ),
}


@pytest.mark.parametrize(("change", "reason"), _INVALID.values(), ids=list(_INVALID))
def test_place_when_validation_fails_then_rejected_with_its_closed_reason_member(
    change: dict[str, object], reason: RejectionReason
) -> None:
    # Arrange
    ctx = context()
    process = OrderProcess(ctx)
    command = replace(place_command(), **change)  # type: ignore[arg-type]

    # Act
    process.place(command, NOW)

    # Assert
    rejected = take(ctx)[0][-1]
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason is reason


def test_place_when_replayed_then_nothing_changes() -> None:
    ctx = context()
    process = placed_process(ctx)
    take(ctx)
    before = snapshot(process)

    again = process.place(place_command(), NOW)

    assert again is process.order
    assert snapshot(process) == before


def test_risk_answer_when_rejected_then_rejected_with_risk_reason_and_finished() -> None:
    ctx = context()
    process = placed_process(ctx)
    take(ctx)

    process.risk_rejected(RejectReason.INSUFFICIENT_BUYING_POWER, "need=100 available=5", NOW)

    events, effects = take(ctx)
    [rejected] = events
    assert isinstance(rejected, OrderRejected)
    assert (rejected.reason, rejected.command_id) == (
        RejectReason.INSUFFICIENT_BUYING_POWER,
        "place:o-1",
    )
    assert effects == [REPORT_FINISHED]
    assert (process.phase, process.pending) == (_P.DONE, 0)


def test_risk_answer_when_accepted_then_accepted_and_submitted_to_venue() -> None:
    ctx = context()
    process = placed_process(ctx)
    take(ctx)

    process.risk_accepted(Decimal("110.00"), NOW, to_venue=True)

    events, effects = take(ctx)
    [accepted] = events
    assert isinstance(accepted, OrderAccepted)
    assert accepted.protection_price == Decimal("110.00")
    assert effects == [SUBMIT_TO_VENUE]
    assert process.order is not None
    assert process.order.protection_price == Decimal("110.00")  # what the venue order carries


def test_arrival_when_filled_whole_then_fills_settled_with_the_release_then_settled() -> None:
    ctx = context()
    process = arriving(ctx)
    take(ctx)
    fills = (fill(1, "0.4"), fill(2, "0.6"))

    process.arrived(fills, None, NOW, resting=False)
    events, effects = take(ctx)
    process.settled(NOW, released=True)
    end, finished = take(ctx)

    assert [type(e) for e in events] == [OrderFilled, OrderFilled]
    assert effects == [SettleWithRisk(fills, True)]
    assert [type(e) for e in end] == [OrderSettled]
    assert end[0].command_id == "settle:o-1"
    assert finished == [REPORT_FINISHED]
    assert process.order is not None
    assert process.order.status is OrderStatus.SETTLED


@pytest.mark.parametrize(
    "reason", [CancelReason.REMAINDER, CancelReason.FOK_KILLED], ids=lambda r: r.value
)
def test_arrival_when_rest_cancelled_then_filled_part_booked_and_cancelled_with_reason(
    reason: CancelReason,
) -> None:
    ctx = context()
    process = arriving(ctx)
    take(ctx)
    fills = () if reason is CancelReason.FOK_KILLED else (fill(1, "0.3"),)

    process.arrived(fills, reason, NOW, resting=False)
    _, effects = take(ctx)
    process.settled(NOW, released=True)
    end, _ = take(ctx)

    assert effects == [SettleWithRisk(fills, True) if fills else RELEASE_RESERVATION]
    [cancelled] = end
    assert isinstance(cancelled, OrderCancelled)
    assert (cancelled.reason, cancelled.command_id) == (reason, "cancel:o-1")


def test_arrival_when_rest_rests_then_idle_reported_once_its_fills_are_booked() -> None:
    ctx = context()
    process = arriving(ctx)
    take(ctx)

    process.arrived((fill(1, "0.3"),), None, NOW, resting=True)
    _, effects = take(ctx)
    process.settled(NOW, released=False)
    _, after = take(ctx)

    assert effects == [SettleWithRisk((fill(1, "0.3"),), False)]
    assert after == [REPORT_IDLE]
    assert process.phase is _P.RESTING


def test_cancel_when_resting_then_closed_only_once_fills_before_the_cancel_are_in() -> None:
    # Arrange: resting; the venue filled 0.4 just before it took the rest out
    ctx = context()
    process = resting(ctx)
    take(ctx)
    command = cancel_command()

    # Act
    answer = process.cancel(command, NOW)
    _, pulled = take(ctx)
    process.venue_cancelled(Decimal("0.6"), NOW)  # its leaves: 0.4 filled before the cancel
    _, waiting = take(ctx)
    process.venue_fills((fill(1, "0.4"),), NOW)  # the crossing fill arrives after the answer
    _, released = take(ctx)
    process.settled(NOW, released=True)
    end, _ = take(ctx)

    # Assert
    assert answer.status is OrderStatus.ACCEPTED  # on its way out
    assert pulled == [PULL_FROM_VENUE]
    assert waiting == []  # not closed: a fill is still due
    assert released == [SettleWithRisk((fill(1, "0.4"),), True)]
    [cancelled] = end
    assert isinstance(cancelled, OrderCancelled)
    assert (cancelled.reason, cancelled.command_id) == (CancelReason.REQUESTED, "cancel-1")
    assert process.order is not None
    assert process.order.filled_quantity == Decimal("0.4")


def test_cancel_when_arriving_then_held_until_the_venue_answers() -> None:
    ctx = context()
    process = arriving(ctx)
    take(ctx)

    process.cancel(cancel_command(), NOW)
    _, held = take(ctx)
    process.arrived((), None, NOW, resting=True)
    _, sent = take(ctx)

    assert held == []
    assert sent == [PULL_FROM_VENUE]
    assert process.phase is _P.CANCELLING


def test_cancel_when_new_then_cancelled_at_once_and_a_late_acceptance_released() -> None:
    ctx = context()
    process = placed_process(ctx)
    take(ctx)

    cancelled = process.cancel(cancel_command(), NOW)
    events, _ = take(ctx)
    process.risk_accepted(PRICE, NOW, to_venue=True)
    _, release = take(ctx)
    process.settled(NOW, released=True)
    end, finished = take(ctx)

    assert cancelled.status is OrderStatus.CANCELLED
    assert [type(e) for e in events] == [OrderCancelled]
    assert release == [RELEASE_RESERVATION]  # risk reserved for a cancelled order
    assert (end, finished) == ([], [REPORT_FINISHED])


def test_cancel_when_filled_then_refused_invalid_transition_and_nothing_changes() -> None:
    ctx = context()
    process = working(ctx)
    process.fill(fill(1, "1"))
    take(ctx)
    before = snapshot(process)

    with pytest.raises(InvalidTransition) as refused:
        process.cancel(cancel_command(), NOW)

    assert refused.value.code == "INVALID_TRANSITION"
    assert (refused.value.status, refused.value.trigger) == (OrderStatus.FILLED, Trigger.CANCEL)
    assert snapshot(process) == before


def test_cancel_when_replayed_then_nothing_changes() -> None:
    ctx = context()
    process = cancelling(ctx)
    take(ctx)
    before = snapshot(process)

    answer = process.cancel(cancel_command(), NOW)

    assert answer is process.order
    assert snapshot(process) == before


def test_fill_when_more_than_left_then_refused_overfill_and_nothing_changes() -> None:
    ctx = context()
    process = working(ctx)
    take(ctx)
    before = snapshot(process)

    with pytest.raises(Overfill) as refused:
        process.fill(fill(1, "1.5"))

    assert refused.value.code == "OVERFILL"
    assert snapshot(process) == before


def test_fill_when_new_then_refused_by_the_order_table_and_nothing_changes() -> None:
    ctx = context()
    process = placed_process(ctx)
    take(ctx)
    before = snapshot(process)

    with pytest.raises(InvalidTransition) as refused:
        process.fill(fill(1, "0.5"))

    assert (refused.value.status, refused.value.trigger) == (OrderStatus.NEW, Trigger.PARTIAL_FILL)
    assert snapshot(process) == before


def test_fill_when_replayed_then_nothing_changes() -> None:
    ctx = context()
    process = working(ctx)
    process.fill(fill(1, "0.5"))
    take(ctx)
    before = snapshot(process)

    again = process.fill(fill(1, "0.5"))

    assert again.filled_quantity == Decimal("0.5")
    assert snapshot(process) == before


def test_fill_when_it_completes_a_resting_order_then_released_and_withdrawn_from_the_venue() -> (
    None
):
    ctx = context()
    process = resting(ctx)
    take(ctx)

    process.fill(fill(9, "1"))

    _, effects = take(ctx)
    assert effects == [SettleWithRisk((fill(9, "1"),), True), WITHDRAW_FROM_VENUE]
    assert process.phase is _P.SETTLING


def test_venue_fills_when_order_filled_from_outside_meanwhile_then_dropped() -> None:
    ctx = context()
    process = resting(ctx)
    process.fill(fill(9, "1"))
    take(ctx)

    process.venue_fills((fill(1, "0.5"),), NOW)

    events, effects = take(ctx)
    assert events == []
    assert effects == [DropVenueFill(fill(1, "0.5"))]


def test_venue_fills_when_more_than_left_then_clipped_to_what_is_left() -> None:
    ctx = context()
    process = resting(ctx)
    process.fill(fill(9, "0.7"))
    take(ctx)

    process.venue_fills((fill(1, "0.5"),), NOW)

    events, _ = take(ctx)
    [filled] = events
    assert isinstance(filled, OrderFilled)
    assert filled.quantity == Decimal("0.3")
    assert filled.fee == Decimal("0.00")  # 0.01 * 0.3 / 0.5 rounded down to the tick's digits
    assert process.order is not None
    assert process.order.status is OrderStatus.FILLED


def test_venue_fills_when_replayed_then_nothing_changes_but_idleness_is_reported() -> None:
    ctx = context()
    process = resting(ctx)
    process.venue_fills((fill(1, "0.2"),), NOW)
    process.settled(NOW, released=False)
    take(ctx)

    process.venue_fills((fill(1, "0.2"),), NOW)

    events, effects = take(ctx)
    assert events == []
    assert effects == [REPORT_IDLE]


def test_resume_when_new_then_risk_asked_again_as_placed() -> None:
    ctx = context()
    process = restored_new(ctx)

    process.resume(NOW)

    _, effects = take(ctx)
    [ask] = effects
    assert isinstance(ask, AskRisk)
    assert (ask.order.order_id, ask.order.command_id) == ("o-1", "place:o-1")
    assert (ask.order.quantity, ask.order.price) == (QUANTITY, PRICE)
    assert process.phase is _P.AWAITING_RISK


@pytest.mark.parametrize(
    ("filled", "ends"),
    [("0", OrderCancelled), ("0.4", OrderCancelled), ("1", OrderSettled)],
    ids=["accepted", "partly filled", "filled"],
)
def test_resume_when_accepted_then_the_rest_is_closed_and_released(
    filled: str, ends: type[OrderEvent]
) -> None:
    # Arrange: an accepted order as the store has it (its arrival's answer never recorded)
    source_ctx = context()
    source = working(source_ctx)
    if filled != "0":
        source.fill(fill(1, filled))
    assert source.order is not None
    ctx = context()
    process = OrderProcess.restored(ctx, source.order, set(source.applied))

    # Act
    process.resume(NOW)
    _, effects = take(ctx)
    process.settled(NOW, released=True)
    end, finished = take(ctx)

    # Assert
    assert effects == [RELEASE_RESERVATION]
    assert [type(e) for e in end] == [ends]
    if isinstance(end[0], OrderCancelled):
        assert end[0].reason is CancelReason.REMAINDER
    assert finished == [REPORT_FINISHED]


def test_release_when_answered_while_the_venue_still_owes_a_cancel_answer_then_ends_after_it() -> (
    None
):
    ctx = context()
    process = cancelling(ctx)
    process.fill(fill(9, "1"))  # filled whole from outside while the cancel is at the venue
    take(ctx)

    process.settled(NOW, released=True)
    early, _ = take(ctx)
    process.venue_cancelled(Decimal("1"), NOW)
    end, finished = take(ctx)

    assert early == []
    assert process.phase is _P.DONE
    assert [type(e) for e in end] == [OrderSettled]
    assert finished == [REPORT_FINISHED]


def test_arrival_when_filled_from_outside_meanwhile_then_fills_dropped_and_rest_withdrawn() -> None:
    ctx = context()
    process = _filled_from_outside_while_arriving(ctx)
    take(ctx)

    process.arrived((fill(1, "0.3"),), None, NOW, resting=True)

    events, effects = take(ctx)
    assert events == []
    assert effects == [DropVenueFill(fill(1, "0.3")), WITHDRAW_FROM_VENUE]


def test_restored_when_order_rests_then_resting_and_its_history_replays_nothing() -> None:
    source_ctx = context()
    source = resting(source_ctx)
    source.venue_fills((fill(1, "0.2"),), NOW)
    history = list(source_ctx.events)
    ctx = context()

    process = OrderProcess.restored(ctx, fold(history), {e.command_id for e in history})
    process.venue_fills((fill(1, "0.2"),), NOW)

    events, effects = take(ctx)
    assert process.phase is _P.RESTING
    assert events == []
    assert effects == [REPORT_IDLE]


# -- amends ----------------------------------------------------------------------------------


def test_amend_when_resting_then_risk_asked_for_the_difference_at_the_new_price() -> None:
    ctx = context()
    process = resting(ctx)
    take(ctx)

    answer = process.amend(amend_command(quantity="3", price="99.00"), NOW)

    assert answer.quantity == QUANTITY  # unchanged until the venue has changed it
    assert process.phase is _P.AMEND_RISK
    assert take(ctx) == ([], [ReserveForAmend(Decimal("2"), Decimal("99.00"), NOW)])


def test_amend_when_risk_reserved_then_venue_asked_then_amended_and_risk_told() -> None:
    ctx = context()
    process = amend_risk(ctx)
    take(ctx)
    process.amend_reserved(PRICE, NOW)
    assert take(ctx) == ([], [AmendAtVenue(Decimal("1"), PRICE)])

    process.venue_amended(Decimal("2"), NOW)

    events, effects = take(ctx)
    assert [type(e) for e in events] == [OrderAmended]
    assert process.order is not None
    assert process.order.quantity == Decimal("2")
    assert effects == [CommitAmend(Decimal("1"), PRICE, Decimal("2")), REPORT_IDLE]
    assert process.phase is _P.RESTING


def test_amend_when_risk_denies_then_rejected_with_its_reason_and_order_unchanged() -> None:
    ctx = context()
    process = amend_risk(ctx)
    take(ctx)
    before = process.order

    process.amend_denied(RejectReason.INSUFFICIENT_BUYING_POWER, "required=1", NOW)

    events, _ = take(ctx)
    assert [type(e) for e in events] == [AmendRejected]
    assert events[0].reason is RejectReason.INSUFFICIENT_BUYING_POWER  # type: ignore[union-attr]
    assert process.order == before._replace(version=before.version + 1)  # type: ignore[union-attr]
    assert process.phase is _P.RESTING


def test_amend_when_venue_filled_beyond_new_quantity_then_rejected_and_reservation_trimmed() -> (
    None
):
    ctx = context()
    process = amend_venue(ctx)
    take(ctx)

    process.venue_amended(Decimal("0"), NOW)

    events, effects = take(ctx)
    assert [type(e) for e in events] == [AmendRejected]
    assert events[0].reason is OrderCheckReason.QUANTITY_BELOW_FILLED  # type: ignore[union-attr]
    assert CommitAmend(Decimal("0"), PRICE, None) in effects


@pytest.mark.parametrize(
    ("terms", "reason"),
    [
        ({"quantity": "1", "price": None}, OrderCheckReason.NOTHING_TO_AMEND),
        ({"quantity": "1.000001"}, OrderCheckReason.QUANTITY_NOT_MULTIPLE_OF_LOT),
        ({"quantity": None, "price": "100.001"}, OrderCheckReason.PRICE_NOT_MULTIPLE_OF_TICK),
    ],
)
def test_amend_when_terms_invalid_then_rejected_at_once_with_reason(
    terms: dict[str, str | None], reason: OrderCheckReason
) -> None:
    ctx = context()
    process = resting(ctx)
    take(ctx)

    process.amend(amend_command(**terms), NOW)  # type: ignore[arg-type]

    events, effects = take(ctx)
    assert [type(e) for e in events] == [AmendRejected]
    assert events[0].reason is reason  # type: ignore[union-attr]
    assert effects == []
    assert process.phase is _P.RESTING


def test_amend_when_partially_filled_and_quantity_not_above_filled_then_rejected() -> None:
    ctx = context()
    process = resting(ctx)
    process.venue_fills((fill(1, "0.4"),), NOW)
    process.settled(NOW, released=False)
    take(ctx)

    process.amend(amend_command(quantity="0.4"), NOW)

    events, _ = take(ctx)
    assert events[0].reason is OrderCheckReason.QUANTITY_BELOW_FILLED  # type: ignore[union-attr]


def test_amend_when_another_in_flight_then_rejected_amend_in_progress() -> None:
    ctx = context()
    process = amend_risk(ctx)
    take(ctx)

    process.amend(amend_command(2, quantity="3"), NOW)

    events, _ = take(ctx)
    assert events[0].reason is OrderCheckReason.AMEND_IN_PROGRESS  # type: ignore[union-attr]
    assert process.phase is _P.AMEND_RISK


def test_amend_when_new_then_rejected_not_amendable() -> None:
    ctx = context()
    process = placed_process(ctx)
    take(ctx)

    process.amend(amend_command(), NOW)

    events, _ = take(ctx)
    assert events[0].reason is OrderCheckReason.ORDER_NOT_AMENDABLE  # type: ignore[union-attr]
    assert process.phase is _P.AWAITING_RISK


def test_amend_when_filled_then_refused_invalid_transition_and_nothing_changes() -> None:
    ctx = context()
    process = resting(ctx)
    process.venue_fills((fill(1, "1"),), NOW)
    take(ctx)
    before = snapshot(process)

    with pytest.raises(InvalidTransition) as refused:
        process.amend(amend_command(), NOW)

    assert refused.value.trigger is Trigger.AMEND
    assert snapshot(process) == before


def test_amend_when_replayed_then_nothing_changes() -> None:
    ctx = context()
    process = amend_risk(ctx)
    take(ctx)
    before = snapshot(process)

    process.amend(amend_command(), NOW)

    assert snapshot(process) == before


def test_amend_when_cancel_crosses_it_then_late_answer_rejected_and_order_cancelled() -> None:
    ctx = context()
    process = amend_risk(ctx)
    process.cancel(cancel_command(), NOW)
    take(ctx)

    process.amend_reserved(PRICE, NOW)
    process.venue_cancelled(QUANTITY, NOW)
    process.settled(NOW, released=True)

    assert process.order is not None
    assert process.order.status is OrderStatus.CANCELLED
    assert process.order.quantity == QUANTITY
    assert process.phase is _P.DONE
