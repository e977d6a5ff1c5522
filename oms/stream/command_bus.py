"""Order entry's command bus on Kafka: commands onto ``orders`` (fills onto ``executions``), and
account changes to their owners (batching and partitioning: ``oms.stream.partitioner``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

from aiokafka.errors import KafkaTimeoutError

from oms.config import Settings
from oms.correlation import kafka_headers
from oms.domain.commands import ApplyFill
from oms.stream.bus import CommandBus, OrderCommand
from oms.stream.codecs import AccountCommand, command_key, encode_account_command, encode_command
from oms.stream.names import TopicNames
from oms.stream.partitioner import (
    RECORD_BATCH_BYTES,
    CachedPartitioner,
    PartitionedBatches,
    abandon,
    interleave,
    reliable_producer,
)

# From this many commands the bus groups them into batches; fewer go one by one, because a batch
# of its own for each small call would queue behind the other calls' batches of the partition
# (one waiting batch per partition), where ``send`` adds to the batch being filled.
_BUS_BATCH_FROM = 16


class KafkaCommandBus(CommandBus):
    """Order entry's bus: each command onto ``orders`` (fills onto ``executions``), keyed by account,
    with its request id in the record's ``request_id`` header (``oms.correlation``).

    ``send`` returns once Kafka has acknowledged every command (acks=all): the REST layer's 202.
    Every send and ``send_account`` is bounded by ``kafka_send_timeout_s`` and raises
    ``KafkaTimeoutError`` past it: with the broker down, aiokafka waits for metadata, for room
    in its buffer and for the acknowledgement, each up to its request timeout, and a caller
    would hang for the whole outage. What timed out may still be delivered later (the producer
    keeps it): a caller must treat it as an unknown outcome, not as "not sent".
    """

    def __init__(self, settings: Settings, names: TopicNames | None = None) -> None:
        self.names = names or TopicNames()
        self._partitioner = CachedPartitioner()
        self._producer = reliable_producer(
            settings, linger_ms=settings.orders_linger_ms, max_batch_size=RECORD_BATCH_BYTES
        )
        self._timeout_s = settings.kafka_send_timeout_s

    async def start(self) -> None:
        """Connect the producer."""
        await self._producer.start()

    async def stop(self) -> None:
        """Send what is pending, then disconnect."""
        await self._producer.stop()

    async def send(self, commands: Sequence[OrderCommand]) -> None:
        """Produce the commands in order; return when all are acknowledged (raise if one fails
        or if that takes longer than ``kafka_send_timeout_s``)."""
        await self._bounded(self._send(commands))

    async def send_bounded_by_caller(self, commands: Sequence[OrderCommand]) -> None:
        """``send`` without the bus's timer: each ``asyncio.timeout`` schedules and cancels a
        timer, and a placement already waits under one of its own (``dependency_timeout_s``,
        below ``kafka_send_timeout_s``), which cancels this send when it passes."""
        await self._send(commands)

    async def _bounded(self, sending: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await sending
        except TimeoutError:
            raise KafkaTimeoutError(
                f"not acknowledged within {self._timeout_s:.1f} s (kafka_send_timeout_s)"
            ) from None

    async def _send(self, commands: Sequence[OrderCommand]) -> None:
        if len(commands) >= _BUS_BATCH_FROM:
            await self._send_batched(commands)
            return
        sent: list[asyncio.Future[Any]] = []
        try:
            for command in commands:
                if isinstance(command, ApplyFill):
                    topic, headers = self.names.executions, None
                else:
                    topic, headers = self.names.orders, kafka_headers(command.request_id)
                sent.append(
                    await self._producer.send(
                        topic,
                        value=encode_command(command),
                        key=command_key(command),
                        headers=headers,
                    )
                )
            if len(sent) == 1:  # a POST's one command: no gathering future to make and wake
                await sent[0]
            elif sent:
                await asyncio.gather(*sent)
        except BaseException:
            abandon(sent)
            raise

    async def send_account(self, command: AccountCommand) -> None:
        """Produce the change onto ``orders``, keyed by its account, so that the replica owning
        the account applies it in order with the account's orders; a global kill switch (no
        account) goes to every partition, so that every replica applies it. Bounded as
        ``send``."""
        await self._bounded(self._send_account(command))

    async def _send_account(self, command: AccountCommand) -> None:
        value = encode_account_command(command)
        topic = self.names.orders
        producer = self._producer
        holder = command.account_id
        if holder is not None:
            await (await producer.send(topic, value=value, key=holder.encode()))
            return
        partitions = sorted(await producer.partitions_for(topic))
        sent = [await producer.send(topic, value=value, partition=p) for p in partitions]
        await asyncio.gather(*sent)

    async def _send_batched(self, commands: Sequence[OrderCommand]) -> None:
        orders = await PartitionedBatches.for_topic(
            self._producer, self.names.orders, self._partitioner
        )
        executions: PartitionedBatches | None = None
        for command in commands:
            if isinstance(command, ApplyFill):
                if executions is None:
                    executions = await PartitionedBatches.for_topic(
                        self._producer, self.names.executions, self._partitioner
                    )
                executions.add(command_key(command), encode_command(command))
            else:
                orders.add(
                    command_key(command),
                    encode_command(command),
                    kafka_headers(command.request_id),
                )
        topics = (orders,) if executions is None else (orders, executions)
        sent: list[asyncio.Future[Any]] = []
        try:
            for topic, partition, batch, _ in interleave(*topics):
                sent.append(await self._producer.send_batch(batch, topic, partition=partition))
            results = await asyncio.gather(*sent, return_exceptions=True)
        except BaseException:
            abandon(sent)
            raise
        for result in results:
            if isinstance(result, BaseException):
                raise result
