"""The ports the engine and the API are handed besides the actors' (accounts, idempotency keys,
the hot order cache): the adapters in ``oms.store`` implement them, ``oms.service`` plugs them in.

The persistence ports the actors use themselves (``OrderRepository``, ``EventSink``) are declared
in ``oms.actors.ports``; they are named here too so that the layers above the engine import every
port from one place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from oms.actors.ports import (
    EventSink,
    Execution,
    OrderQuery,
    OrderRepository,
    StoredOrder,
    executions_of,
)
from oms.domain.global_limits import GlobalLimits, GlobalReservation, Reserved, Usage
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.orders import Order

__all__ = [
    "AccountRecord",
    "AccountRepository",
    "Claim",
    "EventSink",
    "Execution",
    "GlobalLimitStore",
    "IdempotencyStore",
    "OrderCache",
    "OrderQuery",
    "OrderRepository",
    "StoredOrder",
    "executions_of",
]


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


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """What must survive a restart about an account: its opening balances, current limits and
    kill switch.

    Balances move only through fills, so the opening balances plus the executions (stored with
    the orders) rebuild every balance and position; ``limits`` None means the engine's default.
    The kill switch is kept because a restart must not resume trading an operator halted.
    """

    account_id: str
    balances: Mapping[str, Decimal]
    limits: RiskLimits | None = None
    opened_at: float = 0.0
    version: int = 1  # 1 when opened, +1 per change of limits or kill switch
    trading_state: TradingState = TradingState.ACTIVE


class AccountRepository(ABC):
    """Accounts (opening balances and limits), async: called from the API or the service."""

    @abstractmethod
    async def open(self, record: AccountRecord) -> None:
        """Record a new account; raises ``AccountExists`` if the id is taken."""

    @abstractmethod
    async def set_limits(self, account_id: str, limits: RiskLimits) -> AccountRecord:
        """Record the account's new limits; raises ``UnknownAccount`` for an unknown id."""

    @abstractmethod
    async def set_trading_state(self, account_id: str, state: TradingState) -> AccountRecord:
        """Record the account's kill switch; raises ``UnknownAccount`` for an unknown id."""

    @abstractmethod
    async def set_global_trading_state(self, state: TradingState) -> None:
        """Record the kill switch of every account at once (the global one)."""

    @abstractmethod
    async def global_trading_state(self) -> TradingState:
        """The global kill switch last recorded (ACTIVE if it never was)."""

    @abstractmethod
    async def get(self, account_id: str) -> AccountRecord | None:
        """The account's latest record, or None."""

    @abstractmethod
    async def load_all(self) -> Sequence[AccountRecord]:
        """Every account's latest record (to rebuild the risk book after a restart)."""


class GlobalLimitStore(ABC):
    """The firm-wide caps and every replica's reservations against them (Redis in production:
    ``oms.store.redis_global_limits``, which says what each call does); async. Each call
    raises ``GlobalLimitsUnavailable`` when the store does not answer in time."""

    @abstractmethod
    async def set_limits(self, limits: GlobalLimits) -> None:
        """Replace every cap."""

    @abstractmethod
    async def limits(self) -> GlobalLimits:
        """The caps as last set."""

    @abstractmethod
    async def reserve(self, orders: Sequence[GlobalReservation]) -> list[Reserved]:
        """Check and reserve each order in turn, atomically."""

    @abstractmethod
    async def release(
        self, partition: int, order_id: str, *, filled: int = 0, ended: bool = False
    ) -> bool:
        """A fill into the position and/or the order's end."""

    @abstractmethod
    async def rebuild(
        self,
        partition: int,
        open_orders: Sequence[GlobalReservation],
        positions: Mapping[str, int],
    ) -> None:
        """Write one partition's share again from what its owner recovered."""

    @abstractmethod
    async def usage(self, symbol: str, group: str = "") -> Usage:
        """What every partition holds in ``symbol`` (and ``group``)."""
