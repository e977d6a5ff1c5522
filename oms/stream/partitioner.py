"""Kafka producers that place records by account: the partitioner, the reliable producer, and
records grouped per partition into the producer's own batches.

Producers (the command bus, the event sink) use ``acks=all`` and idempotence, so a retried send
is neither lost nor duplicated and records of one partition keep their order. Keys are the
account id, so one account's commands and events stay in order on one partition.

Many records at once (the sink's batches, the bus given many commands) do not go through
``producer.send``: that costs tens of microseconds of Python per record (a future per record,
the partitioner, the accumulator). They are grouped per partition here (``PartitionedBatches``,
the same murmur2 partitioning) straight into the producer's own record batches, and each batch
is handed over whole with ``send_batch``: one future per batch. That path keeps what ``send``
gives: the accumulator stamps every batch with the producer id and the partition's next sequence
number when it takes it (so idempotence and ordered retries hold), and it holds at most one
waiting batch per partition, taken in the order handed over, with one request in flight per
broker (so batches of one partition are written in the order they were sent).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from oms.config import Settings
from oms.stream.security import aiokafka_security


def partition_of(account_id: str, partitions: int) -> int:
    """The partition of ``orders`` (of ``partitions``, numbered from 0) an account's commands
    go to: the default partitioner's (``CachedPartitioner``), so the replica consuming it owns
    the account."""
    if partitions < 1:
        raise ValueError("a topic has at least one partition")
    return int(_PARTITIONER(account_id.encode(), list(range(partitions)), []))


class CachedPartitioner:
    """Kafka's default partitioner (murmur2 of the key), remembering each key's partition.

    aiokafka computes murmur2 in pure Python for every keyed message; keys here are account ids
    (or symbols), few and repeated, so the hash is computed once per key and partition count.
    The answer is the default partitioner's, so other producers of the topic (any client
    using murmur2) put an account's messages on the same partition.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self._default = DefaultPartitioner()
        self._index: dict[tuple[bytes, int], int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        """The partition of ``key`` among ``all_partitions`` (random among ``available`` if None)."""
        if key is None:
            return int(self._default(key, all_partitions, available))
        slot = (key, len(all_partitions))
        index = self._index.get(slot)
        if index is None:
            partition = int(self._default(key, all_partitions, available))
            if len(self._index) >= self._max_keys:
                self._index.clear()
            self._index[slot] = all_partitions.index(partition)
            return partition
        return all_partitions[index]


_PARTITIONER = CachedPartitioner()


def reliable_producer(
    settings: Settings, *, linger_ms: int = 2, max_batch_size: int = 16_384
) -> AIOKafkaProducer:
    """A producer that loses nothing it acknowledged: acks=all, idempotent, ordered retries."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.kafka_client_id}-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=max_batch_size,
        partitioner=CachedPartitioner(),
        **aiokafka_security(settings),
    )


# Record batches of the sink and the bus: about 400 order events or commands each. A batch waits
# in the producer until the request before it is answered (one request in flight per broker), so
# a larger batch carries more per round trip (aiokafka's default, 16 KiB, is about 50 records);
# well below the broker's 1 MiB limit on one batch (message.max.bytes).
RECORD_BATCH_BYTES = 128 * 1024


class PartitionedBatches:
    """One topic's records grouped per partition into the producer's record batches, in order.

    The partition of a key is ``partitioner``'s (murmur2, as ``send`` would choose); a record
    without a key goes to a random available partition, as with ``send``. A full batch is closed
    and a new one started for the partition. Build it on the event loop after
    ``await producer.partitions_for(topic)`` (see ``for_topic``).
    """

    __slots__ = (
        "_by_partition",
        "_create",
        "_partitioner",
        "_partitions",
        "_producer",
        "_routes",
        "topic",
    )

    def __init__(
        self, producer: AIOKafkaProducer, topic: str, partitioner: CachedPartitioner
    ) -> None:
        self.topic = topic
        self._producer = producer
        self._create = producer.create_batch
        self._partitioner = partitioner
        self._partitions = sorted(producer.client.cluster.partitions_for_topic(topic) or ())
        self._routes: dict[bytes, list[Any]] = {}
        self._by_partition: dict[int, list[Any]] = {}

    @classmethod
    async def for_topic(
        cls, producer: AIOKafkaProducer, topic: str, partitioner: CachedPartitioner
    ) -> PartitionedBatches:
        """Empty batches for ``topic``, once the producer knows its partitions."""
        await producer.partitions_for(topic)
        return cls(producer, topic, partitioner)

    def add(self, key: bytes | None, value: bytes, headers: Headers | None = None) -> None:
        """Append one record to its partition's current batch (a new one when that is full)."""
        builders = None if key is None else self._routes.get(key)
        if builders is None:
            builders = self._route(key)
        builder, records = builders[-1]
        if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
            # A batch always takes its first record, however large.
            builder, records = self._create(), []
            builder.append(key=key, value=value, timestamp=None, headers=headers)
            builders.append((builder, records))
        records.append((key, value))

    def _route(self, key: bytes | None) -> list[Any]:
        available = self._producer.client.cluster.available_partitions_for_topic(self.topic)
        partition = self._partitioner(key, self._partitions, list(available or ()))
        builders = self._by_partition.get(partition)
        if builders is None:
            builders = self._by_partition[partition] = [(self._create(), [])]
        if key is not None:
            self._routes[key] = builders
        return builders

    def records(self) -> int:
        """How many records were added."""
        return sum(len(r) for _, r in chain.from_iterable(self._by_partition.values()))

    def batches(self) -> Iterator[tuple[int, Any, Records]]:
        """``(partition, batch, its records)`` of every partition's batches in order, partitions
        taking turns.

        Taking turns lets each partition's first batch leave with the next request while a
        partition's second batch waits for its first to be taken.
        """
        queues = [(p, deque(builders)) for p, builders in self._by_partition.items()]
        while queues:
            for partition, builders in queues:
                batch, records = builders.popleft()
                # Closed, it leaves with the next request instead of lingering for more records.
                batch.close()
                yield partition, batch, records
            queues = [(p, builders) for p, builders in queues if builders]


Records = list[tuple[bytes | None, bytes]]
Headers = list[tuple[str, bytes]]  # a list: aiokafka's record builder takes nothing else


def interleave(*topics: PartitionedBatches) -> Iterator[tuple[str, int, Any, Records]]:
    """Every ``(topic, partition, batch, records)`` of ``topics``, each partition's in order."""
    turns = [(t.topic, t.batches()) for t in topics]
    while turns:
        left = []
        for topic, batches in turns:
            turn = next(batches, None)
            if turn is not None:
                yield topic, turn[0], turn[1], turn[2]
                left.append((topic, batches))
        turns = left


def abandon(sent: Sequence[asyncio.Future[Any]]) -> None:
    """Stop waiting for deliveries after a failure or a cut-short wait (the bound, a cancel).

    With the broker down, waiting for what was handed over would take the whole outage; its
    outcome is still retrieved when it comes, so none is logged as never retrieved.
    """
    for future in sent:
        future.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
