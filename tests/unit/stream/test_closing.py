"""Stopping a consumer: a cancellation aiokafka leaks is not the caller's."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from oms.stream.closing import stop_consumer


class _LeakingConsumer:
    """Stands for aiokafka's consumer whose fetcher re-raises a cancelled request's error."""

    def __init__(self, hold: asyncio.Event | None = None) -> None:
        self.hold = hold

    async def stop(self) -> None:
        if self.hold is not None:
            await self.hold.wait()
        raise asyncio.CancelledError


async def test_stop_consumer_when_aiokafka_leaks_a_cancellation_then_returns() -> None:
    # Arrange
    consumer = cast("Any", _LeakingConsumer())

    # Act / Assert: returns, the caller goes on with its own stop
    await stop_consumer(consumer, "prices")


async def test_stop_consumer_when_the_caller_is_cancelled_then_the_cancellation_propagates() -> (
    None
):
    # Arrange
    consumer = cast("Any", _LeakingConsumer(hold=asyncio.Event()))
    stopping = asyncio.create_task(stop_consumer(consumer, "prices"))
    await asyncio.sleep(0)

    # Act
    stopping.cancel()

    # Assert
    with pytest.raises(asyncio.CancelledError):
        await stopping
