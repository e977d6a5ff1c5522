"""``oms.service.HaltAccount``: a discrepancy halts as the kill switch does, over in-memory
adapters (recorded, applied, sent, announced on risk-events)."""

from __future__ import annotations

import asyncio

from oms.domain.limits import TradingState
from oms.engine import Engine
from oms.engine.ports import AccountRecord
from oms.service import HaltAccount
from oms.store.memory import MemoryAccountRepository
from oms.stream.codecs import RiskEventType
from oms.stream.engine_bus import EngineCommandBus, KeptRiskEvents
from oms.venue.reconcile import Discrepancy, DiscrepancyKind
from tests.unit.engine_helpers import FUNDS, make_engine


def test_halt_when_a_discrepancy_names_an_account_then_recorded_applied_and_announced() -> None:
    # Arrange
    core = make_engine(simulated_venue=False)
    accounts = MemoryAccountRepository()
    events = KeptRiskEvents()
    found = Discrepancy(DiscrepancyKind.FILL_ON_ENDED_ORDER, "a1", "o-1", "trade T9 on CANCELLED")

    async def scenario() -> AccountRecord | None:
        engine = Engine(core)
        await accounts.open(AccountRecord("a1", FUNDS))
        halt = HaltAccount(engine, accounts, EngineCommandBus(engine), events)

        # Act
        await halt.halt(found, 1234.0)
        return await accounts.get("a1")

    try:
        stored = asyncio.run(scenario())
        core.wait_idle()
        state = core.risk_book.trading_state("a1")
    finally:
        core.stop()

    # Assert
    assert stored is not None
    assert stored.trading_state is TradingState.HALTED
    assert state is TradingState.HALTED
    (event,) = events.events
    assert event.type is RiskEventType.RECONCILIATION
    assert (event.account_id, event.order_id, event.reason) == ("a1", "o-1", "FILL_ON_ENDED_ORDER")
    assert event.at == 1234.0


def test_halt_when_the_discrepancy_names_no_account_then_halts_everything() -> None:
    core = make_engine(simulated_venue=False)
    accounts = MemoryAccountRepository()
    events = KeptRiskEvents()
    found = Discrepancy(DiscrepancyKind.UNKNOWN_VENUE_ORDER, None, "stranger", "open there")

    async def scenario() -> TradingState:
        engine = Engine(core)
        await HaltAccount(engine, accounts, EngineCommandBus(engine), events).halt(found, 1.0)
        return await accounts.global_trading_state()

    try:
        stored = asyncio.run(scenario())
        core.wait_idle()
        state = core.risk_book.trading_state()
    finally:
        core.stop()

    assert stored is TradingState.HALTED
    assert state is TradingState.HALTED
    assert events.events[0].account_id is None
    assert events.events[0].reason == "UNKNOWN_VENUE_ORDER"
