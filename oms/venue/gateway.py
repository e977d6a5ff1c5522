"""The venue gateway: drives a ``VenuePort`` from the asyncio loop for the engine's venue actor.

The engine runs on one dispatcher thread that must never wait on the network, so its venue
actor (``oms.actors.network_venue``) only hands requests over (``place``, ``cancel``, ``query``:
safe from any thread); the gateway runs them on the loop and hands each outcome back through
``GatewayAnswers``, which the actor turns into messages to the order. Fills do not come back
that way: the gateway reads the venue's trades and publishes them as ``ApplyFill`` commands to
``executions`` (``publish_fills``), the engine's durable input, so a fill is never only in memory.

What it guarantees, per order:

- A place is sent once. If its outcome is unknown (``VenueOutcomeUnknown``) the order is
  reported in doubt and, after ``query_delay_s`` (longer than the venue's validity window for a
  request, so a "no such order" is final), the venue is asked by client order id, again and
  again with a growing pause while it does not answer, never sent the place again.
- A cancel whose outcome is unknown is reported in doubt and resolved the same way.
- Every trade of ours the venue reports on a tracked order is published once (by trade id), with
  the command id ``{order_id}:{trade_id}``, so a replay books nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from decimal import Decimal
from typing import Any, Protocol

from oms.domain.commands import ApplyFill
from oms.domain.enums import OrderType
from oms.domain.events import DoubtedRequest, VenueWord
from oms.venue.model import VenueOrder
from oms.venue.port import (
    PlaceRequest,
    RefusalReason,
    VenueOrderState,
    VenueOrderStatus,
    VenueOutcomeUnknown,
    VenuePort,
    VenueRefused,
    VenueTrade,
)
from oms.venue.trades import quote_fee, trade_fill_id

logger = logging.getLogger(__name__)

_WORDS = {
    VenueOrderStatus.OPEN: VenueWord.OPEN,
    VenueOrderStatus.FILLED: VenueWord.FILLED,
    VenueOrderStatus.CANCELLED: VenueWord.CLOSED,
    VenueOrderStatus.EXPIRED: VenueWord.CLOSED,
    VenueOrderStatus.REJECTED: VenueWord.CLOSED,
}
# The longest pause between two queries of an order in doubt while the venue does not answer.
_MAX_QUERY_PAUSE_S = 60.0


class GatewayAnswers(Protocol):
    """Where the gateway's outcomes go (called on the loop's thread; must be thread-safe)."""

    def said(self, order_id: str, word: VenueWord, venue_filled: Decimal) -> None:
        """The venue's word on the order (its answer to the place, or to a query)."""

    def refused(self, order_id: str, reason: str, detail: str) -> None:
        """The venue refused the place (``reason``: a ``VENUE_*`` rejection code)."""

    def in_doubt(self, order_id: str, request: DoubtedRequest, reason: str) -> None:
        """A place or cancel got no answer; the word follows through ``said``."""

    def cancelled(self, order_id: str, leaves: Decimal | None) -> None:
        """The cancel took ``leaves`` out (None: the venue no longer held the order)."""


PublishFills = Callable[[Sequence[ApplyFill]], Awaitable[None]]


class _Tracked:
    """An order the gateway watches for trades until the venue has nothing more to fill."""

    __slots__ = ("booked", "closed", "order", "venue_filled", "venue_order_id")

    def __init__(self, order: VenueOrder) -> None:
        self.order = order
        self.venue_order_id: str | None = None
        self.venue_filled = Decimal(0)
        self.booked = Decimal(0)  # what its published trades add up to
        self.closed = False  # the venue holds nothing more of it


class VenueGateway:
    """Runs venue requests on the loop and hands their outcomes back to the engine."""

    def __init__(
        self,
        port: VenuePort,
        publish_fills: PublishFills,
        *,
        query_delay_s: float,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Build on ``port`` (opened by the caller) inside the running loop."""
        self.port = port
        self._publish = publish_fills
        self._query_delay_s = query_delay_s
        self._poll_s = poll_s
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._answers: GatewayAnswers | None = None
        self._tracked: dict[str, _Tracked] = {}
        self._by_venue_id: dict[str, str] = {}
        self._seen_trades: set[str] = set()
        self._since: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None

    def bind(self, answers: GatewayAnswers) -> None:
        """Send outcomes to ``answers`` (the venue actor, once it has started)."""
        self._answers = answers

    def start(self) -> None:
        """Start polling the venue's trades."""
        self._poller = self._loop.create_task(self._poll_trades(), name="oms-venue-trades")

    async def stop(self) -> None:
        """Stop polling and drop the requests under way (their orders stay as they are)."""
        tasks = [*self._tasks, *([self._poller] if self._poller else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- from the engine's thread --------------------------------------------------------------

    def place(self, order: VenueOrder) -> None:
        """Send ``order`` to the venue once (any thread)."""
        self._soon(self._place, order)

    def cancel(self, order: VenueOrder) -> None:
        """Cancel ``order`` at the venue (any thread)."""
        self._soon(self._cancel, order)

    def query(self, order: VenueOrder) -> None:
        """Ask the venue for its word on ``order`` (a restored in-doubt order; any thread)."""
        self._soon(self._query, order, 0.0)

    def watch(self, order: VenueOrder) -> None:
        """Watch a restored open order for trades (any thread)."""
        self._soon(self._watch, order)

    def _soon(self, method: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        self._loop.call_soon_threadsafe(self._spawn, method, args)

    def _spawn(self, method: Callable[..., Coroutine[Any, Any, None]], args: Any) -> None:
        task = self._loop.create_task(method(*args))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("venue request failed: %r", task.exception())

    # -- requests --------------------------------------------------------------------------

    async def _place(self, order: VenueOrder) -> None:
        answers = self._bound()
        tracked = self._track(order)
        request = PlaceRequest(
            client_order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            type=order.type,
            quantity=order.quantity,
            price=order.limit_price if order.type is not OrderType.MARKET else None,
            time_in_force=order.time_in_force,
            post_only=order.post_only,
            stop_price=order.stop_price,
        )
        try:
            state = await self.port.place(request)
        except VenueRefused as refused:
            self._forget(order.order_id)
            answers.refused(order.order_id, _rejection_code(refused.reason), str(refused))
            return
        except VenueOutcomeUnknown as unknown:
            logger.warning("place of %s in doubt: %s", order.order_id, unknown.code)
            answers.in_doubt(order.order_id, DoubtedRequest.PLACE, unknown.code)
            await self._query(order, self._query_delay_s)
            return
        self._note(tracked, state)
        answers.said(order.order_id, _WORDS[state.status], state.filled)

    async def _cancel(self, order: VenueOrder) -> None:
        answers = self._bound()
        tracked = self._track(order)
        state: VenueOrderState | None
        try:
            state = await self.port.cancel(order.order_id, order.symbol)
        except VenueRefused:
            # Unknown order, or not cancellable: filled or cancelled already. Ask what it is.
            state = await self._fetch_or_doubt(order)
            if state is None:
                return
        except VenueOutcomeUnknown as unknown:
            logger.warning("cancel of %s in doubt: %s", order.order_id, unknown.code)
            answers.in_doubt(order.order_id, DoubtedRequest.CANCEL, unknown.code)
            await self._query(order, self._query_delay_s)
            return
        self._note(tracked, state)
        if state.status is VenueOrderStatus.OPEN:
            answers.in_doubt(order.order_id, DoubtedRequest.CANCEL, "VENUE_STILL_OPEN")
            await self._query(order, self._query_delay_s)
            return
        answers.cancelled(order.order_id, state.quantity - state.filled)

    async def _fetch_or_doubt(self, order: VenueOrder) -> VenueOrderState | None:
        """After a refused cancel: the order's state, or None when the answer went elsewhere
        (not held: its fills are on their way; unknown: in doubt, and queried)."""
        answers = self._bound()
        try:
            return await self.port.fetch_order(order.order_id, order.symbol)
        except VenueRefused:
            answers.cancelled(order.order_id, None)
        except VenueOutcomeUnknown as unknown:
            answers.in_doubt(order.order_id, DoubtedRequest.CANCEL, unknown.code)
            await self._query(order, self._query_delay_s)
        return None

    async def _query(self, order: VenueOrder, delay_s: float) -> None:
        """Ask the venue until it answers; its word goes to the order (never a second place)."""
        answers = self._bound()
        tracked = self._track(order)
        pause = max(delay_s, self._poll_s)
        if delay_s:
            await asyncio.sleep(delay_s)
        while True:
            try:
                state = await self.port.fetch_order(order.order_id, order.symbol)
            except VenueRefused as refused:
                if refused.reason is RefusalReason.ORDER_NOT_FOUND:
                    self._forget(order.order_id)
                    answers.said(order.order_id, VenueWord.NOT_FOUND, Decimal(0))
                    return
                logger.warning("query of %s refused: %s", order.order_id, refused.code)
            except VenueOutcomeUnknown as unknown:
                logger.info("query of %s got no answer: %s", order.order_id, unknown.code)
            else:
                self._note(tracked, state)
                answers.said(order.order_id, _WORDS[state.status], state.filled)
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_QUERY_PAUSE_S)

    async def _watch(self, order: VenueOrder) -> None:
        tracked = self._track(order)
        with contextlib.suppress(VenueRefused, VenueOutcomeUnknown):
            self._note(tracked, await self.port.fetch_order(order.order_id, order.symbol))

    # -- trades ----------------------------------------------------------------------------

    async def _poll_trades(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            for symbol in {t.order.symbol for t in self._tracked.values() if t.venue_order_id}:
                try:
                    trades = await self.port.my_trades(symbol, self._since.get(symbol))
                except (VenueRefused, VenueOutcomeUnknown) as failed:
                    logger.info("trades of %s not read: %s", symbol, failed.code)
                    continue
                try:
                    await self._book(trades)
                except Exception as error:  # noqa: BLE001 - reported; the next round tries again
                    logger.warning("fills of %s not published: %r", symbol, error)

    async def _book(self, trades: Sequence[VenueTrade]) -> None:
        """Publish the new trades of tracked orders as fills, once each."""
        new: list[tuple[VenueTrade, ApplyFill]] = []
        for trade in trades:
            if trade.trade_id in self._seen_trades:
                continue
            order_id = self._by_venue_id.get(trade.venue_order_id)
            tracked = self._tracked.get(order_id) if order_id else None
            if tracked is None:
                continue  # not ours to book here (another replica's, or before our time)
            order = tracked.order
            fill = ApplyFill(
                command_id=trade_fill_id(order.order_id, trade.trade_id),
                order_id=order.order_id,
                account_id=order.account_id,
                quantity=trade.quantity,
                price=trade.price,
                fee=quote_fee(trade, order.symbol),
                executed_at=trade.executed_at,
            )
            new.append((trade, fill))
        if not new:
            return
        # Published before they are marked seen: a failed publish is tried again next round.
        await self._publish([fill for _, fill in new])
        for trade, fill in new:
            self._seen_trades.add(trade.trade_id)
            tracked = self._tracked.get(fill.order_id)
            if tracked is not None:
                tracked.booked += fill.quantity
                if tracked.closed and tracked.booked >= tracked.venue_filled:
                    self._forget(fill.order_id)

    # -- bookkeeping -----------------------------------------------------------------------

    def _track(self, order: VenueOrder) -> _Tracked:
        tracked = self._tracked.get(order.order_id)
        if tracked is None:
            tracked = self._tracked[order.order_id] = _Tracked(order)
            # Trades are read from a little before the first order of the symbol on.
            since = self._clock() - 60.0
            self._since[order.symbol] = min(self._since.get(order.symbol, since), since)
        return tracked

    def _note(self, tracked: _Tracked, state: VenueOrderState) -> None:
        if state.venue_order_id:
            tracked.venue_order_id = state.venue_order_id
            self._by_venue_id[state.venue_order_id] = tracked.order.order_id
        tracked.venue_filled = state.filled
        tracked.closed = state.status is not VenueOrderStatus.OPEN
        if tracked.closed and tracked.booked >= state.filled:
            self._forget(tracked.order.order_id)

    def _forget(self, order_id: str) -> None:
        tracked = self._tracked.pop(order_id, None)
        if tracked is not None and tracked.venue_order_id:
            self._by_venue_id.pop(tracked.venue_order_id, None)

    def _bound(self) -> GatewayAnswers:
        if self._answers is None:
            raise RuntimeError("the venue gateway has no venue actor to answer")
        return self._answers

    def tracked_count(self) -> int:
        """How many orders the gateway watches (open at the venue, or fills still due)."""
        return len(self._tracked)


def _rejection_code(reason: RefusalReason) -> str:
    """The rejection code of a refused place (the order process's ``VENUE_*`` reasons)."""
    if reason in (
        RefusalReason.INSUFFICIENT_FUNDS,
        RefusalReason.INVALID_ORDER,
        RefusalReason.DUPLICATE_ORDER,
        RefusalReason.UNKNOWN_SYMBOL,
        RefusalReason.AUTHENTICATION,
    ):
        return reason.value
    return RefusalReason.REFUSED.value
