"""The small interfaces the engine is handed for persistence (in-memory here, MongoDB later).

Batch-first: the engine hands over everything one round of messages changed in one call, so a
real store writes with ``insert_many``/bulk updates instead of a round trip per order.

Threading and asyncio: the engine calls ``save``, ``after_durable`` and ``flush`` from its
dispatcher thread only, never concurrently, and nothing it calls there may wait for I/O: ``save``
queues the batch for the store's own writer (write-behind) and serves what it queued from memory,
so ``held`` sees a batch as soon as ``save`` returns; ``flush`` is the durability barrier (the
stream layer commits Kafka offsets only after it). What memory lacks (an old finished order, a
page past what memory keeps) is read with ``read``/``read_page``: they return at once with a
future that the store resolves off the caller's thread, within its read timeout, or fails with
``StoreUnavailable``. Any thread may read: the directory (a load it waits for as a message), the
API (from its event loop), tools.

Nothing is told to the outside before it is durable: the journal hands each batch's events to
the event sink and the listeners through ``after_durable``, so an ``order-events`` record, a
WebSocket message or a cached state never describes a change a crash could take back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal

from oms.domain.enums import OrderStatus, Side
from oms.domain.events import OrderEvent, OrderFilled
from oms.domain.orders import Order


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """An order as the store holds it: its state and its history (for rehydrating an actor)."""

    order: Order
    events: tuple[OrderEvent, ...]


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """Which orders to list, newest first; ``before`` is the cursor (created_at, order_id)."""

    account_id: str | None = None
    symbol: str | None = None
    status: OrderStatus | None = None
    limit: int = 100
    before: tuple[float, str] | None = None


class OrderRepository(ABC):
    """Orders and their events: written in batches, read back for queries and rehydration."""

    @abstractmethod
    def save(self, orders: Sequence[Order], events: Sequence[OrderEvent]) -> None:
        """Record one batch: the latest state of each changed order and the events, in order."""

    @abstractmethod
    def held(self, order_id: str) -> StoredOrder | None:
        """The order with its history if memory holds it (no I/O, any thread); else None.

        None with ``may_be_stored`` False means the order is surely unknown.
        """

    def may_be_stored(self, order_id: str) -> bool:
        """True when memory lacks the order but the store may have it: ask ``read``."""
        return False

    @abstractmethod
    def read(
        self, order_id: str, *, delay_s: float = 0.0, attempt: int = 0
    ) -> Future[StoredOrder | None]:
        """The order with its history (None if unknown): from memory at once, else from the store
        off the caller's thread, starting after ``delay_s`` (a retry's back-off).

        Never blocks and never raises: the future fails with ``StoreUnavailable`` when the store
        does not answer within its read timeout (``StoreClosed`` when it is not open). A retry
        says which one it is (``attempt``, 0 for the first read): a store that bounds its reads
        gives each retry longer, so that one slower than the bound, rather than down, answers
        in the end instead of failing every attempt alike.
        """

    @abstractmethod
    def read_page(self, query: OrderQuery) -> Future[Sequence[Order]]:
        """Orders matching ``query``, newest first by (created_at, order_id), at most
        ``query.limit``; resolved as ``read`` is."""

    def flush(self) -> None:  # noqa: B027 - optional hook: a store without a buffer has none
        """Make everything saved so far durable (no-op for stores that write through)."""

    # True when ``durable`` waits for the store's own writer from an event loop (a write-behind
    # store); False when durability is ``flush`` on the engine's thread (``Engine.durable``).
    waits_async: bool = False

    async def durable(self) -> None:
        """Wait, on the caller's event loop, until everything saved so far is durable.

        Only called when ``waits_async``; a store that is durable through ``flush`` needs none.
        """
        raise NotImplementedError

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once everything saved so far is durable, in registration order.

        A store that writes through is durable when ``save`` returns: it calls at once. A
        write-behind store calls from its writer once the write covering it succeeded (and
        never, if it never does: what is not durable is not announced).
        """
        callback()


class EventSink(ABC):
    """Where order events are published for others (Kafka ``order-events`` later)."""

    @abstractmethod
    def publish(self, events: Sequence[OrderEvent]) -> None:
        """Publish one batch of events, in order."""


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill as the ledger books it: what recovery replays to rebuild balances and positions."""

    execution_id: str
    order_id: str
    account_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    executed_at: float


def execution_number(execution_id: str) -> int:
    """The n of a simulated venue's execution id ``{order_id}:{n}`` (0 for other ids)."""
    _, _, n = execution_id.rpartition(":")
    return int(n) if n.isdigit() else 0


def executions_of(stored: StoredOrder) -> list[Execution]:
    """The fills of one order, in the order they were applied (an ``OrderFilled`` is a fill)."""
    order = stored.order
    return [
        Execution(
            event.command_id,
            order.order_id,
            order.account_id,
            order.symbol,
            order.side,
            event.quantity,
            event.price,
            event.fee,
            event.at,
        )
        for event in stored.events
        if isinstance(event, OrderFilled)
    ]
