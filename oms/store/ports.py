"""The small interfaces the engine is handed for persistence (in-memory here, MongoDB later).

Batch-first: the engine hands over everything one round of messages changed in one call, so a
real store writes with ``insert_many``/bulk updates instead of a round trip per order.

Threading and asyncio: the engine calls these from its dispatcher thread only, never from an
event loop, and never concurrently. ``save`` and ``publish`` must not block for I/O: an adapter
over an async driver queues the batch for its own writer (write-behind) and serves reads of
what it queued from memory, so ``get``/``load`` see a batch as soon as ``save`` returns;
``flush`` is the durability barrier (the stream layer commits Kafka offsets only after it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from oms.domain.enums import OrderStatus
from oms.domain.events import OrderEvent
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
    def get(self, order_id: str) -> Order | None:
        """The order's latest saved state, or None."""

    @abstractmethod
    def load(self, order_id: str) -> StoredOrder | None:
        """The order with its whole history, to rehydrate a passivated actor; None if unknown."""

    @abstractmethod
    def events(self, order_id: str) -> Sequence[OrderEvent]:
        """The order's history in sequence order (empty if unknown)."""

    @abstractmethod
    def query(self, query: OrderQuery) -> Sequence[Order]:
        """Orders matching ``query``, newest first, at most ``query.limit``."""

    def flush(self) -> None:  # noqa: B027 - optional hook: a store without a buffer has none
        """Make everything saved so far durable (no-op for stores that write through)."""


class EventSink(ABC):
    """Where order events are published for others (Kafka ``order-events`` later)."""

    @abstractmethod
    def publish(self, events: Sequence[OrderEvent]) -> None:
        """Publish one batch of events, in order."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming an idempotency key: who holds it, for which request."""

    first: bool  # True when this call claimed the key; False when an earlier request holds it
    order_id: str  # the order the key belongs to (this request's, or the earlier one's)
    fingerprint: bytes  # what the holder asked (see OrderRequest.fingerprint)


class IdempotencyStore(ABC):
    """Idempotency keys of order entry (Redis ``SET NX EX`` in production), async."""

    @abstractmethod
    async def claim(self, key: str, order_id: str, fingerprint: bytes, ttl_s: int) -> Claim:
        """Claim ``key`` for ``order_id`` unless someone holds it; answer who holds it."""


class OrderCache(ABC):
    """The hot order cache (Redis ``order:{order_id}``): read-your-writes right after a 202."""

    @abstractmethod
    async def put(self, order: Order, ttl_s: int) -> None:
        """Cache the order's latest known state."""

    @abstractmethod
    async def get(self, order_id: str) -> Order | None:
        """The cached order, or None."""
