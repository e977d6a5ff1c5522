"""In-memory stores for unit tests, benchmarks and the demo: the ports, with dicts behind them."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from oms.domain.access import ApiKey
from oms.domain.errors import AccountExists, UnknownAccount
from oms.domain.events import OrderEvent
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.orders import Order
from oms.engine.ports import (
    AccountRecord,
    AccountRepository,
    Claim,
    EventSink,
    IdempotencyStore,
    OrderCache,
    OrderQuery,
    OrderRepository,
    StoredOrder,
)

T = TypeVar("T")


def answered(value: T) -> Future[T]:
    """A future that is already resolved with ``value`` (a read memory answers at once)."""
    future: Future[T] = Future()
    future.set_result(value)
    return future


class MemoryOrderRepository(OrderRepository):
    """Orders and events in dicts; per-account creation order kept for newest-first listing.

    It holds everything, so every read answers at once from memory. Reads from another thread
    than the engine's see the dicts between two of its steps (each dict or list operation is
    atomic under the GIL), which is all unit tests and the demo need.
    """

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self._events: dict[str, list[OrderEvent]] = {}
        self._by_account: dict[str, list[str]] = {}
        self._all: list[str] = []
        self.batches = 0

    def save(self, orders: Sequence[Order], events: Sequence[OrderEvent]) -> None:
        """Record one batch."""
        self.batches += 1
        history = self._events
        for event in events:
            found = history.get(event.order_id)
            if found is None:
                history[event.order_id] = [event]
            else:
                found.append(event)
        known = self._orders
        for order in orders:
            if order.order_id not in known:
                self._by_account.setdefault(order.account_id, []).append(order.order_id)
                self._all.append(order.order_id)
            known[order.order_id] = order

    def get(self, order_id: str) -> Order | None:
        """The latest state, or None."""
        return self._orders.get(order_id)

    def load(self, order_id: str) -> StoredOrder | None:
        """State and history."""
        order = self._orders.get(order_id)
        if order is None:
            return None
        return StoredOrder(order, tuple(self._events.get(order_id, ())))

    def held(self, order_id: str) -> StoredOrder | None:
        """State and history (memory holds every order here)."""
        return self.load(order_id)

    def read(
        self, order_id: str, *, delay_s: float = 0.0, attempt: int = 0
    ) -> Future[StoredOrder | None]:
        """``load``, already resolved: nothing here is ever out of memory."""
        return answered(self.load(order_id))

    def read_page(self, query: OrderQuery) -> Future[Sequence[Order]]:
        """``query``, already resolved."""
        return answered(self.query(query))

    def events(self, order_id: str) -> Sequence[OrderEvent]:
        """The history, oldest first."""
        return tuple(self._events.get(order_id, ()))

    def query(self, query: OrderQuery) -> Sequence[Order]:
        """Newest first (creation order), filtered, from the cursor on."""
        ids = self._all if query.account_id is None else self._by_account.get(query.account_id, [])
        found: list[Order] = []
        for order_id in reversed(ids):
            order = self._orders[order_id]
            if query.before is not None and (order.created_at, order.order_id) >= query.before:
                continue
            if query.symbol is not None and order.symbol != query.symbol:
                continue
            if query.status is not None and order.status is not query.status:
                continue
            found.append(order)
            if len(found) >= query.limit:
                break
        return found

    def __len__(self) -> int:
        """How many orders are stored."""
        return len(self._orders)


class MemoryEventSink(EventSink):
    """Keeps the last ``capacity`` published events (bounded: a benchmark must not grow it)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.events: deque[OrderEvent] = deque(maxlen=capacity)
        self.published = 0

    def publish(self, events: Sequence[OrderEvent]) -> None:
        """Remember the batch."""
        self.events.extend(events)
        self.published += len(events)


class MemoryIdempotencyStore(IdempotencyStore):
    """Idempotency keys in a dict (no expiry): for unit tests only."""

    def __init__(self) -> None:
        self._claims: dict[str, Claim] = {}

    async def claim(self, key: str, order_id: str, fingerprint: bytes, ttl_s: int) -> Claim:
        """First caller wins; later callers learn the holder."""
        held = self._claims.get(key)
        if held is not None:
            return Claim(first=False, order_id=held.order_id, fingerprint=held.fingerprint)
        self._claims[key] = Claim(first=True, order_id=order_id, fingerprint=fingerprint)
        return self._claims[key]


class MemoryOrderCache(OrderCache):
    """Orders in a dict (no expiry): for unit tests only."""

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}

    async def put(self, order: Order, ttl_s: int) -> None:
        """Keep the latest state."""
        self._orders[order.order_id] = order

    async def get(self, order_id: str) -> Order | None:
        """The kept order, or None."""
        return self._orders.get(order_id)


class MemoryAccountRepository(AccountRepository):
    """Accounts in a dict: for unit tests and the in-memory demo."""

    def __init__(self) -> None:
        self._accounts: dict[str, AccountRecord] = {}
        self._global_state = TradingState.ACTIVE

    async def open(self, record: AccountRecord) -> None:
        """Keep a new account; refuse a taken id."""
        if record.account_id in self._accounts:
            raise AccountExists(f"account {record.account_id!r} already exists")
        self._accounts[record.account_id] = record

    async def set_limits(self, account_id: str, limits: RiskLimits) -> AccountRecord:
        """Replace the limits, one version up."""
        return self._next_version(account_id, limits=limits)

    async def set_trading_state(self, account_id: str, state: TradingState) -> AccountRecord:
        """Replace the kill switch, one version up."""
        return self._next_version(account_id, trading_state=state)

    async def set_global_trading_state(self, state: TradingState) -> None:
        """Keep the global kill switch."""
        self._global_state = state

    async def global_trading_state(self) -> TradingState:
        """The global kill switch kept last."""
        return self._global_state

    def _next_version(self, account_id: str, **changes: Any) -> AccountRecord:
        held = self._accounts.get(account_id)
        if held is None:
            raise UnknownAccount(f"account {account_id!r} is not known")
        record = dataclasses.replace(held, **changes, version=held.version + 1)
        self._accounts[account_id] = record
        return record

    async def get(self, account_id: str) -> AccountRecord | None:
        """The latest record, or None."""
        return self._accounts.get(account_id)

    async def load_all(self) -> Sequence[AccountRecord]:
        """Every account, in opening order."""
        return list(self._accounts.values())


class MemoryKeyDirectory:
    """API keys in a dict (``oms.api.credentials.KeyDirectory``), for unit tests."""

    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}

    def add(self, record: ApiKey) -> None:
        """Store a key (``oms.store.api_keys.mint_key`` makes one)."""
        self.keys[record.key_id] = record

    def revoke(self, key_id: str, at: float) -> None:
        """Mark a key revoked."""
        self.keys[key_id] = dataclasses.replace(self.keys[key_id], revoked_at=at)

    async def find_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, or None."""
        return self.keys.get(key_id)


class MemoryTicketStore:
    """WebSocket tickets in a dict (``oms.api.credentials.TicketStore``), for unit tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tickets: dict[str, tuple[float, bytes]] = {}

    async def put_ticket(self, ticket: str, payload: bytes, ttl_s: int) -> None:
        """Hold ``payload`` until ``ttl_s`` from now."""
        self._tickets[ticket] = (self._clock() + ttl_s, payload)

    async def take_ticket(self, ticket: str) -> bytes | None:
        """The payload, once, if not expired."""
        held = self._tickets.pop(ticket, None)
        if held is None or held[0] <= self._clock():
            return None
        return held[1]
