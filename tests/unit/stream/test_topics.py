"""Every topic of the design exists once, with its partition count from the settings; creating
them reads each topic's answer and asks again while Kafka says asking again may help."""

from __future__ import annotations

import pytest
from aiokafka.admin import NewTopic
from aiokafka.errors import (
    InvalidReplicationFactorError,
    KafkaConnectionError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
)

from oms.config import Settings
from oms.stream.topics import (
    TopicsError,
    TopicSpec,
    TopicsReason,
    create_missing,
    dead_letter,
    topic_specs,
)


def test_topic_specs_when_built_then_cover_the_design_and_a_dead_letter_topic_per_source() -> None:
    names = [spec.name for spec in topic_specs(Settings())]

    assert names == [
        "orders", "executions", "prices", "order-events", "risk-events",
        "orders.dlq", "executions.dlq", "prices.dlq",
    ]  # fmt: skip


def test_topic_specs_when_settings_set_partitions_then_use_them() -> None:
    settings = Settings(orders_partitions=24)

    by_name = {spec.name: spec for spec in topic_specs(settings)}

    assert by_name["orders"].partitions == 24
    assert by_name[dead_letter("orders")].partitions == 24


class _Answer:
    """A CreateTopics response: (topic, error code, error message) per topic."""

    def __init__(self, *topic_errors: tuple[str, int, str]) -> None:
        self.topic_errors = list(topic_errors)


class _Admin:
    """Kafka's admin client as ``create_missing`` sees it: a list of topics, and per call of
    CreateTopics the next scripted outcome (an error raised, or a code per topic)."""

    def __init__(self, existing: set[str], outcomes: list[Exception | int]) -> None:
        self.existing = existing
        self.outcomes = outcomes
        self.creates: list[list[str]] = []

    async def list_topics(self) -> list[str]:
        return sorted(self.existing)

    async def create_topics(self, new_topics: list[NewTopic]) -> _Answer:
        names = [topic.name for topic in new_topics]
        self.creates.append(names)
        outcome = self.outcomes.pop(0) if self.outcomes else 0
        if isinstance(outcome, Exception):
            raise outcome
        if outcome in (0, RequestTimedOutError.errno):  # timed out: made all the same, later
            self.existing |= set(names)
        return _Answer(*((name, outcome, "") for name in names))


SPECS = (TopicSpec("orders", 2, "account_id"), TopicSpec("prices", 1, "symbol"))


async def test_create_missing_when_some_exist_then_only_the_missing_are_created() -> None:
    admin = _Admin({"prices"}, [0])

    created = await create_missing(admin, SPECS, 1, first_pause_s=0)

    assert created == ["orders"]
    assert admin.creates == [["orders"]]


async def test_create_missing_when_the_broker_does_not_answer_once_then_asked_again() -> None:
    admin = _Admin(set(), [RequestTimedOutError("no answer"), 0])

    created = await create_missing(admin, SPECS, 1, first_pause_s=0)

    assert created == ["orders", "prices"]
    assert admin.creates == [["orders", "prices"], ["orders", "prices"]]
    assert admin.existing == {"orders", "prices"}


async def test_create_missing_when_a_topic_answers_timed_out_then_the_next_list_finds_it() -> None:
    admin = _Admin(set(), [RequestTimedOutError.errno])

    created = await create_missing(admin, SPECS, 1, first_pause_s=0)

    assert created == ["orders", "prices"]
    assert len(admin.creates) == 1  # the second attempt lists them and creates nothing


async def test_create_missing_when_another_replica_was_first_then_already_exists_is_fine() -> None:
    admin = _Admin(set(), [TopicAlreadyExistsError.errno])

    created = await create_missing(admin, SPECS, 1, first_pause_s=0)

    assert created == ["orders", "prices"]


async def test_create_missing_when_the_broker_refuses_then_topics_error_refused() -> None:
    admin = _Admin(set(), [InvalidReplicationFactorError.errno])

    with pytest.raises(TopicsError) as raised:
        await create_missing(admin, SPECS, 3, first_pause_s=0)

    assert raised.value.reason is TopicsReason.REFUSED
    assert raised.value.code == "TOPIC_REFUSED"
    assert len(admin.creates) == 1  # a refusal is not asked again


async def test_create_missing_when_never_answered_then_topics_error_no_answer() -> None:
    admin = _Admin(set(), [KafkaConnectionError("gone")] * 3)

    with pytest.raises(TopicsError) as raised:
        await create_missing(admin, SPECS, 1, attempts=3, first_pause_s=0)

    assert raised.value.reason is TopicsReason.NO_ANSWER
    assert len(admin.creates) == 3
