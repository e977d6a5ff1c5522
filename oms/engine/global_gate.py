"""The firm-wide caps on the event loop: reserve before the engine, release after it.

Choice (issue 14, item 4): the engine's dispatcher thread must never wait on Redis, so the
reservation is made on the event loop *before* the order reaches the engine. The ingestion
hands each fetched batch's new orders to ``before_places``: one Lua call reserves them all
(``GlobalLimitStore.reserve``), and each answer is left in ``GlobalVerdicts`` for the risk book,
which takes it when it accepts the order (``RiskBook.accept``). Then the batch goes to the engine.
The price is one Redis round trip per fetched batch (not per order), only while a cap is set.
The other way, a lease of headroom per replica refreshed in the background, costs no round trip
on the path but splits each cap between replicas (one refuses while another's lease sits idle)
and needs the leases taken back from a replica that died; the reservation per order is exact.

Release: the engine's durable events come back here (``Engine.subscribe``); a fill moves its
quantity from the open order into the net position, the order's end (rejected, cancelled,
expired, settled) gives back the rest. Releases are retried until Redis answers: until then the
firm is counted as holding more than it does, never less.

Fail closed: while a cap is set and Redis does not answer a reservation, every order of the
batch is refused ``GLOBAL_LIMITS_UNAVAILABLE`` (as is an order nobody reserved for: one a
recovery resumed while it was still NEW).

Rebuilt on a take-over (``rebuild``): each partition this replica now owns is written again from
the open orders and positions it recovered, which drops what its previous owner held but never
released (it died) and touches no other partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal

from oms.domain.commands import PlaceOrder
from oms.domain.enums import OrderStatus, OrderType
from oms.domain.events import OrderCancelled, OrderEvent, OrderFilled, OrderRejected, OrderSettled
from oms.domain.global_limits import (
    GlobalLimits,
    GlobalLimitsError,
    GlobalLimitsUnavailable,
    GlobalReservation,
    notional_units,
    quantity_units,
)
from oms.domain.limits import MARKET_PROTECTION_FALLBACK
from oms.domain.orders import Order
from oms.domain.reasons import RejectReason
from oms.engine.application import Engine
from oms.engine.ports import GlobalLimitStore

__all__ = ["GlobalGate"]

logger = logging.getLogger(__name__)

UNTAKEN_S = 5.0  # a fresh reservation the book has not taken by then will not be: the order
# was known already (a record fetched again after it ended), so it is given back
RETRY_S = 0.5
_ENDS = (OrderRejected, OrderCancelled, OrderSettled)
_HOLDING = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)


class GlobalGate:
    """Reserves each new order against the firm-wide caps before the engine sees it."""

    def __init__(
        self,
        engine: Engine,
        store: GlobalLimitStore,
        *,
        partitions: int,
        partition_of: Callable[[str, int], int],
        refresh_s: float,
    ) -> None:
        """``partitions`` of ``orders`` and ``partition_of`` say which partition holds each
        account's reservations; the caps are read again every ``refresh_s``."""
        self._engine = engine
        self._store = store
        self._partitions = partitions
        self._partition_of = partition_of
        self._refresh_s = refresh_s
        self._verdicts = engine.global_verdicts
        self._limits = GlobalLimits()
        self._held: dict[str, int] = {}  # order id -> partition, for the orders' releases
        # Answers the book has not taken yet: since when, and whether this replica reserved
        # for it then (an answer never taken is dropped; such a reservation is given back).
        self._untaken: dict[str, tuple[float, bool]] = {}
        self._releases: deque[tuple[int, str, int, bool]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._silent = False  # Redis did not answer the last refresh (logged once)

    @property
    def store(self) -> GlobalLimitStore:
        """Where the caps and reservations are kept (the API reads and sets the caps there)."""
        return self._store

    @property
    def active(self) -> bool:
        """True while a cap is set (reservations are made and asked for)."""
        return self._verdicts.active

    @property
    def limits(self) -> GlobalLimits:
        """The caps as last read."""
        return self._limits

    async def start(self) -> None:
        """Read the caps, follow the engine's events, and keep both going."""
        await self.refresh()
        loop = asyncio.get_running_loop()

        def on_events(events: Sequence[OrderEvent]) -> None:  # the store's writer thread
            # Nothing held (no cap set, or every order released): no wake-up of the loop for
            # each durable batch of the hot path.
            if self._held:
                loop.call_soon_threadsafe(self._on_events, events)

        self._unsubscribe = self._engine.subscribe(on_events)
        self._tasks = [
            asyncio.create_task(self._refreshing(), name="global-limits-refresh"),
            asyncio.create_task(self._releasing(), name="global-limits-release"),
        ]

    async def stop(self) -> None:
        """Stop following (what is not released yet is given back by the next rebuild)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def refresh(self) -> None:
        """Read the caps again; the book asks for answers only while one is set."""
        try:
            self._limits = await self._store.limits()
        except GlobalLimitsUnavailable:
            if not self._silent:
                logger.warning("global limits: redis did not answer; keeping the caps read last")
            self._silent = True
            return
        self._silent = False
        self._verdicts.active = bool(self._limits.symbols or self._limits.groups)

    # -- reserve (the ingestion, before the engine) ------------------------------------------

    async def before_places(self, places: Sequence[PlaceOrder]) -> None:
        """Reserve ``places`` against the caps and leave each answer for the risk book."""
        verdicts = self._verdicts
        if not verdicts.active or not places:
            return
        wanted: list[GlobalReservation] = []
        for place in places:
            reservation = self._reservation(place)
            if reservation is not None:
                wanted.append(reservation)
        now = time.monotonic()
        try:
            answers = await self._store.reserve(wanted)
        except GlobalLimitsUnavailable:
            logger.warning("global limits: redis did not answer; %d orders refused", len(wanted))
            for reservation in wanted:
                verdicts.put(reservation.order_id, RejectReason.GLOBAL_LIMITS_UNAVAILABLE)
                self._untaken[reservation.order_id] = (now, False)
            return
        for reservation, answer in zip(wanted, answers, strict=True):
            order_id = reservation.order_id
            verdicts.put(order_id, answer.refused)
            if answer.refused is None:
                self._held[order_id] = reservation.partition
            self._untaken[order_id] = (now, answer.fresh)

    def _reservation(self, place: PlaceOrder) -> GlobalReservation | None:
        """What ``place`` holds against the caps (None: it cannot be priced, and risk refuses
        it anyway: no market price, or no price at all)."""
        price = _price(
            place.type, place.price, place.stop_price, self._engine.last_price(place.symbol)
        )
        if price is None:
            return None
        try:
            notional = notional_units(place.quantity * price)
            quantity = quantity_units(place.quantity)
        except GlobalLimitsError:
            return None  # beyond any cap Redis can count: the book refuses it (no answer)
        account = place.account_id
        return GlobalReservation(
            place.order_id, self._partition_of(account, self._partitions), place.symbol,
            self._limits.group_of(account) or "", notional, place.side, quantity,
        )  # fmt: skip

    # -- release (the engine's durable events) -----------------------------------------------

    def _on_events(self, events: Sequence[OrderEvent]) -> None:
        held = self._held
        for event in events:
            partition = held.get(event.order_id)
            if partition is None:
                continue
            self._untaken.pop(event.order_id, None)  # the book took it: the order reached risk
            if isinstance(event, OrderFilled):
                self._releases.append(
                    (partition, event.order_id, quantity_units(event.quantity), False)
                )
            elif isinstance(event, _ENDS):
                del held[event.order_id]
                self._releases.append((partition, event.order_id, 0, True))
        if self._releases:
            self._wake.set()

    async def _releasing(self) -> None:
        releases = self._releases
        while True:
            await self._wake.wait()
            self._wake.clear()
            while releases:
                partition, order_id, filled, ended = releases[0]
                try:
                    await self._store.release(partition, order_id, filled=filled, ended=ended)
                except GlobalLimitsUnavailable:
                    await asyncio.sleep(RETRY_S)  # counted as held until Redis answers
                    continue
                releases.popleft()

    async def _refreshing(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            await self.refresh()
            self._give_back_untaken()

    def _give_back_untaken(self) -> None:
        """Answers for orders that never reached risk (known already: a record fetched again)
        are dropped, and what was reserved for them then goes back."""
        cutoff = time.monotonic() - UNTAKEN_S
        for order_id, (since, fresh) in list(self._untaken.items()):
            if since > cutoff:
                continue
            del self._untaken[order_id]
            if not self._verdicts.waiting(order_id):
                continue  # the book took it: the order's own events release it
            self._verdicts.forget(order_id)
            if not fresh:
                continue  # held since before (an open order's record again): stays held
            partition = self._held.pop(order_id, None)
            if partition is not None:
                self._releases.append((partition, order_id, 0, True))
                self._wake.set()

    # -- rebuild (a take-over) ---------------------------------------------------------------

    async def rebuild(
        self,
        owned: Iterable[int],
        open_orders: Sequence[Order],
        positions: Mapping[str, Mapping[str, Decimal]],
    ) -> None:
        """Write the ``owned`` partitions' share again: ``open_orders`` (of their accounts) that
        hold a reservation, and ``positions`` (account -> symbol -> net quantity)."""
        if not self._verdicts.active:
            return
        chosen = set(owned)
        # What this replica held of partitions it gave away is their new owner's to rebuild.
        self._held = {k: p for k, p in self._held.items() if p in chosen}
        by_partition: dict[int, list[GlobalReservation]] = {p: [] for p in chosen}
        net: dict[int, dict[str, int]] = {p: {} for p in chosen}
        for order in open_orders:
            p = self._partition_of(order.account_id, self._partitions)
            if p not in chosen or order.status not in _HOLDING:
                continue
            price = (
                order.protection_price
                if order.type is OrderType.MARKET
                else _price(order.type, order.price, order.stop_price, None)
            )
            if price is None:
                continue
            left = order.remaining_quantity
            by_partition[p].append(
                GlobalReservation(
                    order.order_id,
                    p,
                    order.symbol,
                    self._limits.group_of(order.account_id) or "",
                    notional_units(order.quantity * price),
                    order.side,
                    quantity_units(left),
                )
            )
            self._held[order.order_id] = p
        for account_id, held in positions.items():
            p = self._partition_of(account_id, self._partitions)
            if p in chosen:
                for symbol, quantity in held.items():
                    net[p][symbol] = net[p].get(symbol, 0) + quantity_units(quantity)
        for p in sorted(chosen):
            await self._store.rebuild(p, by_partition[p], net[p])


def _price(
    kind: OrderType, price: Decimal | None, stop: Decimal | None, market: Decimal | None
) -> Decimal | None:
    """The price an order's notional is counted at: its limit price, its stop (STOP_MARKET), or
    for a MARKET order the collar's fallback edge beyond the market (its protection price
    is at most that far)."""
    if kind is OrderType.MARKET:
        return None if market is None else market * (1 + MARKET_PROTECTION_FALLBACK)
    if kind is OrderType.STOP_MARKET:
        return stop
    return price
