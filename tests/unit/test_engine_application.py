"""The async application service: use cases answer values on the loop, never pykka futures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from oms.domain.enums import OrderStatus, OrderType
from oms.domain.errors import AccountExists, EngineUnavailable, UnknownAccount, UnknownOrder
from oms.domain.events import OrderAccepted, OrderPlaced
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.reasons import RejectReason
from oms.engine import Engine
from oms.engine.ports import AccountRecord, OrderQuery
from tests.unit.engine_helpers import FUNDS, cancel, make_engine, place, tick


@pytest.fixture(params=["own thread", "serving loop"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    """Every use case twice: the dispatcher on a thread of its own, and in turns of this loop
    (``engine_loop``), where nothing may block on it."""
    on_loop = request.param == "serving loop"
    core = make_engine(loop=asyncio.get_running_loop() if on_loop else None)
    core.on_tick(tick())
    core.wait_idle()
    yield Engine(core)
    await asyncio.to_thread(core.stop)


async def _idle(engine: Engine) -> None:
    await engine.idle()


async def test_place_order_when_awaited_then_answers_the_new_order(engine: Engine) -> None:
    # Act
    placed = await engine.place_order(place(price="95.00"))

    # Assert: a value, not a future, and NEW before risk decides
    assert placed.status is OrderStatus.NEW
    assert placed.price == Decimal("95.00")


async def test_get_order_when_the_round_ended_then_answers_from_the_store(engine: Engine) -> None:
    # Arrange
    placed = await engine.place_order(place(price="95.00"))
    await _idle(engine)

    # Act
    found = await engine.get_order(placed.order_id)
    events = await engine.order_events(placed.order_id)
    listed = await engine.list_orders(OrderQuery("a1"))

    # Assert
    assert found is not None
    assert found.status is OrderStatus.ACCEPTED
    assert [type(e) for e in events] == [OrderPlaced, OrderAccepted]
    assert [o.order_id for o in listed] == [placed.order_id]


async def test_get_order_when_unknown_then_none_and_no_events(engine: Engine) -> None:
    # Act / Assert
    assert await engine.get_order("nobody") is None
    assert await engine.order_events("nobody") == ()


async def test_cancel_order_when_unknown_then_raises_the_domain_error(engine: Engine) -> None:
    # Act / Assert: the refusal is the domain's own error, with its reason code
    with pytest.raises(UnknownOrder) as refused:
        await engine.cancel_order(cancel("nobody"))
    assert refused.value.code == "UNKNOWN_ORDER"


async def test_cancel_when_sent_before_awaited_then_applied_in_call_order(engine: Engine) -> None:
    # Arrange: a resting order placed through a batch, its cancel asked right after (not awaited)
    resting = place(price="95.00")
    engine.submit([resting])

    # Act: the cancel goes when the method is called, behind the batch, not when awaited
    cancelling = engine.cancel_order(cancel(resting.order_id))
    await _idle(engine)
    answered = await cancelling

    # Assert
    assert answered.order_id == resting.order_id
    found = await engine.get_order(resting.order_id)
    assert found is not None
    assert found.status is OrderStatus.CANCELLED


async def test_open_account_when_it_exists_then_account_exists_unless_exist_ok(
    engine: Engine,
) -> None:
    # Act / Assert
    with pytest.raises(AccountExists) as refused:
        await engine.open_account("a1", FUNDS)
    kept = await engine.open_account("a1", {"USD": Decimal(1)}, exist_ok=True)

    assert refused.value.code == "ACCOUNT_EXISTS"
    assert kept.account_id == "a1"
    assert kept.balances["USD"].available == FUNDS["USD"]


async def test_account_when_unknown_then_raises_unknown_account(engine: Engine) -> None:
    with pytest.raises(UnknownAccount) as refused:
        await engine.account("nobody")
    assert refused.value.code == "UNKNOWN_ACCOUNT"


async def test_validate_when_halted_then_answers_the_denial(engine: Engine) -> None:
    # Arrange
    state = await engine.set_kill_switch(TradingState.HALTED, "a1")

    # Act
    denials = await engine.validate(place(kind=OrderType.MARKET, price=None))

    # Assert
    assert state is TradingState.HALTED
    assert [d.reason for d in denials] == [RejectReason.KILL_SWITCH_ACCOUNT]


async def test_set_limits_when_applied_then_the_account_reads_them(engine: Engine) -> None:
    # Arrange
    limits = RiskLimits(max_order_quantity=Decimal("3"))

    # Act
    answered = await engine.set_limits("a1", limits)

    # Assert
    assert answered == limits
    assert await engine.limits("a1") == limits


async def test_order_book_when_a_tick_arrived_then_answers_its_levels(engine: Engine) -> None:
    # Act
    book = await engine.order_book("BTC-USD", 1)

    # Assert
    assert book is not None
    assert book.best_bid == Decimal("100.00")


async def test_recover_when_an_account_is_stored_then_opens_it(engine: Engine) -> None:
    # Act
    summary = await engine.recover([], [AccountRecord("a3", {"USD": Decimal(5)})], [])

    # Assert
    assert summary.accounts_opened == 1
    snapshot = await engine.account("a3")
    assert snapshot.balances["USD"].available == Decimal(5)


async def test_durable_when_the_store_flushes_on_the_engine_then_returns(engine: Engine) -> None:
    # Arrange
    await engine.place_order(place(price="95.00"))
    await _idle(engine)

    # Act / Assert: a memory store is durable through the engine's flush
    await asyncio.wait_for(engine.durable(), 5.0)


async def test_any_use_case_when_the_engine_stopped_then_engine_unavailable() -> None:
    # Arrange
    core = make_engine()
    engine = Engine(core)
    await asyncio.to_thread(core.stop)

    # Act / Assert: pykka's ActorDeadError never reaches the caller
    with pytest.raises(EngineUnavailable) as refused:
        await engine.place_order(place(price="95.00"))
    with pytest.raises(EngineUnavailable):
        await engine.account("a1")
    assert refused.value.code == "ENGINE_UNAVAILABLE"
