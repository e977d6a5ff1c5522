"""A back-off after each failed metadata refresh of an aiokafka client.

With the broker unreachable, aiokafka 0.14 spins: a failed connection asks for a metadata
refresh, the refresh fails at once (connection refused) and asks again, with no pause. Measured
here with Kafka stopped under an idle ``oms serve``: 0.48 of a core burnt in
``AIOKafkaConnection.connect`` and 35,837 log lines in one short outage, while the API's event
loop, shared with those clients, answered POSTs seconds late. kafka-python fixed the same busy
poll by waiting ``retry_backoff_ms`` after a failed refresh (dpkp/kafka-python#733), as the Java
client does; aiokafka has no such wait, so this module adds it to ``AIOKafkaClient`` (every
producer, consumer and admin client of the process uses that class).

It wraps a private method, so ``tests/unit/stream/test_backoff.py`` checks the behaviour itself
against a port where nothing listens: if an aiokafka upgrade moves the loop, that test fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.client import AIOKafkaClient

_MetadataUpdate = Callable[[AIOKafkaClient, Any, Any], Awaitable[bool]]
_installed: list[_MetadataUpdate] = []


def install_metadata_backoff() -> None:
    """Make every aiokafka client wait ``retry_backoff_ms`` after a failed metadata refresh
    (idempotent; call before building clients)."""
    if _installed:
        return
    original: _MetadataUpdate = AIOKafkaClient._metadata_update

    async def with_backoff(self: AIOKafkaClient, cluster_metadata: Any, topics: Any) -> bool:
        updated = await original(self, cluster_metadata, topics)
        if not updated:
            await asyncio.sleep(self._retry_backoff)
        return updated

    AIOKafkaClient._metadata_update = with_backoff
    _installed.append(original)
