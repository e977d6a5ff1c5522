"""The venue actor of a network venue (``OMS_VENUE=ccxt``): the simulated venue's protocol, but
nothing is matched here; every request goes to the ``VenueGateway`` on the asyncio loop.

It speaks the same messages as ``SimulatedVenue`` (``Submit``, ``CancelAtVenue``,
``AmendResting``, ``MarketTick``, ``GetBook``, ``CountResting``, ``ForgetResting``,
``RestAgain``) plus ``QueryAtVenue``, so the order actors and recovery do not know which venue
they talk to. The dispatcher thread never waits: it hands a request to the gateway and goes on;
the gateway's outcome comes back as a ``GatewayAnswer`` to this actor, which tells the order's
actor (``VenueSaid``, ``VenueRefusedPlace``, ``VenueInDoubt``, ``VenueCancelled``). Fills come on
the ``executions`` topic, as any external fill does.

Stale feeds: it notes when each book moved (``MarketTick``) and refuses a MARKET order on a
symbol whose feed has stopped with ``MARKET_DATA_STALE`` before sending anything, as the
simulated venue does (``oms.marketdata.freshness``).

Amends: the venue's ``amend_support`` decides; Binance spot has none, so an amend is answered
"refused, nothing changed" at once (the order's ``AmendRejected``), never faked by a cancel and
a new place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

from pykka import ActorDeadError, ActorRef

from oms.actors.messages import (
    AmendResting,
    CancelAtVenue,
    ForgetResting,
    MarketTick,
    QueryAtVenue,
    RestAgain,
    Submit,
    VenueAmended,
    VenueCancelled,
    VenueInDoubt,
    VenueRefusedPlace,
    VenueSaid,
)
from oms.actors.ports import StoredOrder
from oms.actors.runtime import DispatchedActor, Dispatcher, tell
from oms.actors.venue import CountResting, GetBook
from oms.domain.enums import OrderType
from oms.domain.events import DoubtedRequest, VenueWord
from oms.domain.messages import distinct
from oms.domain.order_terms import resting_type
from oms.domain.reasons import OrderCheckReason, known_rejection_reason
from oms.marketdata import MarketData, OrderBook, Tick
from oms.marketdata.freshness import Freshness
from oms.venue import VenueOrder
from oms.venue.gateway import VenueGateway

logger = logging.getLogger(__name__)

_STALE_DETAIL = (
    "the symbol's market data has stopped: a MARKET order would fill against an old book"
)


@distinct
class GatewayAnswer(NamedTuple):
    """An outcome from the gateway for the order ``order_id``'s actor."""

    order_id: str
    message: Any


class NetworkVenue(DispatchedActor):
    """Hands orders to the gateway and its outcomes to the orders' actors."""

    handlers: ClassVar[dict[type, str]] = {
        Submit: "on_submit",
        CancelAtVenue: "on_cancel",
        AmendResting: "on_amend",
        QueryAtVenue: "on_query",
        GatewayAnswer: "on_answer",
        MarketTick: "on_tick",
        GetBook: "on_get_book",
        CountResting: "on_count_resting",
        ForgetResting: "on_forget_resting",
        RestAgain: "on_rest_again",
    }

    def __init__(
        self,
        dispatcher: Dispatcher,
        market: MarketData,
        gateway: VenueGateway,
        *,
        clock: Callable[[], float] = time.time,
        freshness: Freshness | None = None,
    ) -> None:
        """Hand requests to ``gateway``; keep ``market`` for the last prices and books; note in
        ``freshness`` when each book moved, by ``clock`` (None: no stale-feed check)."""
        super().__init__(dispatcher)
        self.market = market
        self.gateway = gateway
        self.clock = clock
        self.freshness = freshness
        # Orders sent to the venue and not ended, with the actor that waits for their answers.
        self.orders: dict[str, tuple[VenueOrder, ActorRef[Any] | None]] = {}

    def on_submit(self, message: Submit) -> None:
        """Send the order to the venue; its answer comes back as a ``GatewayAnswer``.

        A MARKET order on a symbol whose feed has stopped is refused here, never sent, as the
        simulated venue refuses it (``MARKET_DATA_STALE``): the exchange would fill it against a
        book nobody here has seen, at a price risk reserved for from an old one."""
        order = message.order
        freshness = self.freshness
        if (
            freshness is not None
            and order.type is OrderType.MARKET
            and freshness.stale(order.symbol, self.clock())
        ):
            refused = VenueRefusedPlace(OrderCheckReason.MARKET_DATA_STALE, _STALE_DETAIL)
            tell(message.reply_to, refused)
            return
        self.orders[order.order_id] = (order, message.reply_to)
        self.gateway.place(order)

    def on_cancel(self, message: CancelAtVenue) -> None:
        """Cancel at the venue. A withdrawal (no reply wanted: the order filled whole) sends
        nothing: there is nothing left there to take."""
        known = self.orders.get(message.order_id)
        if message.reply_to is None:
            return
        if known is None:
            # Not sent from this replica's memory (restored without RestAgain): its fills, if
            # any, come on executions; reconciliation owns what else the venue may hold.
            tell(message.reply_to, VenueCancelled(message.order_id, None))
            return
        self.orders[message.order_id] = (known[0], message.reply_to)
        self.gateway.cancel(known[0])

    def on_amend(self, message: AmendResting) -> None:
        """Refused, nothing changed: no adapter amends in place yet (Binance spot has no amend,
        ``AmendSupport.UNSUPPORTED``), and a cancel and a new place is not an amend."""
        refused = OrderCheckReason.VENUE_AMEND_UNSUPPORTED
        tell(message.reply_to, VenueAmended(message.order.order_id, Decimal(0), refused))

    def on_query(self, message: QueryAtVenue) -> None:
        """Ask the venue for its word on a restored in-doubt order."""
        order = message.order
        self.orders[order.order_id] = (order, message.reply_to)
        self.gateway.query(order)

    def on_answer(self, message: GatewayAnswer) -> None:
        """Tell the order's actor what the gateway learnt."""
        known = self.orders.get(message.order_id)
        reply_to = known[1] if known is not None else None
        if reply_to is None:
            logger.warning("venue answer for %s has nobody waiting", message.order_id)
            return
        answer = message.message
        if isinstance(answer, VenueSaid | VenueRefusedPlace) and (
            isinstance(answer, VenueRefusedPlace) or answer.word is VenueWord.NOT_FOUND
        ):
            self.orders.pop(message.order_id, None)
        try:
            tell(reply_to, answer)
        except ActorDeadError:
            # Passivated or dropped by a rebuild: the store has it; recovery asks again.
            logger.warning("venue answer for %s found its actor gone", message.order_id)

    def on_tick(self, message: MarketTick) -> None:
        """Keep the book for last prices and snapshots (the venue matches, not this actor), and
        note when it moved for the stale-feed check (an older tick the book ignores does not
        count: it is not the market any more)."""
        tick = message.tick
        if self.market.apply(tick) and self.freshness is not None:
            self.freshness.saw(tick.symbol, self.clock())

    def on_get_book(self, message: GetBook) -> Tick | None:
        """A snapshot of the book (None before the first tick)."""
        book: OrderBook = self.market.book(message.symbol)
        return book.snapshot(message.depth)

    def on_count_resting(self, _message: CountResting) -> int:
        """How many orders the gateway watches at the venue."""
        return self.gateway.tracked_count()

    def on_forget_resting(self, _message: ForgetResting) -> None:
        """A rebuild: forget who waits (the orders stay at the venue; RestAgain follows)."""
        self.orders.clear()

    def on_rest_again(self, message: RestAgain) -> tuple[str, ...]:
        """Recovery: the stored open orders are still at the venue; watch them for trades."""
        for stored in message.orders:
            order = _venue_order(stored)
            self.orders[order.order_id] = (order, None)
            self.gateway.watch(order)
        return ()


class NetworkAnswers:
    """The gateway's answers as messages to the venue actor (safe from the loop's thread)."""

    def __init__(self, venue: ActorRef[Any]) -> None:
        """Answer into ``venue`` (a started ``NetworkVenue``)."""
        self._venue = venue

    def said(self, order_id: str, word: VenueWord, venue_filled: Decimal) -> None:
        """The venue's word on the order."""
        self._venue.tell(GatewayAnswer(order_id, VenueSaid(word, venue_filled)))

    def refused(self, order_id: str, reason: str, detail: str) -> None:
        """The venue refused the place."""
        code = known_rejection_reason(reason) or OrderCheckReason.VENUE_REFUSED
        self._venue.tell(GatewayAnswer(order_id, VenueRefusedPlace(code, detail)))

    def in_doubt(self, order_id: str, request: DoubtedRequest, reason: str) -> None:
        """A place or cancel got no answer."""
        self._venue.tell(GatewayAnswer(order_id, VenueInDoubt(request, reason)))

    def cancelled(self, order_id: str, leaves: Decimal | None) -> None:
        """The cancel took ``leaves`` out (None: not held)."""
        self._venue.tell(GatewayAnswer(order_id, VenueCancelled(order_id, leaves)))


def _venue_order(stored: StoredOrder) -> VenueOrder:
    order = stored.order
    protection = order.protection_price or order.price or Decimal(0)
    return VenueOrder(
        order.order_id, order.account_id, order.symbol, order.side,
        resting_type(order.type, order.triggered_at), order.time_in_force,
        order.remaining_quantity, order.price, protection, order.post_only, order.stop_price,
    )  # fmt: skip
