"""The journal: what one round of messages changed, written and published as one batch."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from oms.actors.ports import EventSink, OrderRepository
from oms.domain.enums import TERMINAL_STATUSES
from oms.domain.events import OrderEvent
from oms.domain.orders import Order

logger = logging.getLogger(__name__)

Listener = Callable[[Sequence[OrderEvent]], None]

# Tested directly in ``record`` (the ``is_terminal`` property is a Python call more per event);
# the domain's own set, so a terminal status added there is finished here too.
_TERMINAL = TERMINAL_STATUSES


class Journal:
    """Collects order events on the dispatcher thread; ``flush`` hands them over in one batch.

    The dispatcher flushes it whenever its queue runs dry and every few hundred messages under
    load, so the store sees ``save`` once per round instead of once per event, and listeners
    get each batch in the order the events happened. Owned by the dispatcher thread.
    """

    def __init__(self, repository: OrderRepository, sink: EventSink | None = None) -> None:
        self.repository = repository
        self._sink = sink
        self._events: list[OrderEvent] = []
        self._orders: dict[str, Order] = {}
        # Orders recorded terminal since the last flush (an id may repeat): what
        # ``flush_finished`` hands over, noted here rather than found by scanning ``_orders``.
        self._finished: list[str] = []
        self._listeners: list[Listener] = []

    def record(self, order: Order, event: OrderEvent) -> None:
        """Remember an applied event and the order it produced.

        A terminal order is noted as finished here, one set lookup per event: scanning
        every held order for its status each time ``flush_finished`` runs (every 256 messages,
        thousands of orders held under load) took a tenth of the dispatcher's time in
        ``bench/engine.py`` (py-spy).
        """
        self._events.append(event)
        order_id = order.order_id
        self._orders[order_id] = order
        if order.status in _TERMINAL:
            self._finished.append(order_id)

    def record_all(self, order: Order, events: Sequence[OrderEvent]) -> None:
        """``record`` of each of ``events`` (what one message applied) with the ``order`` they
        produced, in one call: the order actor's shell records every message's events here."""
        self._events.extend(events)
        order_id = order.order_id
        self._orders[order_id] = order
        if order.status in _TERMINAL:
            self._finished.append(order_id)

    def holds(self, order_id: str) -> bool:
        """True if an event of this order is recorded but not yet handed to the store."""
        return order_id in self._orders

    def flush(self) -> None:
        """Save everything recorded since the last flush; publish it once it is durable.

        Publishing waits for the store (``after_durable``): a replayed command after a crash may
        fill at other prices, so an event seen outside must never be one the crash took back.
        """
        events = self._events
        if not events:
            return
        orders = list(self._orders.values())
        self._events = []
        self._orders = {}
        self._finished = []
        self._hand_over(orders, events)

    def flush_finished(self) -> None:
        """Under load (the queue never runs dry): hand over only the orders that have finished.

        An order's life is a few messages apart in a queue that many orders share, so a flush
        every few hundred messages would catch most orders midway and the store would write each
        of them twice or more (measured: 2.3 documents per order). Finished orders go now, whole;
        the others wait for their end or for the queue to run dry (``flush``).
        """
        if not self._finished:
            return
        orders = self._orders
        finished = dict.fromkeys(self._finished)  # each once, in the order they finished
        if len(finished) == len(orders):
            self.flush()
            return
        self._finished = []
        events: list[OrderEvent] = []
        kept: list[OrderEvent] = []
        for event in self._events:
            (events if event.order_id in finished else kept).append(event)
        self._events = kept
        self._hand_over([orders.pop(order_id) for order_id in finished], events)

    def _hand_over(self, orders: list[Order], events: list[OrderEvent]) -> None:
        self.repository.save(orders, events)
        if self._sink is not None or self._listeners:
            self.repository.after_durable(lambda: self._publish(events))

    def _publish(self, events: list[OrderEvent]) -> None:
        """Hand a durable batch to the sink and the listeners (the store's writer thread, or
        the dispatcher for a store that writes through)."""
        if self._sink is not None:
            self._sink.publish(events)
        for listener in tuple(self._listeners):
            try:
                listener(events)
            except Exception:
                logger.exception("order-event listener %r failed", listener)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(batch)`` once each flushed batch is durable; returns unsubscribe.

        The batch is durable when the listener sees it. A listener must be quick and thread-safe
        (hand the batch to a queue or an event loop): it runs on the store's writer thread, or
        inside the engine's only thread for a store that writes through.
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe
