"""An API over a real engine: in-memory repository, in-process command bus, memory stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from oms.api.app import build_app
from oms.domain.limits import TradingState
from oms.durations import Durations
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.engine.ports import AccountRecord
from oms.engine.reconciliation import Discrepancies, Halt, Reconciliation
from oms.store.memory import MemoryAccountRepository, MemoryIdempotencyStore, MemoryOrderCache
from oms.store.memory_audit import MemoryAuditLog
from oms.store.memory_global_limits import MemoryGlobalLimits
from oms.stream.engine_bus import EngineCommandBus, KeptRiskEvents
from oms.venue.reconcile import Discrepancy
from tests.credentials import MemoryKeys
from tests.unit.engine_helpers import FUNDS, make_engine, tick


@dataclass
class Api:
    """The client and what stands behind it."""

    client: TestClient[Any, Any]
    engine: EngineCore
    bus: EngineCommandBus
    cache: MemoryOrderCache
    accounts: MemoryAccountRepository
    risk_events: KeptRiskEvents
    keys: MemoryKeys  # the client sends an admin key; ``keys.headers(role, accounts)`` others
    audit: MemoryAuditLog
    reconciliation: Reconciliation  # nothing reconciles until a test gives it a reconciler

    async def settle(self) -> None:
        """Wait until the engine has handled everything sent so far (and what it caused)."""
        await asyncio.to_thread(self.engine.wait_idle)


@dataclass
class HaltHere(Halt):
    """A discrepancy halts the account in the engine (the service also records and publishes)."""

    engine: Engine

    async def halt(self, discrepancy: Discrepancy, at: float) -> None:
        await self.engine.set_kill_switch(TradingState.HALTED, discrepancy.account_id)


def _write_times() -> Durations:
    """Four store writes: one under 10 ms, two under 50 ms, one slower."""
    durations = Durations((0.01, 0.05))
    for seconds in (0.004, 0.02, 0.03, 0.2):
        durations.observe(seconds)
    return durations


async def _ready() -> dict[str, bool]:
    return {"kafka": True, "mongodb": True, "redis": True}


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    engine = make_engine()
    engine.on_tick(tick())
    engine.wait_idle()
    facade = Engine(engine)  # what the API holds: the engine's async use cases
    bus = EngineCommandBus(facade)
    write_times = _write_times()
    cache = MemoryOrderCache()
    accounts = MemoryAccountRepository()
    risk_events = KeptRiskEvents()
    audit = MemoryAuditLog()
    for account_id in engine.risk_book.account_ids():  # the accounts make_engine opened
        await accounts.open(AccountRecord(account_id, FUNDS))
    keys = MemoryKeys(engine.settings)
    reconciliation = Reconciliation(Discrepancies(HaltHere(facade)))
    app = build_app(
        engine.settings,
        facade,
        bus,
        MemoryIdempotencyStore(),
        cache,
        partitions_assigned=lambda: True,
        consumer_lag=lambda: {("orders", 0): 3},
        pipeline=lambda: {
            "store_backlog_orders": 2,
            "dead_letters_total": 5,
            "store_write_duration_seconds": write_times,
        },
        ready_probe=_ready,
        market_poll_s=0.02,
        accounts=accounts,
        risk_events=risk_events,
        authenticator=keys.authenticator,
        audit_log=audit,
        global_limits=MemoryGlobalLimits(),
        reconciliation=reconciliation,
    )
    async with TestClient(TestServer(app), headers=keys.headers()) as client:
        yield Api(client, engine, bus, cache, accounts, risk_events, keys, audit, reconciliation)
    engine.stop()
