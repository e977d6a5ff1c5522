"""The directory: routes commands to order actors, spawns, finishes and passivates them.

It is the registry of live order actors (they stay out of pykka's global registry). An order's
first command spawns its actor; a terminal order's actor stops itself and says so; an idle
resting order may be passivated when the live count passes the cap: its actor is stopped (its
state is already in the store, written by the journal) and rehydrated from the store on the
order's next command. Every command for an order passes through here, which is what makes the
``Idle`` notices checkable: the directory counts what it routed to each actor.

An actor may stop before the directory hears of it (its ``Finished`` notice is still queued, or
it failed): a command that meets a stopped actor here, or that was queued for it before it
stopped (the actor hands those back, see ``OrderActor._dispatch``), is routed as if the order
were looked up afresh, so a terminal order answers from the store and any other is rehydrated.

Looking an order up never waits for I/O on the dispatcher thread: the store's memory answers at
once for every open order and the recent finished ones. An order only MongoDB knows (finished
long ago, or before a restart) is *loaded*: the store reads it on its own loop and the answer
comes back as a ``Loaded`` message; what arrives for that order meanwhile waits behind the load,
in order, and is routed once it is in. A failed load is asked again after a back-off (the store
waits, not this actor), and the dispatcher is held meanwhile (``Dispatcher.hold``): the engine
is not idle while a command waits for its order, so no offset is committed past it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, ClassVar, NamedTuple

from pykka import ActorDeadError, ActorRef
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from oms.actors.messages import (
    Finished,
    ForgetOrders,
    GetOrder,
    Idle,
    OrderCommand,
    QueryOrder,
    ReconciledWord,
    Resume,
    ResumeOrders,
    Route,
    RouteMany,
    RouteReconciled,
    RouteTriggered,
    RouteVenueFills,
    Triggered,
    VenueFills,
)
from oms.actors.order import OrderActor, OrderContext
from oms.actors.ports import StoredOrder
from oms.actors.runtime import DispatchedActor, Dispatcher, DispatchFuture, tell
from oms.domain.commands import AmendOrder, ApplyFill, CancelOrder, PlaceOrder
from oms.domain.errors import DomainError, StoreClosed, StoreUnavailable, UnknownOrder
from oms.domain.messages import distinct
from oms.domain.transitions import InvalidTransition, Trigger
from oms.retrying import backoff_s

logger = logging.getLogger(__name__)

# A failed load is asked again after these many seconds, doubling up to the last.
LOAD_RETRY_FIRST_S = 0.05
LOAD_RETRY_MAX_S = 2.0


@distinct
class DirectoryStats(NamedTuple):
    """Ask for the directory's counts."""


@distinct
class Loaded(NamedTuple):
    """The store's answer to a load (told back from the store's thread)."""

    order_id: str
    stored: StoredOrder | None  # None: the store does not know the order
    error: BaseException | None  # the load failed (asked again if the store may answer later)


# One thing waiting for a load: a routed command, ``VenueFills`` or ``QueryOrder``, and its
# reply (None for a tell).
_Waiting = tuple[Any, DispatchFuture[Any] | None]


class _Load:
    """A load in flight: what waits for it, in arrival order, and how many attempts failed."""

    __slots__ = ("failures", "waiting")

    def __init__(self, first: _Waiting) -> None:
        self.waiting: list[_Waiting] = [first]
        self.failures = 0


class _Live:
    """A live order actor and how many routed messages the directory sent it."""

    __slots__ = ("ref", "routed")

    def __init__(self, ref: ActorRef[Any]) -> None:
        self.ref = ref
        self.routed = 0


class OrderDirectory(DispatchedActor):
    """Finds (or spawns, or rehydrates) the actor of an order and hands it the command."""

    handlers: ClassVar[dict[type, str]] = {
        Route: "on_route",
        RouteMany: "on_route_many",
        RouteVenueFills: "on_venue_fills",
        RouteTriggered: "on_triggered",
        RouteReconciled: "on_reconciled",
        Idle: "on_idle",
        Finished: "on_finished",
        GetOrder: "on_get_order",
        DirectoryStats: "on_stats",
        ResumeOrders: "on_resume_orders",
        ForgetOrders: "on_forget_orders",
        Loaded: "on_loaded",
    }

    def __init__(self, dispatcher: Dispatcher, ctx: OrderContext, *, max_live: int) -> None:
        """Route for the actors of ``ctx``; passivate idle ones beyond ``max_live``."""
        super().__init__(dispatcher)
        self.ctx = ctx
        self.max_live = max_live
        self.live: dict[str, _Live] = {}
        self.idle: OrderedDict[str, None] = OrderedDict()  # passivation candidates, oldest first
        self.loading: dict[str, _Load] = {}  # orders the store is reading, with what waits
        self.peak_live = 0
        self.spawned = 0
        self.rehydrated = 0
        self.passivated = 0
        self.loads = 0
        self.load_failures = 0
        self._failing = 0  # loads whose last attempt failed: an outage is logged once

    # -- routing ---------------------------------------------------------------------------

    def on_route(self, message: Route) -> None:
        """One command, its answer (if wanted) straight from the order actor."""
        self._route(message.command, message.reply)

    def on_route_many(self, message: RouteMany) -> None:
        """Many commands, no answers (a failure is logged by pykka's tell rule... per order)."""
        for command in message.commands:
            try:
                self._route(command, None)
            except DomainError:
                logger.warning(
                    "dropped %s for %s", type(command).__name__, command.order_id, exc_info=True
                )

    def on_venue_fills(self, message: RouteVenueFills) -> None:
        """Executions on resting orders, to their actors (rehydrated if need be)."""
        for order_id, fills in message.fills:
            executions = VenueFills(fills)
            live = self.live.get(order_id)
            if live is not None and self._deliver(order_id, live, executions, None):
                continue
            self._look_up(order_id, executions, None)

    def on_triggered(self, message: RouteTriggered) -> None:
        """Stop orders the market triggered, to their actors (rehydrated if need be)."""
        for order_id, triggered in message.triggers:
            live = self.live.get(order_id)
            if live is not None and self._deliver(order_id, live, triggered, None):
                continue
            self._look_up(order_id, triggered, None)

    def on_reconciled(self, message: RouteReconciled) -> None:
        """Reconciliation's word on an in-doubt order, to its actor (rehydrated if need be);
        an order ended or unknown here answers False (nothing to resolve)."""
        order_id = message.order_id
        live = self.live.get(order_id)
        if live is not None and self._deliver(order_id, live, message.word, message.reply):
            return
        self._look_up(order_id, message.word, message.reply)

    def on_resume_orders(self, message: ResumeOrders) -> int:
        """After a restart: rehydrate each stored open order and tell it to carry on.

        Answers how many actors it started (an order already live is left as it is).
        """
        started = 0
        for stored in message.orders:
            order_id = stored.order.order_id
            if order_id in self.live or stored.order.is_terminal:
                continue
            self.rehydrated += 1
            live = self._spawn(order_id, stored)
            live.routed += 1
            tell(live.ref, _RESUME)
            started += 1
        return started

    def on_get_order(self, message: GetOrder) -> None:
        """The order's state: from its live actor (behind its queued commands) or the store."""
        live = self.live.get(message.order_id)
        # An order actor that reached its end stops itself, then tells us: a query queued before
        # that notice would reach a stopped actor (ActorDeadError, a 500 at the API). Its last
        # state is in the journal, so answer from there as for any order not live.
        if live is None or not live.ref.is_alive():
            self._look_up(message.order_id, _QUERY, message.reply)
            return
        live.ref.actor_inbox.put(Envelope(_QUERY, reply_to=message.reply))

    def _route(self, command: OrderCommand, reply: DispatchFuture[Any] | None) -> None:
        order_id = command.order_id
        live = self.live.get(order_id)
        if live is not None and self._deliver(order_id, live, command, reply):
            return
        # Not live, or its actor had stopped (and was forgotten): look the order up afresh.
        self._look_up(order_id, command, reply)

    def _look_up(self, order_id: str, message: Any, reply: DispatchFuture[Any] | None) -> None:
        """Hand ``message`` on as the store has the order: from memory now, or after a load."""
        load = self.loading.get(order_id)
        if load is not None:  # behind the load already asked: in order
            load.waiting.append((message, reply))
            return
        journal = self.ctx.journal
        if journal.holds(order_id):
            # The store must hold all of this order before we read it. Flushing only then
            # (not for every new order id) keeps the journal's batches whole.
            journal.flush()
        repository = journal.repository
        stored = repository.held(order_id)
        if stored is None and repository.may_be_stored(order_id):
            self.loading[order_id] = _Load((message, reply))
            self.dispatcher.hold()
            self.loads += 1
            self._load(order_id, 0.0)
            return
        self._hand_on(order_id, stored, message, reply)

    def _hand_on(
        self,
        order_id: str,
        stored: StoredOrder | None,
        message: Any,
        reply: DispatchFuture[Any] | None,
    ) -> None:
        """Route ``message`` for an order that is not live, given what the store has of it."""
        if message is _QUERY:
            if reply is not None:
                reply.set(None if stored is None else stored.order)
            return
        live: _Live | None = None
        if stored is not None and not stored.order.is_terminal:
            self.rehydrated += 1
            live = self._spawn(order_id, stored)
        elif stored is None and isinstance(message, PlaceOrder):
            self.spawned += 1
            live = self._spawn(order_id, None)
        if live is None:
            if isinstance(message, ReconciledWord):
                if reply is not None:
                    reply.set(False)  # ended (its doubt resolved) or unknown: nothing to take
            elif isinstance(message, VenueFills | Triggered):
                logger.info(
                    "dropped venue fills or trigger for finished or unknown order %s", order_id,
                    extra={"order_id": order_id},
                )  # fmt: skip
            else:
                self._answer_finished(stored, message, reply)
            return
        # Just spawned or rehydrated, so not among the idle (an idle order is always live):
        # _deliver without its idle bookkeeping. Every new order comes this way.
        live.routed += 1
        if reply is None:
            tell(live.ref, message)
        else:
            live.ref.actor_inbox.put(Envelope(message, reply_to=reply))

    # -- loads -----------------------------------------------------------------------------

    def _load(self, order_id: str, delay_s: float, attempt: int = 0) -> None:
        """Ask the store for the order (after ``delay_s``; ``attempt``: how many failed before);
        its answer comes back as ``Loaded``."""
        directory = self.actor_ref

        def on_answer(future: Future[StoredOrder | None]) -> None:
            # On the store's thread (or at once, here, for an answer it had in memory).
            error: BaseException | None
            if future.cancelled():
                error = StoreClosed(f"the load of order {order_id} was cancelled")
            else:
                error = future.exception()
            loaded = Loaded(order_id, None if error is not None else future.result(), error)
            try:
                tell(directory, loaded)
            except ActorDeadError:
                # The engine stopped: what waited was never applied, so never committed either.
                logger.info("load of order %s answered after the engine stopped", order_id)

        read = self.ctx.journal.repository.read(order_id, delay_s=delay_s, attempt=attempt)
        read.add_done_callback(on_answer)

    def on_loaded(self, message: Loaded) -> None:
        """A load answered: route what waited for it, in order. A store that did not answer is
        asked again; one that closed, or cannot read the order, refuses what waited."""
        order_id = message.order_id
        load = self.loading.get(order_id)
        if load is None:  # not ours (a stray answer): nothing waits for it
            return
        error = message.error
        if isinstance(error, StoreUnavailable) and not isinstance(error, StoreClosed):
            self._load_failed(order_id, load, error)  # MongoDB may answer later: ask again
            return
        del self.loading[order_id]
        if error is not None and not isinstance(error, StoreClosed):
            logger.error("cannot load order %s, %d waiting refused: %r",
                         order_id, len(load.waiting), error)  # fmt: skip
        if load.failures:
            self._failing -= 1
            if not self._failing:
                logger.warning("order loads succeed again (%d failed attempts in all)",
                               self.load_failures)  # fmt: skip
        try:
            for waiting, reply in load.waiting:
                if error is not None:
                    self._give_up(order_id, waiting, reply, error)
                else:
                    self._after_load(order_id, message.stored, waiting, reply)
        finally:
            # Released after what waited is queued: an idleness look comes after all of it. (A
            # bug escaping here is the dispatcher's ActorFailure: the engine stops trusting
            # itself and acknowledges nothing more, so what did not get routed is replayed.)
            self.dispatcher.release()

    def _after_load(
        self,
        order_id: str,
        stored: StoredOrder | None,
        waiting: Any,
        reply: DispatchFuture[Any] | None,
    ) -> None:
        """One thing that waited for the load: to the actor an earlier one spawned, or on."""
        live = self.live.get(order_id)
        if live is not None and live.ref.is_alive():
            if waiting is _QUERY:
                live.ref.actor_inbox.put(Envelope(_QUERY, reply_to=reply))
                return
            if self._deliver(order_id, live, waiting, reply):
                return
        self._hand_on(order_id, stored, waiting, reply)

    def _load_failed(self, order_id: str, load: _Load, error: BaseException) -> None:
        """Ask again after a back-off; log once per outage, not once per attempt."""
        self.load_failures += 1
        if not load.failures:
            self._failing += 1
            if self._failing == 1:
                logger.warning("order loads fail, retrying with back-off: %s", error)
        load.failures += 1
        delay = backoff_s(load.failures, initial_s=LOAD_RETRY_FIRST_S, max_s=LOAD_RETRY_MAX_S)
        self._load(order_id, delay, load.failures)

    @staticmethod
    def _give_up(
        order_id: str, waiting: Any, reply: DispatchFuture[Any] | None, error: BaseException
    ) -> None:
        """The store closed (the engine is stopping) or cannot read the order (an unreadable
        document): refuse what waited, nothing applied. Asking again would hold the engine, and
        every commit behind it, for ever."""
        if reply is not None:
            reply.set_exception((type(error), error, None))
        else:
            logger.warning(
                "dropped %s for %s: %s", type(waiting).__name__, order_id, error,
                extra={"order_id": order_id},
            )  # fmt: skip

    def _deliver(
        self,
        order_id: str,
        live: _Live,
        message: Any,
        reply: DispatchFuture[Any] | None,
    ) -> bool:
        """Hand ``message`` to the actor; False (and the actor forgotten) if it has stopped.

        An actor stops itself when its order ends and only then tells us (``Finished``), so a
        command queued here in between meets a stopped actor; so does one for an actor that
        failed. The caller then looks the order up afresh (``_find``): nothing was delivered,
        so the command is neither lost nor applied twice.
        """
        live.routed += 1
        self.idle.pop(order_id, None)  # busy again: not a passivation candidate until it says
        try:
            # tell() raises ActorDeadError for a stopped actor, where ``actor_inbox.put`` would
            # hand it to the caller's future (a 500 at the API); an Envelope carries the reply.
            # On the hot path this costs nothing: the check is the one tell() already makes.
            tell(live.ref, message if reply is None else Envelope(message, reply_to=reply))
        except ActorDeadError:
            self._forget(order_id)
            return False
        return True

    def _spawn(self, order_id: str, stored: StoredOrder | None) -> _Live:
        ref = OrderActor.start(self.dispatcher, self.ctx, stored)
        live = self.live[order_id] = _Live(ref)
        count = len(self.live)
        self.peak_live = max(self.peak_live, count)
        if count > self.max_live:
            self._passivate()
        return live

    @staticmethod
    def _answer_finished(
        stored: StoredOrder | None, command: OrderCommand, reply: DispatchFuture[Any] | None
    ) -> None:
        """A command for a finished (or unknown) order: replay is a no-op, anything else refused."""
        if stored is None:
            error: DomainError = UnknownOrder(f"order {command.order_id} is not known")
        elif isinstance(command, PlaceOrder) or any(
            event.command_id == command.command_id for event in stored.events
        ):
            if reply is not None:
                reply.set(stored.order)
            return
        else:
            if isinstance(command, CancelOrder):
                trigger = Trigger.CANCEL
            elif isinstance(command, AmendOrder):
                trigger = Trigger.AMEND
            else:
                trigger = Trigger.FILL
            error = InvalidTransition(stored.order.status, trigger)
        if reply is None:
            if isinstance(command, ApplyFill):
                logger.warning(
                    "refused fill %s: %s", command.command_id, error,
                    extra={"order_id": command.order_id, "command_id": command.command_id},
                )  # fmt: skip
            return
        reply.set_exception((type(error), error, None))

    # -- lifecycle notices -----------------------------------------------------------------

    def on_idle(self, message: Idle) -> None:
        """An actor with nothing in flight: a passivation candidate, unless the notice is stale."""
        live = self.live.get(message.order_id)
        if live is None or live.routed != message.handled:
            return
        self.idle[message.order_id] = None
        self.idle.move_to_end(message.order_id)
        if len(self.live) > self.max_live:
            self._passivate()

    def on_finished(self, message: Finished) -> None:
        """A terminal order's actor stopped itself."""
        # The entry is that actor's (or already forgotten): a terminal order is never
        # rehydrated, so no newer actor of this order can be live when its notice arrives.
        self._forget(message.order_id)

    def _forget(self, order_id: str) -> None:
        """Drop a stopped actor: the order's next command looks it up afresh."""
        self.live.pop(order_id, None)
        self.idle.pop(order_id, None)

    def _passivate(self) -> None:
        """Stop the oldest idle actors until the live count is back under the cap."""
        while len(self.live) > self.max_live and self.idle:
            order_id, _ = self.idle.popitem(last=False)
            live = self.live.pop(order_id)
            tell(live.ref, _STOP)  # its state is in the journal; nothing else addresses it
            self.passivated += 1

    def on_forget_orders(self, _message: ForgetOrders) -> int:
        """Stop every live actor and forget it; how many there were."""
        live, self.live = self.live, {}
        self.idle.clear()
        for held in live.values():
            tell(held.ref, _STOP)
        return len(live)

    def on_stats(self, _message: DirectoryStats) -> dict[str, int]:
        """Live, peak, spawned, rehydrated, passivated, loading, loads and failed loads."""
        return {
            "live": len(self.live),
            "peak_live": self.peak_live,
            "spawned": self.spawned,
            "rehydrated": self.rehydrated,
            "passivated": self.passivated,
            "loading": len(self.loading),
            "loads": self.loads,
            "load_failures": self.load_failures,
        }


_RESUME = Resume()
_QUERY = QueryOrder()
_STOP = _ActorStop()  # pykka's own stop message, told like ActorRef.stop(block=False) does
