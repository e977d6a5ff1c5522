"""The ``Dispatcher``: one thread draining one FIFO of (actor, message) pairs for every actor
bound to it, with the drain hooks (the unit of work), idleness and holds, and its failures."""

from __future__ import annotations

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
        self.handled = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Run what is already queued, then end the thread."""
        if self._thread is None:
            return
        self.call_soon(self._request_stop)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    @property
    def thread(self) -> threading.Thread | None:
        """The dispatcher thread (None before ``start`` and after ``stop``): for measuring it."""
        return self._thread

    @property
    def is_running(self) -> bool:
        """True while the dispatcher thread is alive."""
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
            self._idle = False
            self._wake.set()

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
            raise BlockingOnDispatcher("wait_idle() on the dispatcher thread")
        done = threading.Event()
        self.when_idle(done.set, holds=holds)
        if not done.wait(timeout):
            raise Timeout(f"dispatcher not idle after {timeout} s")

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

    def _run(self) -> None:
        ident = threading.get_ident()
        DISPATCHER_THREADS.add(ident)
        popleft = self._queue.popleft
        drain_every = self._drain_every
        since_drain = 0
        try:
            while True:
                try:
                    actor, item = popleft()
                except IndexError:
                    self._drain()
                    since_drain = 0
                    self._sleep_until_posted()
                    continue
                if actor is None:
                    try:
                        item.fn()
                    except Exception as error:  # noqa: BLE001 - reported; the loop must go on
                        self.report_failure(f"call {item.fn!r}", error)
                    # Only a queued call (stop()'s) sets _stopping: look after calls, not after
                    # every actor message.
                    if self._stopping:
                        break
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
                since_drain += 1
                if since_drain >= drain_every:
                    since_drain = 0
                    self._drain(under_load=True)
            self._drain()
        except BaseException as error:
            # The loop itself broke: nothing queued will ever run again.
            self.report_failure(f"dispatcher {self.name}", error)
            raise
        finally:
            DISPATCHER_THREADS.discard(ident)
