"""The engine process's app over a real engine core, every store in memory: no Kafka, Redis or
MongoDB. Shared by the API tests that need their own engine (a door in front of it, a MongoDB
that is away, rate limits)."""

from __future__ import annotations

from aiohttp import web

from oms.api.app import build_app
from oms.api.door_worker import with_door_side
from oms.api.rate_limits import RateLimiter
from oms.config import Settings
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.engine.ports import IdempotencyStore, OrderCache
from oms.store.memory import MemoryAccountRepository, MemoryIdempotencyStore, MemoryOrderCache
from oms.store.memory_audit import MemoryAuditLog
from oms.stream.engine_bus import EngineCommandBus, KeptRiskEvents
from tests.credentials import MemoryKeys


def memory_engine_app(
    settings: Settings,
    core: EngineCore,
    keys: MemoryKeys,
    *,
    idempotency: IdempotencyStore | None = None,
    cache: OrderCache | None = None,
    rate_limiter: RateLimiter | None = None,
) -> tuple[web.Application, EngineCommandBus]:
    """The app (with its side for door processes when ``settings`` has doors) and its bus."""
    facade = Engine(core)  # what the API holds: the engine's async use cases
    bus = EngineCommandBus(facade)
    app = build_app(
        settings,
        facade,
        bus,
        MemoryIdempotencyStore() if idempotency is None else idempotency,
        MemoryOrderCache() if cache is None else cache,
        partitions_assigned=lambda: True,
        accounts=MemoryAccountRepository(),
        risk_events=KeptRiskEvents(),
        authenticator=keys.authenticator,
        audit_log=MemoryAuditLog(),
        rate_limiter=rate_limiter,
    )
    return with_door_side(app, settings, facade), bus
