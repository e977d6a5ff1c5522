"""Dead letters: what the ingestion and the price feed refuse goes to ``<topic>.dlq`` with its
reason, and the counters both keep for /metrics."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord

from oms.stream.codecs import dead_letter_value
from oms.stream.topics import dead_letter

logger = logging.getLogger(__name__)


@dataclass
class StreamStats:
    """Counters for /metrics and tests."""

    batches: int = 0
    commands: int = 0
    dead_letters: int = 0
    ticks: int = 0
    barrier_retries: int = 0
    commits: int = 0
    commit_failures: int = 0
    # Hand-offs: rebalances this replica went through, and of the last one how long it handed
    # nothing to the engine (from the revocation to the rebuilt state) and how much of that
    # was ``Engine.rebuild`` (0 when its share of ``orders`` did not change).
    rebalances: int = 0
    last_rebalance_pause_s: float = 0.0
    last_rebuild_s: float = 0.0
    by_reason: dict[str, int] = field(default_factory=dict)
    # Where the ingestion's time goes at full load, in seconds summed since the start: the fetch
    # loop waiting for room (``max_in_flight`` records handed over and not committed), and each
    # durability step of the commit barrier (by step name) from its start to its success.
    room_wait_s: float = 0.0
    barrier_step_s: dict[str, float] = field(default_factory=dict)
    # Ticks handed to the engine per symbol (every listed one from 0, so that a symbol whose
    # feed never started shows as flat, not as missing).
    ticks_by_symbol: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Record:
    """What the dead-letter topic needs of a consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None
    request_id: str | None = None  # an ``orders`` record's (``oms.correlation.from_record``)


class DeadLetters:
    """Puts records that cannot be decoded or applied on ``<topic>.dlq`` with the reason."""

    def __init__(self, producer: AIOKafkaProducer, stats: StreamStats) -> None:
        self._producer = producer
        self._stats = stats

    async def send(
        self, record: Record, reason: str, detail: str, **context: str | None
    ) -> asyncio.Future[Any]:
        """Queue one dead letter (keyed as the source record); await the result for its ack.

        ``context``: the correlation fields known of the record (order, account, command ids)
        for the log line, besides the record's own request id."""
        logger.warning(
            "dead letter %s[%d]@%d: %s %s",
            record.topic, record.partition, record.offset, reason, detail,
            extra={"request_id": record.request_id, **context},
        )  # fmt: skip
        self._stats.dead_letters += 1
        self._stats.by_reason[reason] = self._stats.by_reason.get(reason, 0) + 1
        value = dead_letter_value(
            reason=reason,
            detail=detail,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            value=record.value,
            key=record.key,
            timestamp=record.timestamp,
            request_id=record.request_id,
        )
        future: asyncio.Future[Any] = await self._producer.send(
            dead_letter(record.topic), value=value, key=record.key
        )
        return future


def record_of(message: ConsumerRecord[bytes, bytes], request_id: str | None = None) -> Record:
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp=message.timestamp / 1000,
        request_id=request_id,
    )
