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
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, ClassVar

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
    Resume,
    ResumeOrders,
    Route,
    RouteMany,
    RouteVenueFills,
    VenueFills,
)
from oms.actors.order import OrderActor, OrderContext
from oms.actors.runtime import DispatchedActor, Dispatcher, DispatchFuture, tell
from oms.domain.commands import ApplyFill, CancelOrder, PlaceOrder
from oms.domain.errors import DomainError
from oms.domain.transitions import InvalidTransition, Trigger
from oms.store.ports import StoredOrder

logger = logging.getLogger(__name__)


class UnknownOrder(DomainError):
    """No order has this id."""

    code = "UNKNOWN_ORDER"


class DirectoryStats:
    """Ask for the directory's counts."""

    __slots__ = ()


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
        Idle: "on_idle",
        Finished: "on_finished",
        GetOrder: "on_get_order",
        DirectoryStats: "on_stats",
        ResumeOrders: "on_resume_orders",
        ForgetOrders: "on_forget_orders",
    }

    def __init__(self, dispatcher: Dispatcher, ctx: OrderContext, *, max_live: int) -> None:
        """Route for the actors of ``ctx``; passivate idle ones beyond ``max_live``."""
        super().__init__(dispatcher)
        self.ctx = ctx
        self.max_live = max_live
        self.live: dict[str, _Live] = {}
        self.idle: OrderedDict[str, None] = OrderedDict()  # passivation candidates, oldest first
        self.peak_live = 0
        self.spawned = 0
        self.rehydrated = 0
        self.passivated = 0

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
            live = self._find(order_id, create=None)
            if live is None:
                logger.info("dropped venue fills for finished or unknown order %s", order_id)
                continue
            self._deliver(order_id, live, executions, None)

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
            if self.ctx.journal.holds(message.order_id):
                self.ctx.journal.flush()
            message.reply.set(self.ctx.journal.repository.get(message.order_id))
            return
        live.ref.actor_inbox.put(Envelope(QueryOrder(), reply_to=message.reply))

    def _route(self, command: OrderCommand, reply: DispatchFuture[Any] | None) -> None:
        order_id = command.order_id
        live = self.live.get(order_id)
        if live is not None and self._deliver(order_id, live, command, reply):
            return
        # Not live, or its actor had stopped (and was forgotten): look the order up afresh.
        live = self._find(order_id, create=command if isinstance(command, PlaceOrder) else None)
        if live is None:
            self._answer_finished(command, reply)
            return
        # Just spawned or rehydrated, so not among the idle (an idle order is always live):
        # _deliver without its idle bookkeeping. Every new order comes this way.
        live.routed += 1
        if reply is None:
            tell(live.ref, command)
        else:
            live.ref.actor_inbox.put(Envelope(command, reply_to=reply))

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

    def _find(self, order_id: str, *, create: PlaceOrder | None) -> _Live | None:
        """The live actor; else rehydrate an open stored order; else spawn one for a place."""
        live = self.live.get(order_id)
        if live is not None:
            return live
        journal = self.ctx.journal
        if journal.holds(order_id):
            # The store must hold all of this order before we read it. Flushing only then
            # (not for every new order id) keeps the journal's batches whole.
            journal.flush()
        stored = journal.repository.load(order_id)
        if stored is not None:
            if stored.order.is_terminal:
                return None
            self.rehydrated += 1
            return self._spawn(order_id, stored)
        if create is None:
            return None
        self.spawned += 1
        return self._spawn(order_id, None)

    def _spawn(self, order_id: str, stored: StoredOrder | None) -> _Live:
        ref = OrderActor.start(self.dispatcher, self.ctx, stored)
        live = self.live[order_id] = _Live(ref)
        count = len(self.live)
        self.peak_live = max(self.peak_live, count)
        if count > self.max_live:
            self._passivate()
        return live

    def _answer_finished(self, command: OrderCommand, reply: DispatchFuture[Any] | None) -> None:
        """A command for a finished (or unknown) order: replay is a no-op, anything else refused."""
        stored = self.ctx.journal.repository.load(command.order_id)
        if stored is None:
            error: DomainError = UnknownOrder(f"order {command.order_id} is not known")
        elif isinstance(command, PlaceOrder) or any(
            event.command_id == command.command_id for event in stored.events
        ):
            if reply is not None:
                reply.set(stored.order)
            return
        else:
            trigger = Trigger.CANCEL if isinstance(command, CancelOrder) else Trigger.FILL
            error = InvalidTransition(stored.order.status, trigger)
        if reply is None:
            if isinstance(command, ApplyFill):
                logger.warning("refused fill %s: %s", command.command_id, error)
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
        """Live, peak, spawned, rehydrated and passivated counts."""
        return {
            "live": len(self.live),
            "peak_live": self.peak_live,
            "spawned": self.spawned,
            "rehydrated": self.rehydrated,
            "passivated": self.passivated,
        }


_RESUME = Resume()
_STOP = _ActorStop()  # pykka's own stop message, told like ActorRef.stop(block=False) does
