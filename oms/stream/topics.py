"""The one home of topic names, their keys and partition counts, and their creation.

With topic auto-creation off (as on the local broker and MSK), nothing creates a topic for us:
``ensure_topics`` creates every topic with its partition count before any agent starts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from oms.config import Settings
from oms.domain.errors import DomainError
from oms.stream.security import aiokafka_security

logger = logging.getLogger(__name__)

# A broker that does not answer a CreateTopics (one just started, or busy electing its
# controller) is asked again: 4 attempts, 1 s then 2 s then 4 s apart, each bounded by the
# admin client's request timeout. aiokafka's own 40 s made one silent broker hold a start for
# 40 s and then fail it; retried, a start takes at most about a minute before it gives up.
CREATE_ATTEMPTS = 4
CREATE_FIRST_PAUSE_S = 1.0
ADMIN_REQUEST_TIMEOUT_MS = 12_000
_ALREADY_EXISTS = TopicAlreadyExistsError.errno


class TopicsReason(StrEnum):
    """Why the topics could not be made."""

    REFUSED = "TOPIC_REFUSED"  # the broker said no (its policy, the replication factor, rights)
    NO_ANSWER = "TOPICS_NO_ANSWER"  # still missing after every attempt: timeouts, no broker


class TopicsError(DomainError):
    """The topics a replica needs are not there, and it must not start without them."""

    def __init__(self, reason: TopicsReason, message: str) -> None:
        super().__init__(message, code=reason.value)
        self.reason = reason


class TopicAdmin(Protocol):
    """What ``create_missing`` asks of Kafka's admin client (``AIOKafkaAdminClient``)."""

    async def list_topics(self) -> list[str]: ...

    async def create_topics(self, new_topics: list[NewTopic]) -> Any: ...


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
    """Create the topics that do not exist yet; return the names that were missing.

    Raises ``TopicsError``: ``REFUSED`` when the broker refuses one (nothing retried),
    ``NO_ANSWER`` when they are still missing after ``CREATE_ATTEMPTS``."""
    wanted = specs if specs is not None else topic_specs(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        request_timeout_ms=ADMIN_REQUEST_TIMEOUT_MS,
        **aiokafka_security(settings),
    )
    await admin.start()
    try:
        return await create_missing(admin, wanted, settings.topic_replication_factor)
    finally:
        await admin.close()


async def create_missing(
    admin: TopicAdmin,
    wanted: Sequence[TopicSpec],
    replication_factor: int,
    *,
    attempts: int = CREATE_ATTEMPTS,
    first_pause_s: float = CREATE_FIRST_PAUSE_S,
) -> list[str]:
    """``ensure_topics``' work on an admin client: list, create what is missing, check each
    topic's answer, and ask again while Kafka's error says that asking again may help."""
    missing: list[str] | None = None

    def retried(state: RetryCallState) -> None:
        assert state.outcome is not None  # tenacity sets both before a sleep
        assert state.next_action is not None
        logger.warning(
            "creating topics: attempt %d of %d failed (%r); again in %.1f s",
            state.attempt_number, attempts, state.outcome.exception(), state.next_action.sleep,
        )  # fmt: skip

    retrying = AsyncRetrying(
        retry=retry_if_exception(lambda error: isinstance(error, KafkaError) and error.retriable),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=first_pause_s),
        before_sleep=retried,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                existing = set(await admin.list_topics())
                todo = [spec for spec in wanted if spec.name not in existing]
                if missing is None:
                    missing = [spec.name for spec in todo]
                if todo:
                    await _create(admin, todo, replication_factor)
    except KafkaError as error:
        if not error.retriable:
            raise
        raise TopicsError(
            TopicsReason.NO_ANSWER,
            f"topics still missing after {attempts} attempts: {error!r}",
        ) from error
    return missing or []


async def _create(admin: TopicAdmin, todo: list[TopicSpec], replication_factor: int) -> None:
    """One CreateTopics; each topic's own error code is read (aiokafka returns them and raises
    none): "already exists" is another replica having been first, a retriable code is raised
    for the caller to ask again, any other is the broker's refusal."""
    response = await admin.create_topics(
        [NewTopic(spec.name, spec.partitions, replication_factor) for spec in todo]
    )
    for topic, code, *message in response.topic_errors:
        if code in (0, _ALREADY_EXISTS):
            continue
        error = for_code(code)
        detail = f"{topic}: {error.__name__} {message[0] if message else ''}".rstrip()
        if error.retriable:
            raise error(detail)
        raise TopicsError(TopicsReason.REFUSED, f"Kafka refused to create topic {detail}")


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
