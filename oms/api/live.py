"""Live order events: the engine's journal batches, tracked per order and fanned out by account.

The engine calls its listeners on its own thread after each journal flush; ``OrderFeed`` hands
each batch to the event loop at once (``call_soon_threadsafe``) and does everything else there:
it keeps the account and status of every open order (events other than ``OrderPlaced`` do not
carry the account), counts orders by status, rejections by reason and the latency of each order's
decision for ``/metrics``, and pushes each event to the WebSockets of ``/ws/orders`` subscribed
to its account.

The latency legs use the events' own clocks, so they cost a subtraction per order, no timer:
``entry`` from the order's placing (``OrderPlaced.at``: the door's clock, or the Kafka record's)
to risk's decision (``OrderAccepted``/``OrderRejected.at``, on the engine); ``durable`` from the
decision to the moment this feed got it, which in ``oms serve`` is once MongoDB has it (the
journal publishes only what is written); ``accept`` the two together: what a client waits from
placing an order to its decision being visible outside (the SLO's figure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal

import orjson
from aiohttp import WSMsgType, web

from oms.api import identity
from oms.api.encoding import event_json
from oms.domain.enums import OrderStatus
from oms.domain.events import (
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderDoubtResolved,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderInDoubt,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
)
from oms.domain.reasons import REJECTION_REASONS
from oms.durations import Durations
from oms.engine import Engine

logger = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 10_000  # a client this far behind is disconnected rather than buffered forever
LATENCY_LEGS = ("entry", "durable", "accept")
# From a few milliseconds to seconds (a store away); the design's SLO, 50 ms, is a bound.
LATENCY_BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Open:
    """An order the feed has seen placed and not yet seen end."""

    __slots__ = ("account_id", "placed_at", "quantity", "remaining", "status")

    def __init__(
        self, account_id: str, status: OrderStatus, remaining: Decimal, placed_at: float
    ) -> None:
        self.account_id = account_id
        self.status = status
        self.quantity = remaining  # the order's whole quantity (an amend changes it)
        self.remaining = remaining
        self.placed_at = placed_at


class OrderFeed:
    """Order events from the engine to ``/ws/orders`` subscribers and to the status counts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._open: dict[str, _Open] = {}
        self.open_by_status: Counter[OrderStatus] = Counter()  # open orders now, by status
        self.ended_by_status: Counter[OrderStatus] = Counter()  # orders that ended, ever
        # Orders that moved into each status, ever (a second partial fill is no move).
        self.entered: Counter[OrderStatus] = Counter(dict.fromkeys(OrderStatus, 0))
        # Rejections by reason code, ever (every code from 0: a rate needs a series).
        self.rejects: Counter[str] = Counter(dict.fromkeys(map(str, REJECTION_REASONS), 0))
        self.latency = {leg: Durations(LATENCY_BOUNDS_S) for leg in LATENCY_LEGS}
        self._subscribers: dict[str, set[asyncio.Queue[str | None]]] = {}
        self._batches: asyncio.Queue[Sequence[OrderEvent]] = asyncio.Queue()
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen to the engine's journal (call on the loop that serves the API)."""
        loop = asyncio.get_running_loop()
        batches = self._batches

        def listener(events: Sequence[OrderEvent]) -> None:  # on the engine thread: hand over
            loop.call_soon_threadsafe(batches.put_nowait, events)

        self._unsubscribe = self.engine.subscribe(listener)
        self._task = asyncio.create_task(self._run(), name="oms-order-feed")

    async def stop(self) -> None:
        """Stop listening and close every subscriber."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for queues in self._subscribers.values():
            for queue in queues:
                queue.put_nowait(None)

    def subscribe(self, account_id: str) -> asyncio.Queue[str | None]:
        """A queue of encoded messages for ``account_id`` (None: the feed closed it)."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.setdefault(account_id, set()).add(queue)
        return queue

    def unsubscribe(self, account_id: str, queue: asyncio.Queue[str | None]) -> None:
        """Forget a subscriber."""
        queues = self._subscribers.get(account_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[account_id]

    async def _run(self) -> None:
        while True:
            batch = await self._batches.get()
            try:
                untracked = self._fan_out(batch)
                for event in untracked:
                    await self._fan_out_untracked(event)
            except Exception:
                logger.exception("order feed could not handle a batch of %d events", len(batch))

    def _fan_out(self, batch: Sequence[OrderEvent]) -> list[OrderEvent]:
        """Track and send each event (no await per event: thousands a second pass here);
        return those of orders this feed never saw placed, in order."""
        untracked: list[OrderEvent] = []
        track, subscribers = self._track, self._subscribers
        now = time.time()
        for event in batch:
            tracked = track(event, now)
            if tracked is None:
                untracked.append(event)
                continue
            account_id, status = tracked
            queues = subscribers.get(account_id)
            if queues:
                self._send(queues, account_id, status, event)
        return untracked

    async def _fan_out_untracked(self, event: OrderEvent) -> None:
        """An order placed before this process listened: ask the engine where it belongs."""
        order = await self.engine.get_order(event.order_id)
        if order is None:
            return
        queues = self._subscribers.get(order.account_id)
        if queues:
            self._send(queues, order.account_id, order.status, event)

    def _send(
        self,
        queues: set[asyncio.Queue[str | None]],
        account_id: str,
        status: OrderStatus,
        event: OrderEvent,
    ) -> None:
        message = orjson.dumps(
            {
                "type": "order_event",
                "account_id": account_id,
                "order_id": event.order_id,
                "status": status.value,
                "event": event_json(event),
            }
        ).decode()
        for queue in list(queues):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                logger.warning("order subscriber of %s fell behind; closing it", account_id)
                self.unsubscribe(account_id, queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)

    def _track(self, event: OrderEvent, now: float) -> tuple[str, OrderStatus] | None:
        """Move the order to its next status (``now``: when the feed got it, for the latency);
        None for an order this feed never saw placed."""
        if isinstance(event, OrderPlaced):
            self._open[event.order_id] = _Open(
                event.account_id, OrderStatus.NEW, event.quantity, event.at
            )
            self.open_by_status[OrderStatus.NEW] += 1
            self.entered[OrderStatus.NEW] += 1
            return event.account_id, OrderStatus.NEW
        decided = isinstance(event, OrderAccepted | OrderRejected)
        if decided and isinstance(event, OrderRejected):
            self.rejects[event.reason.value] += 1
        entry = self._open.get(event.order_id)
        if entry is None:
            return None
        status = _next(entry, event)
        if status is not entry.status:
            self.entered[status] += 1
        if decided and entry.status is OrderStatus.NEW:
            self._decided(entry.placed_at, event.at, now)
        self.open_by_status[entry.status] -= 1
        entry.status = status
        if status.is_terminal:
            del self._open[event.order_id]
            self.ended_by_status[status] += 1
        else:
            self.open_by_status[status] += 1
        return entry.account_id, status

    def _decided(self, placed_at: float, decided_at: float, now: float) -> None:
        """Time the legs of one order's decision (clocks of other hosts may run a little
        apart: a leg never counts below zero)."""
        latency = self.latency
        latency["entry"].observe(max(decided_at - placed_at, 0.0))
        latency["durable"].observe(max(now - decided_at, 0.0))
        latency["accept"].observe(max(now - placed_at, 0.0))

    def counts(self) -> dict[OrderStatus, int]:
        """Orders by status: open ones as they stand, ended ones since the process started."""
        return {s: self.open_by_status[s] + self.ended_by_status[s] for s in OrderStatus}


def _next(entry: _Open, event: OrderEvent) -> OrderStatus:  # noqa: PLR0911 - one per event kind
    if isinstance(event, OrderFilled):
        entry.remaining -= event.quantity
        if entry.remaining <= 0:
            return OrderStatus.FILLED
        # A part filled while in doubt leaves it in doubt (the transition table's rule).
        in_doubt = entry.status is OrderStatus.IN_DOUBT
        return OrderStatus.IN_DOUBT if in_doubt else OrderStatus.PARTIALLY_FILLED
    if isinstance(event, OrderInDoubt):
        return OrderStatus.IN_DOUBT
    if isinstance(event, OrderDoubtResolved):
        filled = entry.remaining < entry.quantity
        return OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.ACCEPTED
    if isinstance(event, OrderAccepted):
        return OrderStatus.ACCEPTED
    if isinstance(event, OrderRejected):
        return OrderStatus.REJECTED
    if isinstance(event, OrderCancelled):
        return OrderStatus.CANCELLED
    if isinstance(event, OrderSettled):
        return OrderStatus.SETTLED
    if isinstance(event, OrderExpired):
        return OrderStatus.EXPIRED
    if isinstance(event, OrderAmended):  # the filled part stays; what is left follows the amend
        entry.remaining += event.quantity - entry.quantity
        entry.quantity = event.quantity
    return entry.status  # an AmendRejected or OrderTriggered keeps the status


ORDER_FEED_KEY = web.AppKey("order_feed", OrderFeed)


async def pump(ws: web.WebSocketResponse, queue: asyncio.Queue[str | None]) -> None:
    """Send what arrives on ``queue`` until it yields None or the client goes away.

    While messages are waiting they are sent back to back; only an empty queue costs a wait
    on both the queue and the client (a task each), so a busy feed pays it once per burst.
    """

    async def reader() -> None:  # answers pings, notices the close
        async for message in ws:
            if message.type is WSMsgType.ERROR:
                break

    reading = asyncio.create_task(reader())
    try:
        while not reading.done():
            if queue.empty():
                getting = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    {getting, reading}, return_when=asyncio.FIRST_COMPLETED
                )
                if getting not in done:
                    getting.cancel()
                    break
                item = getting.result()
            else:
                item = queue.get_nowait()
            if item is None:
                break
            await ws.send_str(item)
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        await ws.close()


async def ws_orders(request: web.Request) -> web.WebSocketResponse:
    """``WS /ws/orders?account_id=``: every event of the account's orders, as it happens."""
    account_id = identity.query_account(request, required=True)
    assert account_id is not None
    feed = request.app[ORDER_FEED_KEY]
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    queue = feed.subscribe(account_id)
    try:
        await ws.send_str(orjson.dumps({"type": "subscribed", "account_id": account_id}).decode())
        await pump(ws, queue)
    finally:
        feed.unsubscribe(account_id, queue)
    return ws
