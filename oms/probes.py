"""Reachability probes of the three servers oms depends on, for /ready and the demo.

Each probe makes one real request (Kafka metadata, Redis PING, MongoDB ping) with a short
timeout and answers True or False; it never raises for an unreachable server.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from oms.config import Settings
from oms.stream.security import aiokafka_security

PROBE_TIMEOUT_S = 2.0


async def kafka_reachable(settings: Settings) -> bool:
    """True when the Kafka cluster answers a metadata request with at least one broker."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        request_timeout_ms=int(PROBE_TIMEOUT_S * 1000),
        **aiokafka_security(settings),
    )
    try:
        await asyncio.wait_for(admin.start(), PROBE_TIMEOUT_S)
        cluster = await asyncio.wait_for(admin.describe_cluster(), PROBE_TIMEOUT_S)
        return bool(cluster.get("brokers"))
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()


async def redis_reachable(settings: Settings) -> bool:
    """True when Redis answers PING."""
    client = aioredis.from_url(settings.redis_url, socket_timeout=PROBE_TIMEOUT_S)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


async def mongo_reachable(settings: Settings) -> bool:
    """True when the MongoDB-compatible server answers ping."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongo_url, serverSelectionTimeoutMS=int(PROBE_TIMEOUT_S * 1000)
    )
    try:
        answer = await client.admin.command("ping")
        return bool(answer.get("ok"))
    except PyMongoError:
        return False
    finally:
        await client.close()


async def probe_all(settings: Settings) -> dict[str, bool]:
    """Probe the three servers at once."""
    kafka, redis_ok, mongo = await asyncio.gather(
        kafka_reachable(settings), redis_reachable(settings), mongo_reachable(settings)
    )
    return {"kafka": kafka, "redis": redis_ok, "mongodb": mongo}
