"""``oms demo``: start ``oms serve``, drive a short demo through it and the servers, stop it.

The demo shows each real server in use: the HTTP process's readiness (which probes all three),
the Kafka topics with their partitions and a record through them, a Redis idempotency claim, and
a document written to and read back from the MongoDB-compatible store.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient

from oms.config import Settings
from oms.demo_engine import run_engine_demo
from oms.stream.topics import DEMO, TopicSpec, ensure_topics, topic_specs

SERVE_START_TIMEOUT_S = 30.0


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


async def _wait_for_health(base: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + SERVE_START_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"oms serve exited with {process.returncode}")
            try:
                async with http.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("oms serve did not answer /health in time")
            await asyncio.sleep(0.2)


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, orjson.loads(await response.read())


async def _kafka_round_trip(settings: Settings, run_id: str) -> None:
    """Produce one record to the demo topic and read it back by offset (no consumer group)."""
    topic = DEMO
    await ensure_topics(settings, (TopicSpec(DEMO, 1, "run_id"),))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            topic, key=run_id.encode(), value=orjson.dumps({"run_id": run_id})
        )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, meta.partition)
        consumer.assign([partition])
        consumer.seek(partition, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), 10)
    finally:
        await consumer.stop()
    print(f"kafka: produced to {topic}[{meta.partition}]@{meta.offset}, read back {record.value!r}")


async def _redis_claim(settings: Settings, run_id: str) -> None:
    client = aioredis.from_url(settings.redis_url)
    key = f"idempotency:demo:{run_id}"
    try:
        first = await client.set(key, b"order-1", nx=True, ex=60)
        second = await client.set(key, b"order-2", nx=True, ex=60)
    finally:
        await client.aclose()
    print(f"redis: SET NX {key}: first claim {bool(first)}, second claim {bool(second)}")


async def _mongo_write(settings: Settings, run_id: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    try:
        runs = client[settings.mongo_database]["demo_runs"]
        await runs.insert_one({"run_id": run_id, "at": time.time(), "amount": "0.00000001"})
        found = await runs.find_one({"run_id": run_id}, {"_id": 0})
        total = await runs.count_documents({})
    finally:
        await client.close()
    print(f"mongodb: inserted and read back {found} ({total} demo runs stored so far)")


async def run_demo(settings: Settings) -> int:
    """Run the demo end to end; 0 when every step worked."""
    run_id = uuid.uuid4().hex[:12]
    conserved = False
    base = f"http://{settings.http_host}:{settings.http_port}"
    _step(f"starting oms serve on {base}")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "oms.cli", "serve", env=dict(os.environ)
    )
    try:
        await _wait_for_health(base, process)
        async with aiohttp.ClientSession() as http:
            status, body = await _get(http, f"{base}/health")
            print(f"GET /health -> {status} {body}")
            status, body = await _get(http, f"{base}/ready")
            print(f"GET /ready  -> {status} {body}")
        _step("kafka topics (created by the project, auto-creation is off)")
        created = await ensure_topics(settings)
        for spec in topic_specs(settings):
            print(
                f"{spec.name:<16} partitions={spec.partitions} key={spec.key}"
                + ("  (created now)" if spec.name in created else "")
            )
        _step("the servers in use")
        await _kafka_round_trip(settings, run_id)
        await _redis_claim(settings, run_id)
        await _mongo_write(settings, run_id)
        _step("the order engine: actors, risk, venue, settlement (in process)")
        conserved = await asyncio.to_thread(run_engine_demo, settings)
    finally:
        _step("stopping oms serve")
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 15)
        print(f"oms serve exited with {process.returncode}")
    print("\ndemo finished" if conserved else "\ndemo FAILED: totals not conserved")
    return 0 if conserved else 1
