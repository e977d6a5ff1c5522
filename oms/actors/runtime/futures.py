"""``DispatchFuture``: a pykka future that calls back when it resolves, and refuses to block
the thread that would have to resolve it."""

from __future__ import annotations

import logging
import queue
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pykka import Future, Timeout

if TYPE_CHECKING:
    from pykka._types import OptExcInfo

__all__ = ["DISPATCHER_THREADS", "BlockingOnDispatcher", "DispatchFuture"]

logger = logging.getLogger("oms.actors.runtime")  # the runtime's one logger

T = TypeVar("T")
M = TypeVar("M")

# Threads that run a dispatcher (``Dispatcher._run`` adds its own): a blocking get() there would
# wait for its own thread.
DISPATCHER_THREADS: set[int] = set()
# One lock for every future's completion handshake: futures are many and short-lived, and
# the handshake is a few attribute writes, so a lock per future would cost more than it saves.
_FUTURE_LOCK = threading.Lock()


class BlockingOnDispatcher(RuntimeError):
    """``get()`` on an unresolved future from the dispatcher thread: it would never resolve."""

    code = "BLOCKING_ON_DISPATCHER"


class DispatchFuture(Future[T]):
    """A pykka future that can also call back when it resolves (no thread waits for it).

    ``get()`` blocks like ``ThreadingFuture.get`` (and refuses on a dispatcher thread);
    ``add_done_callback`` is what actors and the asyncio bridge use instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self._done = False
        self._value: Any = None
        self._exc_info: OptExcInfo | None = None
        self._callbacks: list[Callable[[DispatchFuture[T]], None]] | None = None
        self._waiter: threading.Event | None = None

    def done(self) -> bool:
        """True once a value or an exception is set."""
        return self._done

    def is_lazy(self) -> bool:
        """True for pykka's lazy futures (``join``/``filter``/``stop``): only ``get`` resolves them."""
        return self._get_hook is not None

    def get(self, *, timeout: float | None = None) -> T:
        """The value (or raise the exception), waiting up to ``timeout`` seconds for it."""
        try:
            return super().get(timeout=timeout)
        except NotImplementedError:
            pass
        if not self._done:
            if threading.get_ident() in DISPATCHER_THREADS:
                raise BlockingOnDispatcher(
                    "get() on the dispatcher thread would wait forever; "
                    "use add_done_callback or a reply message",
                )
            with _FUTURE_LOCK:
                if not self._done and self._waiter is None:
                    self._waiter = threading.Event()
                waiter = self._waiter
            if waiter is not None and not waiter.wait(timeout):
                raise Timeout(f"{timeout} seconds")
        exc_info = self._exc_info
        if exc_info is not None:
            exc_type, exc_value, exc_traceback = exc_info
            assert exc_type is not None
            if exc_value is None:
                exc_value = exc_type()
            if exc_value.__traceback__ is not exc_traceback:
                raise exc_value.with_traceback(exc_traceback)
            raise exc_value
        return self._value  # type: ignore[no-any-return]

    def set(self, value: Any | None = None) -> None:
        """Resolve with ``value``; run callbacks and wake a waiter."""
        self._resolve(value, None)

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        """Resolve with an exception (``sys.exc_info()`` when none is given)."""
        self._resolve(None, exc_info if exc_info is not None else sys.exc_info())

    def set_get_hook(self, func: Callable[[float | None], T]) -> None:
        """pykka's lazy ``get`` hook (used by ``join``/``filter``/``reduce`` and ``stop``)."""
        with _FUTURE_LOCK:
            if self._done:
                raise queue.Full
            super().set_get_hook(func)

    def add_done_callback(self, fn: Callable[[DispatchFuture[T]], None]) -> None:
        """Call ``fn(self)`` once resolved: at once if it already is, else on the resolver."""
        with _FUTURE_LOCK:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = [fn]
                else:
                    self._callbacks.append(fn)
                return
        fn(self)

    def exception(self) -> BaseException | None:
        """The exception it resolved with (None if a value, or not resolved yet)."""
        return None if self._exc_info is None else self._exc_info[1]

    def map(self, func: Callable[[T], M]) -> Future[M]:
        """A future of ``func(value)`` that resolves eagerly (so it can call back too)."""
        mapped: DispatchFuture[M] = DispatchFuture()

        def relay(source: DispatchFuture[T]) -> None:
            if source._exc_info is not None:
                mapped.set_exception(source._exc_info)
                return
            try:
                mapped.set(func(source._value))
            except Exception:  # noqa: BLE001 - goes back to whoever reads the future
                mapped.set_exception()

        self.add_done_callback(relay)
        return mapped

    def _resolve(self, value: Any, exc_info: OptExcInfo | None) -> None:
        with _FUTURE_LOCK:
            if self._done or self._get_hook is not None:
                raise queue.Full
            self._value = value
            self._exc_info = exc_info
            self._done = True
            callbacks, self._callbacks = self._callbacks, None
            waiter = self._waiter
        if waiter is not None:
            waiter.set()
        if callbacks is not None:
            for callback in callbacks:
                try:
                    callback(self)
                except Exception:
                    logger.exception("future callback %r failed", callback)
