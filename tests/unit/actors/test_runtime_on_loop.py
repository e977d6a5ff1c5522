"""The dispatcher drained in turns of an asyncio loop (``Dispatcher.start(loop)``): the same
pykka semantics as on a thread of its own, on the loop's thread.

Invariants, in plain words: an actor's messages are handled in the order they were sent and
one at a time, whoever sent them (the loop or another thread); the loop runs its other work
between two turns; nothing on the loop may block on the dispatcher (a ``get()`` there is
refused, not a deadlock); a stop runs what was queued first, from the loop or from a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pykka import ActorRef

from oms.actors.runtime import BlockingOnDispatcher, Dispatcher, tell
from oms.engine.aio import reply
from tests.unit.actors.runtime_actors import Add, Counter

DRAIN_EVERY = 10


@pytest.fixture
async def on_loop() -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher("on-loop", drain_every=DRAIN_EVERY)
    dispatcher.start(asyncio.get_running_loop())
    yield dispatcher
    dispatcher.stop()


async def test_tell_then_ask_when_on_the_loop_then_handled_in_order_on_the_loop_thread(
    on_loop: Dispatcher,
) -> None:
    log: list[str] = []
    ref = Counter.start(on_loop, log)

    ref.tell(Add(1))
    ref.tell(Add(2))
    total = await reply(ref.ask(Add(3), block=False))
    started_on = await reply(ref.proxy().started_on)

    assert total == 6
    assert log == ["start", "add 1", "add 2", "add 3"]
    assert started_on == threading.current_thread().name
    assert on_loop.on_thread()


async def test_tell_when_sent_from_another_thread_then_a_turn_of_the_loop_handles_it(
    on_loop: Dispatcher,
) -> None:
    ref = Counter.start(on_loop)

    await asyncio.to_thread(lambda: [ref.tell(Add(amount)) for amount in (5, 6)])
    total = await reply(ref.proxy().read_total())

    assert total == 11


async def _logged(log: list[str], line: str) -> bool:
    """Whether ``line`` shows up in ``log`` within a second, nothing else posted meanwhile."""
    for _ in range(100):
        if line in log:
            return True
        await asyncio.sleep(0.01)
    return False


async def _counter_at_rest(dispatcher: Dispatcher) -> tuple[ActorRef[Any], list[str]]:
    """A counter on ``dispatcher`` and its log, once the dispatcher has gone idle after it."""
    log: list[str] = []
    ref = Counter.start(dispatcher, log)
    await reply(ref.proxy().read_total())
    return ref, log


async def test_bare_tell_when_the_dispatcher_is_idle_then_a_turn_of_the_loop_handles_it(
    on_loop: Dispatcher,
) -> None:
    # The store answers a load with a bare tell, on the loop or on a thread of its own, to an
    # engine with nothing else to do: nothing else will come along to schedule a turn.
    ref, log = await _counter_at_rest(on_loop)

    tell(ref, Add(5))
    on_the_loop = await _logged(log, "add 5")
    await asyncio.to_thread(tell, ref, Add(6))
    from_a_thread = await _logged(log, "add 6")

    assert on_the_loop
    assert from_a_thread


async def test_turn_when_more_than_drain_every_queued_then_the_loop_runs_between_turns(
    on_loop: Dispatcher,
) -> None:
    drains: list[bool] = []
    on_loop.add_drain_hook(lambda: drains.append(False), under_load=lambda: drains.append(True))
    ref, log = await _counter_at_rest(on_loop)
    drains.clear()
    seen_by_the_loop: list[int] = []

    for _ in range(10 * DRAIN_EVERY):
        ref.tell(Add(1))
    # Queued behind the first turn: the loop runs it before the turns that follow.
    asyncio.get_running_loop().call_soon(lambda: seen_by_the_loop.append(log.count("add 1")))
    total = await reply(ref.proxy().read_total())

    assert seen_by_the_loop == [DRAIN_EVERY]
    assert total == 10 * DRAIN_EVERY
    assert drains.count(True) >= 9  # a drain under load after each full turn
    assert drains[-1] is False  # and the dry one once the queue ran out


async def test_get_when_called_on_the_loop_then_refused_not_deadlocked(
    on_loop: Dispatcher,
) -> None:
    ref = Counter.start(on_loop)
    pending = ref.ask(Add(1), block=False)

    with pytest.raises(BlockingOnDispatcher):
        pending.get(timeout=1)
    assert await reply(pending) == 1


ADDS = [f"add {amount}" for amount in range(3 * DRAIN_EVERY)]


def _loaded_on_this_loop() -> tuple[Dispatcher, list[str]]:
    """A dispatcher on the running loop with three turns' worth of messages queued."""
    dispatcher = Dispatcher("on-loop", drain_every=DRAIN_EVERY)
    dispatcher.start(asyncio.get_running_loop())
    log: list[str] = []
    ref = Counter.start(dispatcher, log)
    for amount in range(3 * DRAIN_EVERY):
        ref.tell(Add(amount))
    return dispatcher, log


async def test_stop_when_called_from_a_worker_thread_then_what_was_queued_runs_first() -> None:
    dispatcher, log = _loaded_on_this_loop()

    await asyncio.to_thread(dispatcher.stop)

    assert log[1:] == ADDS
    assert not dispatcher.is_running


async def test_stop_when_called_on_the_loop_then_what_was_queued_runs_first() -> None:
    dispatcher, log = _loaded_on_this_loop()

    dispatcher.stop()
    await asyncio.sleep(0.01)  # turns scheduled before the stop find nothing to do

    assert log[1:] == ADDS
    assert not dispatcher.is_running


async def test_wait_idle_when_called_on_the_loop_then_its_turns_run_there(
    on_loop: Dispatcher,
) -> None:
    log: list[str] = []
    ref = Counter.start(on_loop, log)
    for _ in range(3 * DRAIN_EVERY):
        ref.tell(Add(1))

    on_loop.wait_idle(holds=False)

    assert log.count("add 1") == 3 * DRAIN_EVERY


async def test_wait_idle_when_work_is_held_on_the_loop_then_refused(on_loop: Dispatcher) -> None:
    on_loop.hold()

    with pytest.raises(BlockingOnDispatcher):
        on_loop.wait_idle()
    on_loop.release()


async def test_reply_when_resolved_in_a_turn_of_the_loop_then_no_thread_safe_hand_off(
    on_loop: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: count what reaches the loop through its thread-safe door
    loop = asyncio.get_running_loop()
    handed_off: list[object] = []
    thread_safe = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
        handed_off.append(callback)
        return thread_safe(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    ref = Counter.start(on_loop)

    # Act
    total = await reply(ref.ask(Add(7), block=False))

    # Assert: the answer came in the loop's own turn, resolved in place
    assert total == 7
    assert handed_off == []
