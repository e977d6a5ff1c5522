"""The process's speed levers: the event loop every thread makes, and the GIL's switch interval."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest
import uvloop

from oms.config import Settings
from oms.process_levers import describe_levers, set_process_levers


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    """Put the process back as it was: these levers are global."""
    policy, interval = asyncio.get_event_loop_policy(), sys.getswitchinterval()
    yield
    asyncio.set_event_loop_policy(policy)
    sys.setswitchinterval(interval)


def test_set_when_uvloop_is_chosen_then_every_new_loop_is_uvloop() -> None:
    set_process_levers(Settings(event_loop="uvloop"))

    loop = asyncio.new_event_loop()  # as the store's thread makes its own
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_set_when_asyncio_is_chosen_then_loops_are_the_standard_ones() -> None:
    set_process_levers(Settings(event_loop="asyncio"))

    loop = asyncio.new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_set_when_a_switch_interval_is_given_then_the_gil_switches_that_often() -> None:
    set_process_levers(Settings(gil_switch_interval_s=0.002))

    assert sys.getswitchinterval() == pytest.approx(0.002)


def test_set_when_the_switch_interval_is_0_then_python_keeps_its_own() -> None:
    sys.setswitchinterval(0.005)

    set_process_levers(Settings(gil_switch_interval_s=0.0))

    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_describe_when_serving_then_names_the_running_loop_and_each_lever() -> None:
    set_process_levers(Settings(event_loop="uvloop", orders_linger_ms=3))

    async def described() -> str:
        return describe_levers(Settings(orders_linger_ms=3))

    line = asyncio.run(described())

    assert "event_loop=uvloop" in line
    assert "orders_linger_ms=3" in line
    assert "ingest_fetch_max_wait_ms=10" in line
    assert "ingest_commit_interval_ms=100" in line
    assert "store_loop=service" in line
