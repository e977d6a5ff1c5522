"""One door process: ``POST /api/orders`` on its own clients, the rest relayed to the engine.

Started by ``oms serve`` (``oms.doors.supervisor``) with the public port, its number and the
pod's door token in its environment. It binds the public port beside the other doors
(``SO_REUSEPORT``) and its own ``/metrics`` on ``door_metrics_port_of(index)``. It owns no
state: what it accepted is on Kafka before its 202, so killing it loses nothing. It stops on
SIGTERM or SIGINT, and by itself when the ``oms serve`` that started it is gone (a SIGKILL of
the parent must not leave doors holding the port and relaying to nothing).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from pymongo import AsyncMongoClient

from oms.api.credentials import Authenticator
from oms.api.door_worker import DoorServices, build_door_app, door_metrics, metrics_app
from oms.api.jwt_tokens import JwtVerifier
from oms.api.listener import start_listener
from oms.api.rate_limits import RateLimiter
from oms.config import Settings
from oms.gc_pauses import record_gc_pauses
from oms.gc_tuning import tune_gc
from oms.legs import Legs
from oms.store.api_keys import MongoKeyDirectory
from oms.store.memory_rate_limits import MemoryRateLimits
from oms.store.redis_rate_limits import RedisAdmission, RedisRateLimits
from oms.store.redis_store import (
    RedisIdempotencyStore,
    RedisOrderCache,
    RedisTicketStore,
    redis_client,
)
from oms.stream.command_bus import KafkaCommandBus
from oms.stream.names import topic_names

logger = logging.getLogger(__name__)

PARENT_POLL_S = 0.5  # how soon a door notices that its oms serve is gone


def shared_rate_limiter(settings: Settings, redis: aioredis.Redis) -> RateLimiter:
    """The rate limiter of a process that takes requests (the engine's, a door's): buckets
    shared by every replica through Redis, this process's own while it is away, a placement's
    claims in the count's Redis call (the same ``idempotency:`` keys as the process's own
    ``RedisIdempotencyStore``). The buckets of a deployment are apart from another's on
    the same Redis."""
    shared = RedisRateLimits(redis, deployment=settings.topic_suffix)
    return RateLimiter(
        settings,
        shared,
        MemoryRateLimits(),
        claiming=RedisAdmission(shared, RedisIdempotencyStore(redis)),
    )


async def run_door(settings: Settings) -> int:
    """Serve as door ``settings.door_index`` until a stop signal or the parent's end."""
    record_gc_pauses()
    parent = os.getppid()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    stops: list[Any] = []
    try:
        redis = redis_client(settings)
        stops.append(redis.aclose)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
        stops.append(mongo.close)
        bus = KafkaCommandBus(settings, topic_names(settings))
        await bus.start()
        stops.append(bus.stop)
        jwt = None
        if settings.jwt_public_key or settings.jwt_jwks_url:
            jwt = JwtVerifier(settings)
            stops.append(jwt.close)
        keys = MongoKeyDirectory(mongo[settings.mongo_database])
        authenticator = Authenticator(settings, keys, RedisTicketStore(redis), jwt)
        limiter = shared_rate_limiter(settings, redis)
        legs = Legs()
        services = DoorServices(
            settings, bus, RedisIdempotencyStore(redis), RedisOrderCache(redis), legs=legs
        )
        metrics = door_metrics(settings, legs)
        app = build_door_app(settings, services, authenticator, limiter, metrics)
        runner, _site = await start_listener(app, settings, reuse_port=True)
        stops.append(runner.cleanup)
        metrics_runner = web.AppRunner(metrics_app(metrics), access_log=None)
        await metrics_runner.setup()
        stops.append(metrics_runner.cleanup)
        port = settings.door_metrics_port_of(settings.door_index)
        await web.TCPSite(metrics_runner, settings.http_host, port).start()
        # Once set up: what start-up built is frozen out of every later scan.
        tune_gc(settings.gc_young_threshold, freeze_survivors=settings.gc_freeze_survivors)
        logger.info(
            "oms door %d serving on http://%s:%d (metrics on port %d; gc thresholds %s%s)",
            settings.door_index,
            settings.http_host,
            settings.http_port,
            port,
            gc.get_threshold(),
            ", survivors frozen" if settings.gc_freeze_survivors else "",
        )
        while not stop.is_set() and os.getppid() == parent:
            try:
                await asyncio.wait_for(stop.wait(), PARENT_POLL_S)
            except TimeoutError:
                continue
        if not stop.is_set():
            logger.warning("oms door %d: oms serve is gone; stopping", settings.door_index)
    finally:
        # The listener first (stops taking requests, lets those in flight answer), then the
        # clients those requests used.
        for close in reversed(stops):
            try:
                await close()
            except Exception:
                logger.exception("oms door %d: a close failed", settings.door_index)
    return 0
