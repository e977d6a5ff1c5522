"""Reconciliation's word on an order whose place is in doubt: taken as the gateway's query answer
would be (the same events and moves), once, whichever of the two answers first."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.enums import OrderStatus
from oms.domain.events import DoubtedRequest, OrderDoubtResolved, OrderRejected, VenueWord
from oms.domain.order_process import RELEASE_RESERVATION, OrderProcess, Phase
from oms.domain.reasons import OrderCheckReason
from tests.unit.domain.order_process_builders import NOW, arriving, cancelling, context, take


def _in_doubt(process: OrderProcess, request: DoubtedRequest = DoubtedRequest.PLACE) -> None:
    process.in_doubt(request, "VENUE_TIMEOUT", NOW)


def test_reconciled_when_the_place_is_in_doubt_and_the_venue_holds_it_then_resolved_and_resting() -> (
    None
):
    # Arrange
    ctx = context()
    process = arriving(ctx)
    _in_doubt(process)
    take(ctx)

    # Act
    taken = process.reconciled(VenueWord.OPEN, Decimal(0), NOW)

    # Assert
    events, _ = take(ctx)
    assert taken
    assert process.order is not None
    assert process.order.status is OrderStatus.ACCEPTED
    assert process.phase is Phase.RESTING
    assert [type(e) for e in events] == [OrderDoubtResolved]


def test_reconciled_when_the_venue_never_had_it_then_rejected_with_its_reason_and_released() -> (
    None
):
    # Arrange
    ctx = context()
    process = arriving(ctx)
    _in_doubt(process)
    take(ctx)

    # Act
    taken = process.reconciled(VenueWord.NOT_FOUND, Decimal(0), NOW)

    # Assert
    events, effects = take(ctx)
    assert taken
    assert process.order is not None
    assert process.order.status is OrderStatus.REJECTED
    assert process.order.reject_reason is OrderCheckReason.VENUE_ORDER_NOT_FOUND
    assert [type(e) for e in events] == [OrderRejected]
    assert effects == [RELEASE_RESERVATION]


def test_venue_said_when_reconciliation_answered_first_then_the_gateways_word_changes_nothing() -> (
    None
):
    # Arrange
    ctx = context()
    process = arriving(ctx)
    _in_doubt(process)
    process.reconciled(VenueWord.OPEN, Decimal(0), NOW)
    take(ctx)

    # Act: the gateway's query answers later (a word the table would refuse while resting)
    explained = process.venue_said(VenueWord.OPEN, Decimal(0), NOW)

    # Assert
    assert explained
    assert process.phase is Phase.RESTING
    assert process.words_due == 0
    assert take(ctx) == ([], [])


def test_reconciled_when_the_gateway_answered_first_then_false_and_nothing_changes() -> None:
    # Arrange
    ctx = context()
    process = arriving(ctx)
    _in_doubt(process)
    process.venue_said(VenueWord.OPEN, Decimal(0), NOW)
    take(ctx)

    # Act
    taken = process.reconciled(VenueWord.OPEN, Decimal(0), NOW)

    # Assert
    assert not taken
    assert process.phase is Phase.RESTING
    assert process.words_due == 0
    assert take(ctx) == ([], [])


def test_reconciled_when_only_the_cancel_is_in_doubt_then_false_and_nothing_changes() -> None:
    # Arrange
    ctx = context()
    process = cancelling(ctx)
    _in_doubt(process, DoubtedRequest.CANCEL)
    take(ctx)

    # Act
    taken = process.reconciled(VenueWord.NOT_FOUND, Decimal(0), NOW)

    # Assert
    assert not taken
    assert process.phase is Phase.CANCEL_IN_DOUBT
    assert take(ctx) == ([], [])


def test_reconciled_when_restored_in_doubt_and_not_resumed_then_taken_with_no_word_due() -> None:
    # Arrange
    source = arriving(context())
    _in_doubt(source)
    assert source.order is not None
    ctx = context()
    process = OrderProcess.restored(ctx, source.order, set(source.applied))

    # Act
    taken = process.reconciled(VenueWord.NOT_FOUND, Decimal(0), NOW)

    # Assert
    events, _ = take(ctx)
    assert taken
    assert [type(e) for e in events] == [OrderRejected]
    assert process.words_due == 0
