"""The bridge to pykka: ``DispatchedActor`` implements pykka's runtime hooks on a ``Dispatcher``
and replays pykka's actor loop one message at a time, through pykka's private names
(``Envelope``, ``_ActorStop``, ``_handle_failure``, ...): pykka is pinned exactly, and
tests/unit/actors/test_pykka_internals.py fails when any of them changes."""

from __future__ import annotations

import itertools
import logging
import sys
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import pykka
from pykka import ActorDeadError, ActorRef, ActorRegistry, Future
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from oms.actors.runtime.dispatcher import Dispatcher
from oms.actors.runtime.futures import DispatchFuture

__all__ = ["DispatchedActor", "tell"]

logger = logging.getLogger("oms.actors.runtime")  # the runtime's one logger

_URN_PREFIX = uuid.uuid4().urn
_urns = itertools.count()


class _Start:
    """Marker queued by ``start()`` so that ``on_start`` runs on the dispatcher, first."""


_START = _Start()


class _Inbox:
    """An actor's inbox, a door into its dispatcher's shared queue, and its stopped flag.

    The flag is ``threading.Event``'s interface for a plain bool: pykka only reads and sets it,
    and an Event per actor would cost a Condition, a lock and a deque (about a kilobyte) for
    each of a hundred thousand live actors. One object serves as both ``actor_inbox`` and
    ``actor_stopped``: an order actor is built per order, and that is one allocation less.
    """

    __slots__ = ("_actor", "_dispatcher", "_set")

    def __init__(self, dispatcher: Dispatcher, actor: DispatchedActor) -> None:
        self._dispatcher = dispatcher
        self._actor: DispatchedActor | None = actor
        self._set = False

    def put(self, envelope: Envelope[Any], /) -> None:
        """Queue one message for the actor."""
        actor = self._actor
        if actor is None:  # stopped: answer an ask like pykka's teardown does
            _refuse(envelope, "stopped")
            return
        self._dispatcher.post(actor, envelope)

    def get(self) -> Envelope[Any]:
        """Not used: the dispatcher, not the actor, takes messages off the shared queue."""
        raise NotImplementedError("a dispatched actor's messages are taken by its dispatcher")

    def empty(self) -> bool:
        """Always True: nothing is held here, the dispatcher's queue holds the messages."""
        return True

    def is_set(self) -> bool:
        """True once the actor has stopped (the stopped flag's side)."""
        return self._set

    def set(self) -> None:
        """Mark the actor stopped (the stopped flag's side)."""
        self._set = True


class DispatchedActor(pykka.Actor):
    """A pykka actor whose messages run on a shared ``Dispatcher`` instead of its own thread.

    Subclasses declare their explicit message protocol in ``handlers`` (message type -> method
    name), looked up by exact type before pykka's own messages; anything else goes to
    ``on_receive``.
    """

    registered: ClassVar[bool] = True
    """Whether ``start()`` registers the actor in pykka's global ``ActorRegistry``.

    The registry is a list whose ``unregister`` scans it: fine for a few long-lived actors,
    quadratic for hundreds of thousands of short-lived ones (order actors opt out; their
    directory is their registry).
    """

    handlers: ClassVar[dict[type, str]] = {}
    _handler_functions: ClassVar[dict[type, Callable[[Any, Any], Any]]] = {}
    _has_on_start: ClassVar[bool] = False
    _has_on_stop: ClassVar[bool] = False
    _stop_flag: _Inbox

    def __init__(self, dispatcher: Dispatcher) -> None:
        """Bind the actor to ``dispatcher``. Deliberately not pykka's ``__init__``.

        pykka's builds a uuid4 and a ``threading.Event`` per actor; this sets the same fields
        from a per-process urn prefix plus a counter and a plain flag.
        """
        self.actor_urn = f"{_URN_PREFIX}:{next(_urns)}"
        self.dispatcher = dispatcher
        inbox = _Inbox(dispatcher, self)
        self.actor_inbox = inbox
        self.actor_stopped = inbox  # type: ignore[assignment]
        self._stop_flag = inbox  # the same object, typed: the dispatcher reads it per message
        self._actor_ref = ActorRef(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Resolve ``handlers`` to functions once per class, not once per actor."""
        super().__init_subclass__(**kwargs)
        cls._handler_functions = {kind: getattr(cls, name) for kind, name in cls.handlers.items()}
        cls._has_on_start = cls.on_start is not pykka.Actor.on_start
        cls._has_on_stop = cls.on_stop is not pykka.Actor.on_stop

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> ActorRef[Any]:
        """Create the actor, register it if ``registered``, and queue its ``on_start``."""
        obj = cls(*args, **kwargs)
        if cls.registered:
            ActorRegistry.register(obj._actor_ref)
        if cls._has_on_start:
            obj._start_actor_loop()
        return obj._actor_ref

    @staticmethod
    def _create_actor_inbox() -> pykka._actor.ActorInbox:
        raise NotImplementedError("DispatchedActor.__init__ builds its inbox")

    @staticmethod
    def _create_future() -> Future[Any]:
        return DispatchFuture()

    def _start_actor_loop(self) -> None:
        # Only an actor with an on_start needs a turn before its first message (start() calls
        # this only then): most order actors have none, which saves a queue hop per order.
        self.dispatcher.post(self, _START)

    def _dispatch(self, item: Any) -> None:
        """Handle one queued item on the dispatcher thread, as pykka's actor loop would."""
        if self._stop_flag._set:
            if item is not _START:
                _refuse(item, "stopped before handling the message")
            return
        if item is _START:
            self._actor_loop_setup()
            return
        if type(item) is Envelope:
            message = item.message
            reply_to = item.reply_to
        else:  # a bare message from tell(): no envelope was needed
            message = item
            reply_to = None
        try:
            handler = self._handler_functions.get(type(message))
            if handler is not None:
                response = handler(self, message)
            else:
                response = self._handle_receive(message)
            if reply_to is not None:
                reply_to.set(response)
        except Exception as error:
            if reply_to is None:
                self._fail_told()
                return
            logger.info("Exception returned from %s to caller:", self, exc_info=True)
            reply_to.set_exception()
            refusal = self.dispatcher.refusal
            if refusal is None or not refusal(error):
                self.dispatcher.report_failure(f"{self} (ask)", error)

    def _fail_told(self) -> None:
        """A told message failed (inside ``except``): log it, run ``on_failure``, stop, and
        report it to the dispatcher (nobody waits for a tell, so nobody else would know)."""
        error = sys.exc_info()[1]
        self._handle_failure(*sys.exc_info())
        try:
            self.on_failure(*sys.exc_info())
        except Exception:  # noqa: BLE001 - pykka's rule: log it, the actor is gone
            self._handle_failure(*sys.exc_info())
        self._detach()
        if error is not None:
            self.dispatcher.report_failure(f"{self} (tell)", error)

    def _stop(self) -> None:
        if self.registered:
            ActorRegistry.unregister(self.actor_ref)
        self._stop_flag._set = True
        if self._has_on_stop:  # most order actors have none: a call less per order
            try:
                self.on_stop()
            except Exception:  # noqa: BLE001 - pykka's rule: log it, the actor is gone
                self._handle_failure(*sys.exc_info())
        self._detach()

    def _detach(self) -> None:
        # Breaks the actor <-> inbox cycle so a stopped actor is freed at once, not by the
        # cyclic collector; later messages are refused by the inbox itself.
        inbox = self.actor_inbox
        if isinstance(inbox, _Inbox):
            inbox._actor = None


def tell(ref: ActorRef[Any], message: Any) -> None:
    """``ref.tell(message)``, minus the envelope, for actors on a dispatcher (the hot path).

    Same semantics: ``ActorDeadError`` if the actor has stopped; any other actor gets a plain
    ``ref.tell``.
    """
    inbox = ref.actor_inbox
    if type(inbox) is _Inbox:
        actor = inbox._actor
        if actor is None:
            raise ActorDeadError(f"{ref} not found")
        # Dispatcher.post, inlined: this runs several times per order.
        dispatcher = inbox._dispatcher
        dispatcher._queue.append((actor, message))
        if dispatcher._idle:
            dispatcher.wake()
    else:
        ref.tell(message)


def _refuse(item: Any, why: str) -> None:
    """Answer an ask sent to a stopped actor the way pykka's loop teardown does."""
    if type(item) is not Envelope:
        return  # a bare tell: nobody waits for it
    envelope: Envelope[Any] = item
    reply_to = envelope.reply_to
    if reply_to is None:
        return
    if isinstance(envelope.message, _ActorStop):
        reply_to.set(None)
    else:
        reply_to.set_exception(exc_info=(ActorDeadError, ActorDeadError(why), None))
