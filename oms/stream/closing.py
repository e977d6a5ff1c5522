"""Stopping an aiokafka consumer whatever state the broker is in."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer

logger = logging.getLogger(__name__)


async def stop_consumer(consumer: AIOKafkaConsumer, name: str) -> None:
    """``consumer.stop()``, except that a cancellation it leaks is not taken for ours.

    aiokafka 0.14's fetcher, on close, cancels its pending fetch requests and awaits each one
    unguarded: with the broker away (its requests waiting out a retry back-off) that raises
    CancelledError out of ``stop()`` although nobody cancelled the caller. Left to propagate,
    it skipped every later step of the service's stop (the engine's and the store's included)
    and ended the process with a traceback. The consumer counts as closed by then (it set its
    flag first); its sockets go with the process. A real cancellation of the caller (the stop's
    own time bound) still propagates.
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        logger.warning("the %s consumer's close was cut short (the broker is away)", name)
