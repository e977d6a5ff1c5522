"""The outbox: ``oms serve`` killed (SIGKILL) while orders are durable in MongoDB but their
events not yet on ``order-events``; after the restart every stored order's events are on the
topic exactly once, in sequence order.

The event sink is slowed (``OMS_EVENT_SINK_DELAY_S``) in the first run so that the kill lands
in the window between an order's write and its publication; the test checks it did (some
orders stored, their terminal event not on the topic) before it restarts the replica.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import MongoClient

from oms.config import Settings
from oms.probes import probe_all
from oms.store.documents import OrderDocument, stored_order
from oms.stream.names import topic_names
from tests.credentials import authenticated_session
from tests.e2e.conftest import last_price, open_account
from tests.e2e.crash_flow import Serve, order_body, place_orders, settle_everything
from tests.ports import free_port

FUNDS = {"USD": "1000000", "BTC": "10", "ETH": "100", "SOL": "1000"}
SYMBOLS = ("BTC-USD", "ETH-USD")
ORDERS = 200
UNPUBLISHED = 20  # orders ended in MongoDB without their terminal event out, at the kill
SINK_DELAY_S = "1.5"
TERMINAL = {"OrderSettled", "OrderCancelled", "OrderRejected"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A replica's environment of its own (topics, group, database, port); the database is
    dropped afterwards."""
    down = [name for name, ok in asyncio.run(probe_all(Settings.from_env())).items() if not ok]
    if down:
        pytest.fail(f"local servers not answering: {', '.join(down)} (run `make up`)")
    run = uuid.uuid4().hex[:8]
    environ = {
        **os.environ,
        "OMS_HTTP_HOST": "127.0.0.1",
        "OMS_HTTP_PORT": str(free_port()),
        "OMS_TOPIC_SUFFIX": f"outbox-{run}",
        "OMS_KAFKA_GROUP_ID": f"oms-outbox-{run}",
        "OMS_MONGO_DATABASE": f"oms_outbox_{run}",
        "OMS_ORDERS_PARTITIONS": "2",
        "OMS_EXECUTIONS_PARTITIONS": "2",
        "OMS_PRICES_PARTITIONS": "1",
        "OMS_EVENTS_PARTITIONS": "2",
        "OMS_CHECKPOINT_INTERVAL_S": "2",
    }
    yield environ
    settings = Settings.from_env(environ)
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    client.drop_database(settings.mongo_database)
    client.close()


def _stored(env: dict[str, str]) -> dict[str, list[tuple[str, int]]]:
    """Every terminal order in MongoDB: its history as (event type, sequence)."""
    settings = Settings.from_env(env)
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    try:
        orders = client[settings.mongo_database][OrderDocument.Settings.name]
        return {
            document["_id"]: [(type(e).__name__, e.sequence) for e in stored_order(document).events]
            for document in orders.find({"terminal": True})
        }
    finally:
        client.close()


async def _published(env: dict[str, str]) -> dict[str, list[tuple[str, int]]]:
    """Every record of ``order-events`` up to its end now: per order, (type, sequence) in the
    order its partition holds them."""
    settings = Settings.from_env(env)
    topic = topic_names(settings).order_events
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, q) for q in range(settings.events_partitions)]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: dict[str, list[tuple[str, int]]] = {}
        left = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + 30
        while left:
            assert time.monotonic() < deadline, "order-events could not be read to its end"
            batch = await consumer.getmany(*left, timeout_ms=500, max_records=10_000)
            for records in batch.values():
                for record in sorted(records, key=lambda r: r.offset):
                    event = orjson.loads(record.value)
                    found.setdefault(event["order_id"], []).append(
                        (event["type"], event["sequence"])
                    )
            for tp in tuple(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
        return found
    finally:
        await consumer.stop()


def _ended(published: dict[str, list[tuple[str, int]]]) -> set[str]:
    """The orders whose terminal event is on the topic."""
    return {o for o, events in published.items() if any(kind in TERMINAL for kind, _ in events)}


async def _until_the_window(env: dict[str, str]) -> None:
    """Until some orders' terminal events are on the topic while at least ``UNPUBLISHED``
    other orders have ended in MongoDB: a kill now finds both kinds."""
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, "the orders never reached MongoDB and the topic"
        stored = await asyncio.to_thread(_stored, env)
        ended = _ended(await _published(env))
        if ended and len(set(stored) - ended) >= UNPUBLISHED:
            return
        await asyncio.sleep(0.1)


async def _place_in_waves(
    http: aiohttp.ClientSession, serve: Serve, bodies: list[dict[str, str]], accepted: list[str]
) -> None:
    """A wave of 20 orders every quarter of a second (the sink publishes every 1.5 s)."""
    for start in range(0, len(bodies), 20):
        await place_orders(http, serve, bodies[start : start + 20], accepted)
        await asyncio.sleep(0.25)


async def _scenario(env: dict[str, str], log: Path) -> None:
    slow = Serve({**env, "OMS_EVENT_SINK_DELAY_S": SINK_DELAY_S}, log)
    await asyncio.to_thread(slow.start)
    timeout = aiohttp.ClientTimeout(total=10)
    rng = random.Random(11)
    accepted: list[str] = []
    async with authenticated_session(timeout=timeout) as http:
        accounts = [await open_account(http, slow.base, FUNDS, prefix="outbox") for _ in range(2)]
        prices = {s: await last_price(http, slow.base, s) for s in SYMBOLS}
        bodies = [order_body(rng, accounts[i % 2], prices) for i in range(ORDERS)]
        placing = asyncio.create_task(_place_in_waves(http, slow, bodies, accepted))
        await _until_the_window(env)
        slow.kill()
        await placing

    # The kill landed in the window: orders stored whose terminal event is not on the topic.
    stored, published = await asyncio.to_thread(_stored, env), await _published(env)
    at_kill = len(stored)
    unpublished = set(stored) - _ended(published)
    assert unpublished, "every stored order was published before the kill: no window hit"
    assert _ended(published), "nothing was published before the kill"

    again = Serve({**env, "OMS_EVENT_SINK_DELAY_S": "0"}, log)
    await asyncio.to_thread(again.start)
    try:
        async with authenticated_session(timeout=timeout) as http:
            await settle_everything(http, again.base, accounts, accepted)
        stored = await asyncio.to_thread(_stored, env)
        deadline = time.monotonic() + 20
        while True:  # the last events' acks may trail the API by a moment
            published = await _published(env)
            if all(published.get(o) == h for o, h in stored.items()):
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await asyncio.to_thread(again.stop)

    assert set(accepted) <= set(stored), "an accepted order never ended in MongoDB"
    wrong = {o: (h, published.get(o)) for o, h in stored.items() if published.get(o) != h}
    assert not wrong, (
        f"{len(wrong)} of {len(stored)} orders' events differ: {list(wrong.items())[:3]}"
    )
    lines = (await asyncio.to_thread(log.read_text)).splitlines()
    republished = [line for line in lines if "published again" in line]
    print(
        f"at the kill: {at_kill} orders ended in MongoDB, {len(unpublished)} of them without"
        f" their terminal event on order-events"
    )
    print(republished[-1] if republished else "no recovery line")


def test_restart_when_sigkilled_between_write_and_publication_then_every_event_is_published_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    asyncio.run(_scenario(env, tmp_path / "serve.log"))
