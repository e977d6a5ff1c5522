"""The order actor as a shell: what its process decides becomes journal entries and messages.

The handlers are called directly on this thread (the dispatcher is never started): what the
actor tells lands in the dispatcher's queue, where the test reads it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from oms.actors.journal import Journal
from oms.actors.messages import Accept, Finished, Matched, RiskAnswer, Settle, Settled, Submit
from oms.actors.order import InjectedFailure, OrderActor, OrderContext
from oms.actors.runtime import DispatchedActor, Dispatcher
from oms.domain.events import OrderRejected
from oms.domain.instruments import DEFAULT_INSTRUMENTS
from oms.domain.order_process import Phase
from oms.domain.reasons import OrderCheckReason, RejectionReason, RejectReason
from oms.risk.decision import Reservation, RiskDecision
from oms.store.memory import MemoryOrderRepository
from oms.venue import Execution, MatchResult, Outcome
from tests.unit.domain.order_process_builders import NOW, PRICE, place_command


class _Peer(DispatchedActor):
    """Stands in for risk, the venue and the directory: what is told to it stays queued."""

    registered = False  # out of pykka's global registry: nothing else should find it


@pytest.fixture
def dispatcher() -> Dispatcher:
    return Dispatcher("test-order-actor")  # never started: the test thread calls the handlers


@pytest.fixture
def ctx(dispatcher: Dispatcher) -> OrderContext:
    context = OrderContext(
        journal=Journal(MemoryOrderRepository()),
        instruments={i.symbol: i for i in DEFAULT_INSTRUMENTS},
        clock=lambda: NOW,
    )
    context.risk = _Peer.start(dispatcher)
    context.venue = _Peer.start(dispatcher)
    context.directory = _Peer.start(dispatcher)
    return context


def _told(dispatcher: Dispatcher) -> list[Any]:
    """The messages told since the last look (the dispatcher's queue, emptied)."""
    messages = [message for _, message in dispatcher._queue]
    dispatcher._queue.clear()
    return messages


def test_order_when_placed_accepted_filled_then_journal_has_its_events_and_peers_its_messages(
    dispatcher: Dispatcher, ctx: OrderContext
) -> None:
    # Arrange
    actor = OrderActor(dispatcher, ctx)
    reservation = Reservation("o-1", "a1", "USD", Decimal("100.20"), PRICE)
    execution = Execution("o-1:1", "o-1", "a1", Decimal("1"), PRICE, Decimal("0.01"))

    # Act
    actor.on_place(place_command())
    asked = _told(dispatcher)
    actor.on_risk_answer(RiskAnswer(RiskDecision(True, (), reservation)))
    submitted = _told(dispatcher)
    actor.on_matched(Matched(MatchResult((execution,), Decimal(0), Outcome.FILLED), NOW))
    settled = _told(dispatcher)
    actor.on_settled(Settled("o-1", Decimal("0.20")))
    finished = _told(dispatcher)

    # Assert
    assert [type(m) for m in asked] == [Accept]
    assert [type(m) for m in submitted] == [Submit]
    assert submitted[0].order.protection_price == PRICE
    [settle] = settled
    assert isinstance(settle, Settle)
    assert (settle.release, [f.command_id for f in settle.fills]) == (True, ["o-1:1"])
    assert finished == [Finished("o-1")]
    assert not actor.actor_ref.is_alive()
    assert [type(e).__name__ for e in ctx.journal._events] == [
        "OrderPlaced", "OrderAccepted", "OrderFilled", "OrderSettled",
    ]  # fmt: skip
    assert (ctx.process.events, ctx.process.effects) == ([], [])


def test_message_when_sending_fails_then_the_shared_outbox_is_left_empty(
    dispatcher: Dispatcher, ctx: OrderContext
) -> None:
    # Arrange: no risk supervisor wired (a bug), so asking risk fails
    ctx.risk = None
    actor = OrderActor(dispatcher, ctx)

    # Act
    with pytest.raises(AssertionError, match="supervisor"):
        actor.on_place(place_command())

    # Assert: the next order does not inherit this one's decisions
    assert (ctx.process.events, ctx.process.effects) == ([], [])
    assert [type(e).__name__ for e in ctx.journal._events] == ["OrderPlaced"]


def test_place_when_fault_injection_counts_down_to_this_order_then_fails_after_asking_risk(
    dispatcher: Dispatcher, ctx: OrderContext
) -> None:
    # Arrange
    ctx.fail_at = 2
    first, second = OrderActor(dispatcher, ctx), OrderActor(dispatcher, ctx)

    # Act
    first.on_place(place_command(order_id="o-1"))
    first.on_place(place_command(order_id="o-1"))  # a replay places nothing: not counted
    with pytest.raises(InjectedFailure) as failed:
        second.on_place(place_command(order_id="o-2"))

    # Assert
    assert failed.value.code == "INJECTED_FAILURE"
    assert [type(m) for m in _told(dispatcher)] == [Accept, Accept]  # risk was asked first
    assert second.process.phase is Phase.AWAITING_RISK
    assert ctx.fail_at == 0


@pytest.mark.parametrize(
    ("error", "reason", "detail"),
    [
        ("UNKNOWN_INSTRUMENT", RejectReason.UNKNOWN_INSTRUMENT, ""),
        ("INVALID_QUANTITY", OrderCheckReason.INVALID_QUANTITY, ""),
        ("ALREADY_OPEN", OrderCheckReason.RISK_ERROR, "ALREADY_OPEN"),
        (None, OrderCheckReason.RISK_ERROR, ""),
    ],
    ids=["a rejection code", "a validation code", "another error", "no code"],
)
def test_risk_answer_when_risk_raised_then_rejected_with_a_closed_reason_and_the_code_kept(
    dispatcher: Dispatcher,
    ctx: OrderContext,
    error: str | None,
    reason: RejectionReason,
    detail: str,
) -> None:
    # Arrange
    actor = OrderActor(dispatcher, ctx)
    actor.on_place(place_command())
    _told(dispatcher)

    # Act
    actor.on_risk_answer(RiskAnswer(None, error))

    # Assert
    rejected = ctx.journal._events[-1]
    assert isinstance(rejected, OrderRejected)
    assert (rejected.reason, rejected.detail) == (reason, detail)
    assert rejected.reason is reason
