"""A pykka runtime that runs many actors on one dispatcher thread instead of a thread each.

pykka's ``Actor`` is abstract over its runtime: an inbox, a future type and a loop starter.
``ThreadingActor`` gives every actor a thread (about 5,000 orders/s, one thread per live
order). Here every actor's inbox feeds one shared FIFO that a single dispatcher thread drains,
handling one message at a time per actor, so an actor still never runs two messages at once and
sees them in the order they were sent, while a million actors cost no threads at all.

Why one thread and not a pool: the work is pure Python, so the GIL runs one thread at a time
anyway; a pool would only add lock traffic and GIL hand-offs between every hop. Several
``Dispatcher`` instances can still be started (each actor is bound to one) where isolation is
worth more than hops, e.g. a slow adapter.

pykka's semantics stay: ``ActorRef.tell``/``ask``/``stop``, proxies, ``Future.get``/``map``,
a failure in a ``tell`` is logged and stops the actor, a failure in an ``ask`` goes back to the
caller. One rule is new: an actor must never block on a future on the dispatcher thread (it
would wait for itself); ``DispatchFuture.get`` refuses with ``BlockingOnDispatcher`` instead of
deadlocking. Actors chain replies with ``add_done_callback`` or explicit reply messages.

One job per module, as pykka lays out its own; the public names are re-exported here:

- ``dispatcher``: the ``Dispatcher`` (the shared queue and its thread, drain hooks, idleness);
- ``failures``: ``ActorFailure`` and the first-failure record and hooks each dispatcher keeps;
- ``pykka_bridge``: ``DispatchedActor`` and ``tell``, the only module that uses pykka's
  private names (pinned exactly; tests/unit/actors/test_pykka_internals.py);
- ``futures``: ``DispatchFuture`` and ``BlockingOnDispatcher``.
"""

from __future__ import annotations

from oms.actors.runtime.dispatcher import Dispatcher
from oms.actors.runtime.failures import ActorFailure
from oms.actors.runtime.futures import BlockingOnDispatcher, DispatchFuture
from oms.actors.runtime.pykka_bridge import DispatchedActor, tell

__all__ = [
    "ActorFailure",
    "BlockingOnDispatcher",
    "DispatchFuture",
    "DispatchedActor",
    "Dispatcher",
    "tell",
]
