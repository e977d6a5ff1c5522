"""Actor replies in asyncio without blocking the event loop (the async ``Engine``'s bridge).

pykka's ``Future.__await__`` calls ``get()``, which blocks the awaiting thread: inside an event
loop that stalls every other coroutine until the actor answers. ``to_asyncio`` instead resolves
an ``asyncio.Future`` from the thread that resolves the actor's future, through
``loop.call_soon_threadsafe``, so the loop never waits on a lock. When that thread is the
loop's own (the engine's dispatcher runs in turns of the serving loop, ``OMS_ENGINE_LOOP=service``)
the asyncio future is resolved in place: no thread-safe hand-off, whose self-pipe write would
wake a loop that is already awake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from pykka import Future

from oms.actors.runtime import DispatchFuture

__all__ = ["reply", "to_asyncio"]

T = TypeVar("T")
Translate = Callable[[BaseException], BaseException]


def to_asyncio(
    future: Future[T],
    loop: asyncio.AbstractEventLoop | None = None,
    translate: Translate | None = None,
) -> asyncio.Future[T]:
    """An asyncio future that resolves when ``future`` does, without blocking ``loop``.

    A ``DispatchFuture`` calls back on the thread that resolves it; any other pykka future (a
    ``ThreadingFuture``, or a lazy one from ``join``/``filter``) is waited for on the loop's
    default executor instead: a worker thread blocks, the loop does not. ``translate`` (if
    given) turns the error ``future`` fails with into the one the awaiter gets.
    """
    loop = loop or asyncio.get_running_loop()
    if not isinstance(future, DispatchFuture) or future.is_lazy():
        if translate is None:
            return loop.run_in_executor(None, future.get)
        return loop.run_in_executor(None, _get_translated, future, translate)
    result: asyncio.Future[T] = loop.create_future()

    def resolved(source: DispatchFuture[T]) -> None:
        if asyncio._get_running_loop() is loop:  # resolved in a turn of the loop itself
            _transfer(source, result, translate)
        else:
            loop.call_soon_threadsafe(_transfer, source, result, translate)

    future.add_done_callback(resolved)
    return result


async def reply(future: Future[T]) -> T:
    """Await an actor's reply from a coroutine: ``order = await reply(core.place_order(cmd))``.

    For tests and ``oms.engine`` itself: the layers above hold the async ``Engine``, which
    answers values (import-linter keeps this module from them).
    """
    return await to_asyncio(future)


def _get_translated(future: Future[T], translate: Translate) -> T:
    try:
        return future.get()
    except Exception as error:
        raise translate(error) from error


def _transfer(
    source: DispatchFuture[Any], target: asyncio.Future[Any], translate: Translate | None
) -> None:
    if target.cancelled():
        return
    error = source.exception()
    if error is not None:
        target.set_exception(error if translate is None else translate(error))
    else:
        target.set_result(source.get())
