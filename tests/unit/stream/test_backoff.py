"""aiokafka clients back off after a failed metadata refresh instead of spinning."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer

import oms.stream  # noqa: F401 - importing the stream layer installs the back-off
from tests.ports import free_port


async def test_metadata_refresh_when_the_broker_is_gone_then_retries_are_paced() -> None:
    # Arrange: a client whose broker refuses connections, its metadata synchronizer running.
    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{free_port()}")
    client = producer.client
    client._retry_backoff = 0.1
    sync = asyncio.create_task(client._md_synchronizer())

    # Act: refresh again as soon as a refresh ends, as aiokafka's own loops do (the idempotent
    # producer waiting for its id, the fetcher after a connection error), for one second.
    refreshes = 0
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        await client.force_metadata_update()
        refreshes += 1
    sync.cancel()
    await asyncio.gather(sync, return_exceptions=True)
    await client.close()

    # Assert: about ten (one per 100 ms back-off), not the thousands a spin makes.
    assert 1 <= refreshes <= 15, refreshes
