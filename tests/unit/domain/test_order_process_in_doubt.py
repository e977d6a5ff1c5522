"""Unknown outcomes: an order whose place or cancel got no answer is IN_DOUBT until the venue
says what became of it; it keeps its reservation, is never sent twice, never guessed rejected."""

from __future__ import annotations

from decimal import Decimal

from oms.codec import event_from_dict, event_to_dict
from oms.domain.enums import OrderStatus
from oms.domain.events import (
    DoubtedRequest,
    OrderDoubtResolved,
    OrderInDoubt,
    OrderRejected,
    VenueWord,
)
from oms.domain.order_process import (
    PULL_FROM_VENUE,
    QUERY_VENUE,
    RELEASE_RESERVATION,
    SUBMIT_TO_VENUE,
    OrderProcess,
    Phase,
    SettleWithRisk,
)
from oms.domain.reasons import OrderCheckReason
from tests.unit.domain.order_process_builders import (
    NOW,
    arriving,
    cancel_command,
    cancelling,
    context,
    fill,
    take,
)


def _in_doubt(process: OrderProcess, request: DoubtedRequest = DoubtedRequest.PLACE) -> None:
    process.in_doubt(request, "VENUE_TIMEOUT", NOW)


def test_in_doubt_when_the_place_gets_no_answer_then_in_doubt_with_reason_and_nothing_released() -> (
    None
):
    # Arrange
    ctx = context()
    process = arriving(ctx)
    take(ctx)

    # Act
    _in_doubt(process)

    # Assert
    events, effects = take(ctx)
    assert process.order is not None
    assert process.order.status is OrderStatus.IN_DOUBT
    assert process.phase is Phase.IN_DOUBT
    assert [type(e) for e in events] == [OrderInDoubt]
    assert events[0].reason == "VENUE_TIMEOUT"  # type: ignore[union-attr]
    assert events[0].request is DoubtedRequest.PLACE  # type: ignore[union-attr]
    assert effects == []  # no release, no second submit: the query is the venue side's
    assert process.pending == 1  # the venue's word is still due


def test_venue_said_when_in_doubt_and_the_venue_holds_it_then_resolved_accepted_and_resting() -> (
    None
):
    ctx = context()
    process = arriving(ctx)
    _in_doubt(process)
    take(ctx)

    explained = process.venue_said(VenueWord.OPEN, Decimal(0), NOW)

    events, effects = take(ctx)
    assert explained
    assert process.order is not None
    assert process.order.status is OrderStatus.ACCEPTED
    assert process.phase is Phase.RESTING
    assert [type(e) for e in events] == [OrderDoubtResolved]
    assert SUBMIT_TO_VENUE not in effects


def test_venue_said_when_in_doubt_and_the_venue_never_had_it_then_rejected_and_released() -> None:
    ctx = context()
    process = arriving(ctx)
    _in_doubt(process)
    take(ctx)

    process.venue_said(VenueWord.NOT_FOUND, Decimal(0), NOW)

    events, effects = take(ctx)
    assert process.order is not None
    assert process.order.status is OrderStatus.REJECTED
    assert process.order.reject_reason is OrderCheckReason.VENUE_ORDER_NOT_FOUND
    assert [type(e) for e in events] == [OrderRejected]
    assert effects == [RELEASE_RESERVATION]


def test_fill_when_in_doubt_and_partial_then_booked_and_the_order_stays_in_doubt() -> None:
    ctx = context()
    process = arriving(ctx)
    _in_doubt(process)
    take(ctx)

    process.fill(fill(1, "0.4"))

    _, effects = take(ctx)
    assert process.order is not None
    assert process.order.status is OrderStatus.IN_DOUBT
    assert process.order.filled_quantity == Decimal("0.4")
    assert effects == [SettleWithRisk((fill(1, "0.4"),), False)]


def test_fill_when_in_doubt_and_whole_then_filled_and_released_never_rejected() -> None:
    ctx = context()
    process = arriving(ctx)
    _in_doubt(process)
    take(ctx)

    process.fill(fill(1, "1"))
    process.settled(NOW, released=True)
    process.venue_said(VenueWord.FILLED, Decimal(1), NOW)  # the late word ends it

    assert process.order is not None
    assert process.order.status is OrderStatus.SETTLED
    assert process.phase is Phase.DONE


def test_venue_said_when_in_doubt_with_a_fill_and_not_found_then_unexplained_and_unchanged() -> (
    None
):
    ctx = context()
    process = arriving(ctx)
    _in_doubt(process)
    process.fill(fill(1, "0.4"))
    process.settled(NOW, released=False)
    take(ctx)

    explained = process.venue_said(VenueWord.NOT_FOUND, Decimal(0), NOW)

    assert not explained
    assert process.order is not None
    assert process.order.status is OrderStatus.IN_DOUBT
    assert take(ctx) == ([], [])


def test_cancel_when_in_doubt_then_held_and_sent_once_the_venue_says_it_holds_the_order() -> None:
    ctx = context()
    process = arriving(ctx)
    _in_doubt(process)
    take(ctx)
    process.cancel(cancel_command(), NOW)
    _, held = take(ctx)

    process.venue_said(VenueWord.OPEN, Decimal(0), NOW)

    _, effects = take(ctx)
    assert held == []  # nothing is guessed while in doubt
    assert effects == [PULL_FROM_VENUE]
    assert process.phase is Phase.CANCELLING


def test_in_doubt_when_a_cancel_gets_no_answer_then_in_doubt_and_closed_as_the_venue_says() -> None:
    ctx = context()
    process = cancelling(ctx)
    _in_doubt(process, DoubtedRequest.CANCEL)
    take(ctx)

    process.venue_said(VenueWord.CLOSED, Decimal("0.3"), NOW)
    process.fill(fill(1, "0.3"))  # what the venue filled before the cancel arrives
    process.settled(NOW, released=True)

    assert process.order is not None
    assert process.order.status is OrderStatus.CANCELLED
    assert process.order.filled_quantity == Decimal("0.3")
    assert process.phase is Phase.DONE


def test_venue_said_when_a_cancel_in_doubt_and_still_open_then_the_cancel_is_sent_again() -> None:
    ctx = context()
    process = cancelling(ctx)
    _in_doubt(process, DoubtedRequest.CANCEL)
    take(ctx)

    process.venue_said(VenueWord.OPEN, Decimal(0), NOW)

    _, effects = take(ctx)
    assert effects == [PULL_FROM_VENUE]
    assert process.phase is Phase.CANCELLING


def test_venue_said_when_a_cancel_in_doubt_and_not_found_then_unexplained_and_unchanged() -> None:
    ctx = context()
    process = cancelling(ctx)
    _in_doubt(process, DoubtedRequest.CANCEL)
    take(ctx)

    explained = process.venue_said(VenueWord.NOT_FOUND, Decimal(0), NOW)

    assert not explained
    assert process.phase is Phase.CANCEL_IN_DOUBT
    assert take(ctx) == ([], [])


def test_restored_when_in_doubt_then_resume_queries_the_venue_and_never_submits() -> None:
    source_ctx = context()
    source = arriving(source_ctx)
    _in_doubt(source)
    assert source.order is not None
    ctx = context()
    process = OrderProcess.restored(ctx, source.order, set(source.applied))

    process.resume(NOW)

    _, effects = take(ctx)
    assert process.phase is Phase.IN_DOUBT
    assert effects == [QUERY_VENUE]


def test_in_doubt_events_when_written_and_read_back_then_unchanged() -> None:
    doubt = OrderInDoubt("o-1", 3, "doubt:o-1:3", NOW, DoubtedRequest.CANCEL, "VENUE_TIMEOUT")
    word = OrderDoubtResolved("o-1", 4, "resolve:o-1:4", NOW, VenueWord.CLOSED, Decimal("0.3"))

    assert event_from_dict(event_to_dict(doubt)) == doubt
    assert event_from_dict(event_to_dict(word)) == word
    assert event_to_dict(word)["venue_filled"] == "0.3"
