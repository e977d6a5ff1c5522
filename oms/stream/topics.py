"""The one home of topic names, their keys and partition counts, and their creation.

With topic auto-creation off (as on the local broker and MSK), nothing creates a topic for us:
``ensure_topics`` creates every topic with its partition count before any agent starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from oms.config import Settings
from oms.stream.security import aiokafka_security

ORDERS = "orders"
EXECUTIONS = "executions"
PRICES = "prices"
ORDER_EVENTS = "order-events"
RISK_EVENTS = "risk-events"
DLQ_SUFFIX = ".dlq"
DEMO = "oms-demo"  # `oms demo` shows a record through Kafka here, away from the real topics


def dead_letter(topic: str) -> str:
    """The dead-letter topic of ``topic``: where records that could not be applied go."""
    return f"{topic}{DLQ_SUFFIX}"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic and how many partitions it has; its key is named for the reader."""

    name: str
    partitions: int
    key: str


def topic_specs(settings: Settings) -> tuple[TopicSpec, ...]:
    """Every topic of the design, dead-letter topics included, sized from the settings."""
    sources = (
        TopicSpec(ORDERS, settings.orders_partitions, "account_id"),
        TopicSpec(EXECUTIONS, settings.executions_partitions, "account_id"),
        TopicSpec(PRICES, settings.prices_partitions, "symbol"),
    )
    outputs = (
        TopicSpec(ORDER_EVENTS, settings.events_partitions, "account_id"),
        TopicSpec(RISK_EVENTS, settings.events_partitions, "account_id"),
    )
    dead_letters = tuple(TopicSpec(dead_letter(t.name), t.partitions, t.key) for t in sources)
    return sources + outputs + dead_letters


async def ensure_topics(
    settings: Settings, specs: tuple[TopicSpec, ...] | None = None
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    wanted = specs if specs is not None else topic_specs(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **aiokafka_security(settings)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in wanted if spec.name not in existing]
        if missing:
            # another replica may create one between our list and our create
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            num_partitions=spec.partitions,
                            replication_factor=settings.topic_replication_factor,
                        )
                        for spec in missing
                    ]
                )
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def delete_topics(settings: Settings, names: Sequence[str]) -> None:
    """Delete those of ``names`` that exist (benchmarks and tests clean up their own topics)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **aiokafka_security(settings)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
