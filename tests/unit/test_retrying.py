import pytest

from oms.retrying import backoff_s, retry_until_done


async def test_retry_when_a_step_fails_twice_then_it_returns_and_each_failure_is_reported() -> None:
    # Arrange
    calls: list[int] = []
    failures: list[tuple[str, int, float]] = []

    async def step() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "done"

    # Act
    result = await retry_until_done(
        step,
        retry_on=ConnectionError,
        initial_s=0.001,
        max_s=0.002,
        on_failure=lambda e, attempt, delay: failures.append((str(e), attempt, delay)),
    )

    # Assert
    assert result == "done"
    assert failures == [("down", 0, 0.001), ("down", 1, 0.002)]


async def test_retry_when_the_error_is_not_retried_then_it_propagates_at_once() -> None:
    # Arrange
    async def step() -> None:
        raise KeyError("bug")

    # Act / Assert
    with pytest.raises(KeyError):
        await retry_until_done(
            step, retry_on=ConnectionError, initial_s=0.001, max_s=0.002, on_failure=print
        )


async def test_backoff_when_failures_repeat_then_pauses_match_the_retry_loops() -> None:
    # Arrange
    pauses: list[float] = []
    calls: list[int] = []

    async def step() -> None:
        calls.append(1)
        if len(calls) <= 8:
            raise ConnectionError("down")

    await retry_until_done(
        step,
        retry_on=ConnectionError,
        initial_s=0.0001,
        max_s=0.004,
        on_failure=lambda _e, _attempt, pause: pauses.append(pause),
    )

    # Act
    computed = [backoff_s(n, initial_s=0.0001, max_s=0.004) for n in range(1, 9)]

    # Assert
    assert computed == pytest.approx(pauses)
    assert computed[-1] == 0.004
