"""The dispatcher runtime keeps pykka's semantics while running many actors on one thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from oms.actors.runtime import (
    BlockingOnDispatcher,
    DispatchedActor,
    Dispatcher,
    DispatchFuture,
    tell,
)
from oms.engine.aio import reply, to_asyncio
from tests.unit.actors.runtime_actors import (
    Add,
    Boom,
    Counter,
)


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    d = Dispatcher("test-dispatcher")
    d.start()
    yield d
    d.stop()


def test_tell_then_ask_when_sent_then_handled_in_order(dispatcher: Dispatcher) -> None:
    log: list[str] = []
    ref = Counter.start(dispatcher, log)

    ref.tell(Add(1))
    ref.tell(Add(2))
    total = ref.ask(Add(3))

    assert total == 6
    assert log == ["start", "add 1", "add 2", "add 3"]


def test_on_start_when_started_then_runs_first_on_the_dispatcher_thread(
    dispatcher: Dispatcher,
) -> None:
    ref = Counter.start(dispatcher)

    assert ref.proxy().started_on.get(timeout=1) == "test-dispatcher"


def test_proxy_when_method_called_then_future_resolves(dispatcher: Dispatcher) -> None:
    ref = Counter.start(dispatcher)
    ref.tell(Add(5))

    assert ref.proxy().read_total().get(timeout=1) == 5


def test_ask_when_handler_raises_then_caller_gets_error_and_actor_lives(
    dispatcher: Dispatcher,
) -> None:
    ref = Counter.start(dispatcher)

    with pytest.raises(ValueError, match="boom"):
        ref.ask(Boom(), timeout=1)

    assert ref.is_alive()
    assert ref.ask(Add(1), timeout=1) == 1


def test_tell_when_handler_raises_then_actor_stops(dispatcher: Dispatcher) -> None:
    ref = Counter.start(dispatcher)

    ref.tell(Boom())
    dispatcher.wait_idle()

    assert not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        ref.ask(Add(1), timeout=1)


def test_bare_tell_when_sent_then_handled_in_order_on_the_dispatcher(
    dispatcher: Dispatcher,
) -> None:
    log: list[str] = []
    ref = Counter.start(dispatcher, log)

    for amount in (1, 2, 3):
        tell(ref, Add(amount))
    total = ref.ask(Add(4), timeout=1)

    assert total == 10
    assert log == ["start", "add 1", "add 2", "add 3", "add 4"]


def test_bare_tell_when_handler_raises_then_actor_stops_and_later_tells_refused(
    dispatcher: Dispatcher,
) -> None:
    log: list[str] = []
    ref = Counter.start(dispatcher, log)

    tell(ref, Boom())
    tell(ref, Add(1))  # queued behind the failure: dropped, never handled
    dispatcher.wait_idle()

    assert not ref.is_alive()
    assert "add 1" not in log
    with pytest.raises(pykka.ActorDeadError):
        tell(ref, Add(2))


def test_thread_when_started_then_is_the_dispatcher_thread() -> None:
    d = Dispatcher("named-dispatcher")
    assert d.thread is None
    d.start()
    try:
        seen: list[threading.Thread] = []
        d.call_soon(lambda: seen.append(threading.current_thread()))
        d.wait_idle()
        assert seen == [d.thread]
    finally:
        d.stop()
    assert d.thread is None


def test_stop_when_messages_queued_then_they_run_first_and_later_asks_fail(
    dispatcher: Dispatcher,
) -> None:
    log: list[str] = []
    ref = Counter.start(dispatcher, log)
    ref.tell(Add(1))

    assert ref.stop(timeout=1) is True

    assert log == ["start", "add 1", "stop"]
    assert ref.stop(timeout=1) is False
    with pytest.raises(pykka.ActorDeadError):
        ref.tell(Add(1))


def test_ask_when_queued_behind_stop_then_actor_dead_error() -> None:
    d = Dispatcher("not-started-yet")
    ref = Counter.start(d)
    stopping = ref.stop(block=False)
    late = ref.ask(Add(1), block=False)  # still alive: the stop is only queued
    d.start()
    try:
        assert stopping.get(timeout=1) is True
        with pytest.raises(pykka.ActorDeadError):
            late.get(timeout=1)
    finally:
        d.stop()


def test_get_when_called_on_dispatcher_thread_then_refused_not_deadlocked(
    dispatcher: Dispatcher,
) -> None:
    ref = Counter.start(dispatcher)
    never: DispatchFuture[int] = DispatchFuture()

    with pytest.raises(BlockingOnDispatcher):
        ref.proxy().block_on(never).get(timeout=1)


def test_map_and_callback_when_resolved_then_called_without_blocking() -> None:
    future: DispatchFuture[int] = DispatchFuture()
    seen: list[int] = []
    mapped = future.map(lambda value: value * 10)
    future.add_done_callback(lambda f: seen.append(f.get()))

    future.set(4)

    assert seen == [4]
    assert mapped.get(timeout=0) == 40


def test_get_when_not_resolved_in_time_then_timeout() -> None:
    with pytest.raises(pykka.Timeout):
        DispatchFuture[int]().get(timeout=0.01)


def test_many_actors_when_started_then_no_thread_each(dispatcher: Dispatcher) -> None:
    before = threading.active_count()

    refs = [Counter.start(dispatcher) for _ in range(2000)]
    for ref in refs:
        ref.tell(Add(1))
    totals = [ref.ask(Add(1), block=False) for ref in refs]

    assert {future.get(timeout=5) for future in totals} == {2}
    assert threading.active_count() == before


def test_registered_actor_when_started_then_in_pykka_registry(dispatcher: Dispatcher) -> None:
    class Registered(Counter):
        registered = True

    ref = Registered.start(dispatcher)
    try:
        assert ref in pykka.ActorRegistry.get_by_class(Registered)
    finally:
        ref.stop()
    assert ref not in pykka.ActorRegistry.get_all()


class Slow(DispatchedActor):
    """Answers after a pause, to show the event loop keeps running meanwhile."""

    registered = False

    def on_receive(self, message: Any) -> Any:
        time.sleep(0.2)
        return message


async def test_to_asyncio_when_actor_is_slow_then_loop_keeps_running(
    dispatcher: Dispatcher,
) -> None:
    ref = Slow.start(dispatcher)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    answer = await reply(ref.ask("pong", block=False))
    task.cancel()

    assert answer == "pong"
    assert ticks >= 5  # the loop ran ~20 ticks while the actor slept


async def test_to_asyncio_when_actor_raises_then_awaiter_gets_error(
    dispatcher: Dispatcher,
) -> None:
    ref = Counter.start(dispatcher)

    with pytest.raises(ValueError, match="boom"):
        await to_asyncio(ref.ask(Boom(), block=False))


async def test_to_asyncio_when_lazy_future_then_waits_on_executor(
    dispatcher: Dispatcher,
) -> None:
    ref = Counter.start(dispatcher)

    stopped = await to_asyncio(ref.stop(block=False))

    assert stopped is True


def test_two_waiters_for_idleness_are_both_served() -> None:
    # Arrange: the dispatcher busy while two waiters ask for idleness
    dispatcher = Dispatcher("test-idle")
    dispatcher.start()
    gate, first, second = threading.Event(), threading.Event(), threading.Event()
    try:
        dispatcher.call_soon(lambda: gate.wait(5))

        # Act
        dispatcher.when_idle(first.set)
        dispatcher.when_idle(second.set)
        gate.set()

        # Assert: each look no longer finds the other queued and looks again, for ever
        assert first.wait(5)
        assert second.wait(5)
    finally:
        dispatcher.stop()


# -- failures: an exception escaping an actor is reported, never silently swallowed ---------


class Refused(Exception):
    """A refusal the dispatcher under test treats as the domain's (handed back, no failure)."""


class Refuse:
    """Raise a refusal inside the handler."""


class Strict(Counter):
    """A counter that also refuses."""

    handlers = {**Counter.handlers, Refuse: "on_refuse"}

    def on_refuse(self, _message: Refuse) -> None:
        raise Refused("no")


@pytest.fixture
def strict() -> Iterator[Dispatcher]:
    d = Dispatcher("test-strict", refusal=lambda error: isinstance(error, Refused))
    d.start()
    yield d
    d.stop()


def test_tell_when_the_handler_raises_then_the_dispatcher_reports_a_failure(
    strict: Dispatcher,
) -> None:
    seen: list[str] = []
    strict.on_failure(lambda failure: seen.append(failure.where))
    ref = Strict.start(strict)

    ref.tell(Boom())
    strict.wait_idle(5)

    assert strict.failure is not None
    assert isinstance(strict.failure.error, ValueError)
    assert len(seen) == 1
    assert "(tell)" in seen[0]
    assert not ref.is_alive()


def test_ask_when_the_handler_refuses_then_the_caller_gets_it_and_nothing_failed(
    strict: Dispatcher,
) -> None:
    ref = Strict.start(strict)

    with pytest.raises(Refused):
        ref.ask(Refuse(), timeout=5)

    assert strict.failure is None
    assert ref.ask(Add(2), timeout=5) == 2


def test_ask_when_the_handler_raises_a_bug_then_the_caller_gets_it_and_a_failure_is_reported(
    strict: Dispatcher,
) -> None:
    ref = Strict.start(strict)

    with pytest.raises(ValueError, match="boom"):
        ref.ask(Boom(), timeout=5)

    assert strict.failure is not None
    assert "(ask)" in strict.failure.where


def test_drain_hook_when_it_raises_then_a_failure_is_reported_and_the_loop_goes_on(
    strict: Dispatcher,
) -> None:
    def broken() -> None:
        raise RuntimeError("flush failed")

    strict.add_drain_hook(broken)
    ref = Strict.start(strict)

    assert ref.ask(Add(1), timeout=5) == 1
    strict.wait_idle(5)

    assert strict.failure is not None
    assert "drain hook" in strict.failure.where
    assert ref.ask(Add(1), timeout=5) == 2


def test_call_when_it_raises_then_a_failure_is_reported_and_the_loop_goes_on(
    strict: Dispatcher,
) -> None:
    def broken() -> None:
        raise RuntimeError("call failed")

    strict.call_soon(broken)
    ref = Strict.start(strict)

    assert ref.ask(Add(3), timeout=5) == 3
    assert strict.failure is not None
    assert "call" in strict.failure.where


def test_when_idle_when_work_is_held_then_waits_for_its_release(dispatcher: Dispatcher) -> None:
    # Arrange: work outside the queue (a load) that will post more when it is done
    idle, posted = threading.Event(), threading.Event()
    dispatcher.call_soon(dispatcher.hold)
    dispatcher.wait_idle(holds=False)

    # Act
    dispatcher.when_idle(idle.set)

    # Assert: the queue is empty, yet not idle while held; idle once released
    assert not idle.wait(0.2)
    dispatcher.call_soon(posted.set)
    dispatcher.call_soon(dispatcher.release)
    assert idle.wait(5)
    assert posted.is_set()
    assert dispatcher.holds == 0


def test_when_idle_when_asked_not_to_wait_for_holds_then_answered_while_held(
    dispatcher: Dispatcher,
) -> None:
    # Arrange
    held_waiter, plain = threading.Event(), threading.Event()
    dispatcher.call_soon(dispatcher.hold)
    dispatcher.when_idle(held_waiter.set)

    # Act
    dispatcher.when_idle(plain.set, holds=False)

    # Assert: only the waiter that counts holds waits; both served once released
    assert plain.wait(5)
    assert not held_waiter.is_set()
    dispatcher.call_soon(dispatcher.release)
    assert held_waiter.wait(5)


def test_wait_idle_when_held_then_times_out_with_timeout(dispatcher: Dispatcher) -> None:
    # Arrange
    dispatcher.call_soon(dispatcher.hold)

    # Act / Assert
    with pytest.raises(pykka.Timeout):
        dispatcher.wait_idle(0.2)
    dispatcher.call_soon(dispatcher.release)
    dispatcher.wait_idle(5)
