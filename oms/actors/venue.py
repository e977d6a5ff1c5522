"""The simulated venue on the dispatcher: E3's pure ``MarketData`` and ``Matcher`` in one actor.

The matcher needs the book at the moment an order arrives, so the venue owns its own copy of
the market data (ticks are immutable and cheap to apply twice) instead of asking another actor
for it on every arrival. It runs on the engine's dispatcher (no thread of its own, no GIL
hand-off per message), so the engine's hot path stays on one thread. All the logic stays in
the pure classes.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

from pykka import ActorRef

from oms.actors.messages import (
    AmendResting,
    CancelAtVenue,
    ForgetResting,
    MarketTick,
    Matched,
    QueryAtVenue,
    RestAgain,
    RouteTriggered,
    RouteVenueFills,
    Submit,
    Triggered,
    VenueAmended,
    VenueCancelled,
)
from oms.actors.ports import StoredOrder, execution_number, executions_of
from oms.actors.runtime import DispatchedActor, Dispatcher, tell
from oms.domain.commands import ApplyFill
from oms.domain.errors import UnknownInstrument
from oms.domain.messages import distinct
from oms.domain.order_terms import STOPS, resting_type
from oms.marketdata import MarketData, OrderBook, Tick
from oms.venue import Matcher, MatchResult, Outcome, VenueError, VenueOrder

logger = logging.getLogger(__name__)
# Builds a message (a NamedTuple) from a tuple of its fields without the Python-level __new__.
_new = tuple.__new__


@distinct
class GetBook(NamedTuple):
    """Ask for a symbol's current book snapshot (a ``Tick``), ``depth`` levels a side."""

    symbol: str
    depth: int | None = None


@distinct
class CountResting(NamedTuple):
    """Ask how many orders rest in the venue."""


class SimulatedVenue(DispatchedActor):
    """Matches arriving orders against the book; fills resting orders when ticks cross them."""

    handlers: ClassVar[dict[type, str]] = {
        Submit: "on_submit",
        MarketTick: "on_tick",
        CancelAtVenue: "on_cancel",
        AmendResting: "on_amend",
        GetBook: "on_get_book",
        CountResting: "on_count_resting",
        ForgetResting: "on_forget_resting",
        RestAgain: "on_rest_again",
        QueryAtVenue: "on_query",
    }

    def __init__(
        self,
        dispatcher: Dispatcher,
        market: MarketData,
        matcher: Matcher,
        directory: ActorRef[Any],
        clock: Any,
    ) -> None:
        """Own ``market`` and ``matcher``; send executions on resting orders to ``directory``."""
        super().__init__(dispatcher)
        self.market = market
        self.matcher = matcher
        self.directory = directory
        self.clock = clock

    def on_submit(self, message: Submit) -> None:
        """Match the arriving order now and tell the order actor what happened.

        An order id that already rests here (its submit replayed, e.g. after a restart that
        restored the book) answers where it stands: resting, with what is left. Refusing it
        would cancel an order the venue still holds and may still fill.

        The venue's own refusals (``VenueError``: no quantity, a LIMIT without a price;
        ``UnknownInstrument``: a symbol it does not list) answer "nothing filled, remainder
        cancelled". Anything else is a bug: it propagates, and by pykka's rule for a told
        message the venue logs it and stops.
        """
        order = message.order
        resting = self.matcher.remaining(order.order_id)
        if resting is not None:
            result = MatchResult((), resting, Outcome.RESTING)
            tell(message.reply_to, _new(Matched, (result, self.clock())))
            return
        try:
            result = self.matcher.on_arrival(order, self.market.book(order.symbol))
        except (VenueError, UnknownInstrument) as refused:
            # Risk accepted what the venue refuses: say so, and answer so that the order does
            # not hang ACCEPTED.
            logger.warning(
                "venue refused order %s: %s: %s", order.order_id, refused.code, refused,
                extra={"order_id": order.order_id, "account_id": order.account_id},
            )  # fmt: skip
            result = MatchResult((), order.quantity, Outcome.CANCELLED_REMAINDER)
        tell(message.reply_to, _new(Matched, (result, self.clock())))

    def on_tick(self, message: MarketTick) -> None:
        """Apply the tick; executions on resting orders go to their actors via the directory.

        A tick older than the book's (which the book ignores) fills nothing.
        """
        tick = message.tick
        if not self.market.apply(tick):
            # The book kept a newer tick: this one is not the market any more (a replayed or
            # reordered ``prices`` record), so its liquidity must not fill resting orders.
            return
        matcher = self.matcher
        triggered = matcher.trigger(tick, self.market.book(tick.symbol))
        if triggered:
            # Told before the tick's fills: the directory hands them on in this order, so an
            # order hears that it was triggered before it hears of fills on what it became.
            at = tick.ts
            last = tick.last_price
            tell(
                self.directory,
                RouteTriggered(
                    tuple(
                        (order.order_id, Triggered(result, last, at)) for order, result in triggered
                    )
                ),
            )
        executions = matcher.on_tick(tick)
        if not executions:
            return
        at = tick.ts
        by_order: dict[str, list[ApplyFill]] = {}
        for execution in executions:
            by_order.setdefault(execution.order_id, []).append(execution.to_fill(at))
        tell(
            self.directory,
            RouteVenueFills(tuple((oid, tuple(fills)) for oid, fills in by_order.items())),
        )

    def on_cancel(self, message: CancelAtVenue) -> None:
        """Take the order out; tell what was removed (None: no longer resting here)."""
        leaves = self.matcher.cancel(message.order_id)
        if message.reply_to is not None:
            tell(message.reply_to, VenueCancelled(message.order_id, leaves))

    def on_amend(self, message: AmendResting) -> None:
        """Change a resting order; tell what it holds now (None: no longer resting here)."""
        order = message.order
        try:
            remaining = self.matcher.amend(order, message.delta)
        except (VenueError, UnknownInstrument) as refused:
            logger.warning("venue refused amend of %s: %s", order.order_id, refused.code)
            remaining = Decimal(0)  # refused, nothing changed
        tell(message.reply_to, VenueAmended(order.order_id, remaining))

    def on_query(self, message: QueryAtVenue) -> None:
        """An order restored IN_DOUBT (placed on a network venue before this replica ran the
        simulated one): this venue never had it and cannot speak for the one that did, so it
        answers nothing and the order stays in doubt, reserved, for an operator."""
        logger.error(
            "order %s is in doubt at a network venue; the simulated venue cannot resolve it",
            message.order.order_id,
        )

    def on_get_book(self, message: GetBook) -> Tick | None:
        """A snapshot of the book (None before the first tick)."""
        book: OrderBook = self.market.book(message.symbol)
        return book.snapshot(message.depth)

    def on_count_resting(self, _message: CountResting) -> int:
        """How many orders rest."""
        return self.matcher.resting_count()

    def on_forget_resting(self, _message: ForgetResting) -> None:
        """Take every resting order out (a rebuild; the market data stays)."""
        self.matcher.clear()

    def on_rest_again(self, message: RestAgain) -> tuple[str, ...]:
        """Rest the stored orders again without matching; the ids that rested already."""
        matcher = self.matcher
        already: list[str] = []
        for stored in message.orders:
            order = stored.order
            if matcher.remaining(order.order_id) is not None:
                already.append(order.order_id)
                continue
            protection = order.protection_price or order.price
            if protection is None:  # a MARKET order: recovery never sends one
                raise VenueError(f"order {order.order_id} has no price to rest at",
                                 code="NOT_RESTABLE")  # fmt: skip
            left = order.remaining_quantity
            # An untriggered stop goes back among the stops; a triggered STOP_LIMIT rests as
            # the LIMIT it became.
            kind = resting_type(order.type, order.triggered_at)
            untriggered = kind in STOPS
            venue_order = VenueOrder(
                order.order_id, order.account_id, order.symbol, order.side, kind,
                order.time_in_force, left, order.price, protection, order.post_only,
                order.stop_price if untriggered else None,
            )  # fmt: skip
            if untriggered:
                matcher.restore_stop(venue_order)
            else:
                matcher.restore(venue_order, left, _executions_so_far(stored))
        return tuple(already)


def _executions_so_far(stored: StoredOrder) -> int:
    """The highest n among the order's stored ``{order_id}:{n}`` executions (0 if none): its
    next execution id here is ``n + 1``, so ids stay unique across a restart."""
    prefix = f"{stored.order.order_id}:"
    return max(
        (
            execution_number(e.execution_id)
            for e in executions_of(stored)
            if e.execution_id.startswith(prefix)
        ),
        default=0,
    )
