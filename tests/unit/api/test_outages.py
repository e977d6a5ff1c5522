"""An outage of a dependency is logged twice (it starts; it ends, with a count), and a bounded
call to it (alone, or among a request's waits under one timer) turns a failure or a timeout into
a 503 naming it."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.exceptions as redis_errors
from aiokafka.errors import KafkaConnectionError
from pymongo.errors import ServerSelectionTimeoutError

from oms.api.outages import Dependency, Outages, Waits, failed_dependency
from oms.api.problems import DependencyUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "oms.api.outages"]


def test_failed_when_a_thousand_calls_fail_then_one_line_and_one_when_it_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Arrange
    clock = Clock()
    outages = Outages(clock)
    caplog.set_level(logging.INFO, "oms.api.outages")

    # Act
    for _ in range(1000):
        outages.failed(Dependency.REDIS, "Connection refused")
        clock.now += 0.01
    down = outages.is_down(Dependency.REDIS)
    outages.answered(Dependency.REDIS)
    outages.answered(Dependency.REDIS)  # no outage any more: nothing to say

    # Assert
    lines = _lines(caplog)
    assert down
    assert not outages.is_down(Dependency.REDIS)
    assert len(lines) == 2
    assert lines[0].startswith("redis unavailable: Connection refused")
    assert "after 10.0 s; 1000 call(s) failed" in lines[1]


def test_failed_when_nothing_reports_answers_then_a_quiet_gap_ends_the_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Arrange
    clock = Clock()
    outages = Outages(clock, quiet_s=30.0)
    caplog.set_level(logging.INFO, "oms.api.outages")

    # Act: two failures, a long quiet, one more failure
    outages.failed(Dependency.MONGODB, "down")
    outages.failed(Dependency.MONGODB, "down")
    clock.now += 31.0
    outages.failed(Dependency.MONGODB, "down again")

    # Assert: the first outage ended with its count, a second one started
    lines = _lines(caplog)
    assert len(lines) == 3
    assert "2 call(s) failed" in lines[1]
    assert lines[2].startswith("mongodb unavailable: down again")


@pytest.mark.parametrize(
    ("error", "dependency"),
    [
        (redis_errors.ConnectionError("refused"), Dependency.REDIS),
        (redis_errors.TimeoutError("slow"), Dependency.REDIS),
        (redis_errors.BusyLoadingError("loading"), Dependency.REDIS),
        (redis_errors.ReadOnlyError("replica"), Dependency.REDIS),
        (KafkaConnectionError("no broker"), Dependency.KAFKA),
        (ServerSelectionTimeoutError("no server"), Dependency.MONGODB),
        (redis_errors.ResponseError("a script's bug"), None),
        (ValueError("a bug"), None),
    ],
)
def test_failed_dependency_when_an_error_is_raised_then_names_what_is_unreachable(
    error: Exception, dependency: Dependency | None
) -> None:
    assert failed_dependency(error) is dependency


async def test_guard_when_the_call_hangs_then_503_within_the_bound() -> None:
    # Arrange
    outages = Outages()
    never = asyncio.Event()

    # Act
    started = asyncio.get_running_loop().time()
    with pytest.raises(DependencyUnavailable) as refused:
        await outages.guard(Dependency.KAFKA, never.wait(), 0.1, retry_after_s=3)
    waited = asyncio.get_running_loop().time() - started

    # Assert
    assert waited < 0.5
    assert refused.value.status == 503
    assert refused.value.code == "DEPENDENCY_UNAVAILABLE"
    assert refused.value.dependency == "kafka"
    assert refused.value.response().headers["Retry-After"] == "3"
    assert outages.is_down(Dependency.KAFKA)


async def test_guard_when_the_call_raises_a_bug_then_it_passes_through() -> None:
    async def buggy() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await Outages().guard(Dependency.REDIS, buggy(), 1.0, retry_after_s=1)


async def test_guard_when_the_call_succeeds_then_the_outage_ends() -> None:
    # Arrange
    outages = Outages()
    outages.failed(Dependency.REDIS, "down")

    async def fine() -> int:
        return 7

    # Act
    result = await outages.guard(Dependency.REDIS, fine(), 1.0, retry_after_s=1)

    # Assert
    assert result == 7
    assert not outages.is_down(Dependency.REDIS)


async def test_waits_when_the_deadline_passes_then_503_names_the_dependency_awaited() -> None:
    # Arrange: one timer for two waits; Redis answers, Kafka never does
    outages = Outages()
    never = asyncio.Event()

    async def fine() -> int:
        return 1

    async def place() -> None:
        async with Waits(outages, 0.1, retry_after_s=2) as waits:
            await waits.wait(Dependency.REDIS, fine())
            await waits.wait(Dependency.KAFKA, never.wait())

    # Act
    started = asyncio.get_running_loop().time()
    with pytest.raises(DependencyUnavailable) as refused:
        await place()
    waited = asyncio.get_running_loop().time() - started

    # Assert
    assert waited < 0.5
    assert refused.value.dependency == "kafka"
    assert refused.value.response().headers["Retry-After"] == "2"
    assert outages.is_down(Dependency.KAFKA)
    assert not outages.is_down(Dependency.REDIS)


async def test_waits_when_a_dependency_refuses_then_503_names_it_at_once() -> None:
    # Arrange
    outages = Outages()

    async def refused_connection() -> None:
        raise redis_errors.ConnectionError("Connection refused")

    async def claim() -> None:
        async with Waits(outages, 5.0, retry_after_s=1) as waits:
            await waits.wait(Dependency.REDIS, refused_connection())

    # Act
    with pytest.raises(DependencyUnavailable) as refused:
        await claim()

    # Assert
    assert refused.value.dependency == "redis"
    assert outages.is_down(Dependency.REDIS)
