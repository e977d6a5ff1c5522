"""The ``Dispatcher``: one thread draining one FIFO of (actor, message) pairs for every actor
bound to it, with the drain hooks (the unit of work), idleness and holds, and its failures.

The thread is either one of its own or an asyncio loop's (``start(loop)``): there the queue is
drained in turns of the loop, at most ``drain_every`` messages a turn, so the loop's I/O runs
between turns. A process whose loop hands the engine every batch saves a wake-up and a GIL
hand-off each way that way; nothing on that loop may then block on the engine (``get()``
refuses there, as on any dispatcher thread).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from pykka import Timeout

from oms.actors.runtime.failures import ActorFailure, Failures
from oms.actors.runtime.futures import DISPATCHER_THREADS, BlockingOnDispatcher

__all__ = ["Dispatcher"]


class _Call:
    """A plain function queued to run on the dispatcher thread (not an actor message)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn


class Dispatcher:
    """One thread draining one FIFO of (actor, message) pairs for every actor bound to it."""

    def __init__(
        self,
        name: str = "oms-dispatcher",
        *,
        drain_every: int = 256,
        refusal: Callable[[Exception], bool] | None = None,
    ) -> None:
        """``drain_every``: messages between two runs of the drain hooks under steady load;
        ``refusal``: which errors an ask may hand back to its caller without being a failure
        (the domain's refusals); any other exception that escapes an actor is an
        ``ActorFailure``."""
        self.name = name
        self.refusal = refusal
        self._failures = Failures()
        self._queue: deque[tuple[Any, Any]] = deque()
        self._wake = threading.Event()
        self._idle = False
        self._stopping = False
        self._drain_every = drain_every
        # (when the queue runs dry, every drain_every messages under load)
        self._drain_hooks: list[tuple[Callable[[], None], Callable[[], None]]] = []
        # ``when_idle`` callbacks (each with "does it wait for holds?"), and whether the one
        # look that serves them all is queued.
        self._idle_callbacks: list[tuple[Callable[[], None], bool]] = []
        self._idle_lock = threading.Lock()
        self._idle_look_queued = False
        self._holds = 0  # outstanding work outside the queue that will post more (see hold)
        self._thread: threading.Thread | None = None
        # On a loop (start(loop)): the loop, and how a post wakes a turn of it.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: threading.Event | None = None
        self.handled = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the dispatcher thread (idempotent), or with ``loop`` drain on that running
        loop's thread instead (call it there)."""
        if self._thread is not None:
            return
        if loop is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
            return
        self._thread = threading.current_thread()
        self._loop = loop
        self._stopped = threading.Event()
        DISPATCHER_THREADS.add(threading.get_ident())
        self._idle = True  # on a loop: no turn scheduled
        if self._queue:
            self._idle = False
            loop.call_soon(self._turn)

    def stop(self, timeout: float | None = 10.0) -> None:
        """Run what is already queued, then end the thread (on a loop: its turns)."""
        if self._thread is None:
            return
        self.call_soon(self._request_stop)
        if self._loop is not None and self._stopped is not None:
            if self.on_thread():
                while not self._stopped.is_set():  # nothing else runs the queue meanwhile
                    self._turn()
            elif not self._stopped.wait(timeout):
                raise Timeout(f"dispatcher {self.name} not stopped after {timeout} s")
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    @property
    def thread(self) -> threading.Thread | None:
        """The dispatcher thread (None before ``start`` and after ``stop``): for measuring it."""
        return self._thread

    @property
    def is_running(self) -> bool:
        """True while the dispatcher thread is alive (on a loop: until its stop has run)."""
        if self._stopped is not None:
            return self._thread is not None and not self._stopped.is_set()
        return self._thread is not None and self._thread.is_alive()

    def on_thread(self) -> bool:
        """True when called from this dispatcher's own thread."""
        return self._thread is threading.current_thread()

    # -- failures --------------------------------------------------------------------------

    @property
    def failure(self) -> ActorFailure | None:
        """The first ``ActorFailure`` (None: none yet); the dispatcher runs on after it."""
        return self._failures.first

    def on_failure(self, hook: Callable[[ActorFailure], None]) -> None:
        """Call ``hook(failure)`` on the failing thread for every ``ActorFailure``.

        The dispatcher itself keeps running (other actors' turns are still answered, so that
        a clean shutdown can proceed), but the owner decides what a failure means; the engine
        treats the first one as the end of the replica's trustworthy state.
        """
        self._failures.on_failure(hook)

    def report_failure(self, where: str, error: BaseException) -> None:
        """Record ``error`` as an ``ActorFailure`` and tell the hooks."""
        self._failures.report(where, error)

    # -- posting ---------------------------------------------------------------------------

    def post(self, actor: Any, item: Any) -> None:
        """Queue ``item`` (an envelope or a marker) for ``actor``; safe from any thread."""
        self._queue.append((actor, item))
        # Lost-wakeup safe: the loop sets _idle before its last look at the queue.
        if self._idle:
            self.wake()

    def wake(self) -> None:
        """What ``post`` does when it finds the dispatcher idle, for those who append to the
        queue themselves (``pykka_bridge.tell``): wake the thread, or schedule a turn."""
        self._idle = False
        loop = self._loop
        if loop is None:
            self._wake.set()
        elif self._thread is threading.current_thread():
            loop.call_soon(self._turn)
        elif self._stopped is not None and not self._stopped.is_set():
            loop.call_soon_threadsafe(self._turn)

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the dispatcher thread after what is already queued."""
        self.post(None, _Call(fn))

    def add_drain_hook(
        self, hook: Callable[[], None], *, under_load: Callable[[], None] | None = None
    ) -> None:
        """Run ``hook`` on the dispatcher whenever the queue runs dry, and ``under_load`` (default:
        ``hook``) every ``drain_every`` messages while it does not.

        This is the unit-of-work boundary: what the handled messages produced is written and
        published here in one batch instead of once per message.
        """
        self._drain_hooks.append((hook, under_load or hook))

    def when_idle(self, callback: Callable[[], None], *, holds: bool = True) -> None:
        """Call ``callback`` on the dispatcher once nothing is queued, the drain hooks ran and
        (unless ``holds`` is False) nothing is held (see ``hold``).

        What a message posts while it runs queues behind this look, so the callback waits for
        it too: every consequence of what was posted before this call has run by then. All the
        waiters share one look: two would each find the other queued and look again behind it,
        for ever.
        """
        with self._idle_lock:
            self._idle_callbacks.append((callback, holds))
            if self._idle_look_queued:
                return
            self._idle_look_queued = True
        self.call_soon(self._look_idle)

    def hold(self) -> None:
        """Count one piece of outstanding work outside the queue (an actor waits for I/O done
        elsewhere, and its answer will come back as a message): not idle until ``release``.

        Without it an actor waiting for a load would look idle, and what waits for idleness
        (the ingestion's offset commit) would pass a command that has not been applied yet.
        """
        with self._idle_lock:
            self._holds += 1

    def release(self) -> None:
        """The work ``hold`` counted is done (what it posted is queued already)."""
        with self._idle_lock:
            self._holds -= 1
            look = not self._holds and bool(self._idle_callbacks) and not self._idle_look_queued
            if look:
                self._idle_look_queued = True
        if look:
            self.call_soon(self._look_idle)

    @property
    def holds(self) -> int:
        """How many pieces of outstanding work are held (see ``hold``)."""
        return self._holds

    def _look_idle(self) -> None:
        with self._idle_lock:
            waiting = len(self._idle_callbacks)  # whose work was posted before this look
        if self._queue:
            # More work arrived: look again behind it. No drain here: a full drain with orders
            # midway would write each of them twice (the loop drains when dry).
            self.call_soon(self._look_idle)
            return
        self._drain()
        with self._idle_lock:
            looked = self._idle_callbacks[:waiting]
            held = self._holds > 0
            # While something is held, those who wait for holds stay: release() looks again.
            kept = [entry for entry in looked if held and entry[1]]
            ready = [callback for callback, waits in looked if not (held and waits)]
            self._idle_callbacks[:waiting] = kept
            again = len(self._idle_callbacks) > len(kept)  # came after the look: one of their own
            self._idle_look_queued = again
        if again:
            self.call_soon(self._look_idle)
        for callback in ready:
            callback()

    def wait_idle(self, timeout: float | None = 30.0, *, holds: bool = True) -> None:
        """Block until nothing is queued, the drain hooks have run and (unless ``holds`` is
        False) nothing is held (tests, benchmarks and stopping)."""
        if self.on_thread():
            if self._loop is None:
                raise BlockingOnDispatcher("wait_idle() on the dispatcher thread")
            self._run_until_idle(holds=holds)
            return
        done = threading.Event()
        self.when_idle(done.set, holds=holds)
        if not done.wait(timeout):
            raise Timeout(f"dispatcher not idle after {timeout} s")

    def _run_until_idle(self, *, holds: bool) -> None:
        """``wait_idle`` on the loop that drains this dispatcher: its turns run here, since the
        loop cannot run them while this waits."""
        idle: list[bool] = []
        self.when_idle(lambda: idle.append(True), holds=holds)
        while not idle:
            if not self._queue:
                # Only a hold is left, and what it waits for needs this very loop.
                raise BlockingOnDispatcher("wait_idle() on the loop while work is held")
            self._turn()

    # -- the loop --------------------------------------------------------------------------

    def _request_stop(self) -> None:
        self._stopping = True

    def _drain(self, *, under_load: bool = False) -> None:
        for dry, loaded in self._drain_hooks:
            hook = loaded if under_load else dry
            try:
                hook()
            except Exception as error:  # noqa: BLE001 - reported: what it held may be lost
                self.report_failure(f"drain hook {hook!r}", error)

    def _sleep_until_posted(self) -> None:
        """Wait (the queue looked empty) until something is posted."""
        if self._queue:
            return
        self._wake.clear()
        self._idle = True
        if self._queue:  # posted between our look and _idle: don't sleep on it
            self._idle = False
            return
        self._wake.wait()

    def _handle_some(self, limit: int) -> bool:
        """Handle up to ``limit`` queued messages; True when the queue ran dry first (or a
        stop was asked for: ``_stopping``)."""
        popleft = self._queue.popleft
        for _ in range(limit):
            try:
                actor, item = popleft()
            except IndexError:
                return True
            if actor is None:
                try:
                    item.fn()
                except Exception as error:  # noqa: BLE001 - reported; the loop must go on
                    self.report_failure(f"call {item.fn!r}", error)
                # Only a queued call (stop()'s) sets _stopping: look after calls, not after
                # every actor message.
                if self._stopping:
                    return True
            else:
                # The hot path of _dispatch, inlined (a Python frame less per message): a
                # bare message of the actor's own protocol, to a running actor.
                handler = actor._handler_functions.get(type(item))
                if handler is None or actor._stop_flag._set:
                    actor._dispatch(item)
                else:
                    try:
                        handler(actor, item)
                    except Exception:  # noqa: BLE001 - pykka's tell rule: logged, actor stops
                        actor._fail_told()
        return False

    def _run(self) -> None:
        ident = threading.get_ident()
        DISPATCHER_THREADS.add(ident)
        drain_every = self._drain_every
        try:
            while not self._stopping:
                if self._handle_some(drain_every):
                    self._drain()
                    if not self._stopping:
                        self._sleep_until_posted()
                else:
                    self._drain(under_load=True)
        except BaseException as error:
            # The loop itself broke: nothing queued will ever run again.
            self.report_failure(f"dispatcher {self.name}", error)
            raise
        finally:
            DISPATCHER_THREADS.discard(ident)

    def _turn(self) -> None:
        """One turn on the loop: up to ``drain_every`` messages, then the drain hooks; the
        next turn is the loop's to schedule, after the I/O that came meanwhile."""
        loop = self._loop
        if self._stopping or loop is None:
            return
        try:
            dry = self._handle_some(self._drain_every)
            if self._stopping:
                self._drain()
                self._end_on_loop()
                return
            if dry:
                self._drain()
                self._idle = True
                if not self._queue:
                    return
                # Posted by the drain, or by another thread before _idle was set.
                self._idle = False
            else:
                self._drain(under_load=True)
            loop.call_soon(self._turn)
        except BaseException as error:
            # The turns broke: as on a thread, nothing queued will ever run again.
            self.report_failure(f"dispatcher {self.name}", error)
            self._stopping = True
            self._end_on_loop()
            raise

    def _end_on_loop(self) -> None:
        DISPATCHER_THREADS.discard(threading.get_ident())
        if self._stopped is not None:
            self._stopped.set()
