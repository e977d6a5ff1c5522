"""The reconciliation driver: reads both sides, asks ``oms.venue.reconcile`` what to do, does it.

A run (at start, after a hand-off's rebuild, and every ``OMS_RECONCILE_INTERVAL_S``):

1. Ours: the open orders of the store (ACCEPTED, PARTIALLY_FILLED, IN_DOUBT, FILLED) of the
   accounts this replica owns, each with the trade ids it has booked (its ``OrderFilled``
   command ids) and, for one whose place is in doubt, when (``in_doubt``).
2. The venue's: its open orders; each open order of ours it does not list, fetched by our
   client order id (``ORDER_NOT_FOUND``: it does not know it); our trades on every listed symbol
   since the last reconciled point. A trade that names only the venue's order id is matched
   through the venue ids seen so far; when one is new, our orders that ended lately on that
   symbol are fetched once to learn theirs.
3. The plan, applied in order: missed fills booked through the engine (``ApplyFill`` whose id
   is the trade id: booked twice, it changes nothing); in-doubt orders resolved by the venue's
   word (``Resolver``); each discrepancy, and each fill the ledger could not book, handed to
   ``Halt`` (a ``risk-events`` record, the account HALTED and recorded, until an operator
   resumes it) and counted by kind for ``oms_reconcile_discrepancies_total{kind}``.

The report of the run is logged as one line and kept (``last``) for ``GET
/api/venue/reconciliation``. A venue that does not answer (``VenueRequestError``) ends the run
with nothing applied: reconciliation decides only on the venue's word, never on its silence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from oms.actors.supervisor import Unbookable
from oms.domain.commands import ApplyFill, CancelOrder
from oms.domain.enums import OrderStatus
from oms.domain.errors import DomainError
from oms.domain.events import DoubtedRequest, OrderEvent, OrderFilled, OrderInDoubt
from oms.domain.orders import Order, Overfill
from oms.engine.application import Engine
from oms.engine.ports import OrderQuery
from oms.venue.port import (
    RefusalReason,
    VenueOrderState,
    VenuePort,
    VenueRefused,
    VenueRequestError,
    VenueTrade,
)
from oms.venue.reconcile import (
    Discrepancy,
    DiscrepancyKind,
    NotAtVenue,
    OurOrder,
    Plan,
    Resolution,
    Resolve,
    plan,
)

logger = logging.getLogger(__name__)

# The statuses of ours that may still be live at the venue (NEW never reached it).
_AT_VENUE = (
    OrderStatus.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.IN_DOUBT,
    OrderStatus.FILLED,
)
# Ended statuses whose orders may name a trade we have not matched yet.
_ENDED = (OrderStatus.SETTLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED)
_MAX_ORDERS = 100_000  # per status and run: far beyond one replica's open orders
_MAX_LEARN = 200  # orders per status and symbol fetched to learn venue order ids (one run)

InDoubt = Callable[[Order, Sequence[OrderEvent]], float | None]
"""When the place of an order of ours (with its history) was found in doubt, else None."""


def place_in_doubt(order: Order, events: Sequence[OrderEvent]) -> float | None:
    """When the order's place went IN_DOUBT (its answer never came), None if it is not in
    doubt or only its cancel is (the venue had acknowledged it: not knowing it then is a
    discrepancy, not a rejection). The window counts from when the answer was given up on,
    which is after the submit: never earlier than the venue could still take it."""
    if order.status is not OrderStatus.IN_DOUBT:
        return None
    for event in reversed(events):
        if isinstance(event, OrderInDoubt):
            return event.at if event.request is DoubtedRequest.PLACE else None
    return None


class Resolver(ABC):
    """How the engine's venue side settles an in-doubt (or venue-ended) order on the venue's
    word: ``LIVE`` acknowledged, ``CANCELLED`` with what filled, ``REJECTED`` with its reason."""

    @abstractmethod
    async def resolve(self, resolve: Resolve) -> None:
        """Apply the venue's word to the order (a refusal: it had moved on; logged)."""


class EngineResolver(Resolver):
    """The resolutions the engine can apply today: an order the venue ended is cancelled here
    with what filled (its fills are booked first). ``LIVE`` and ``REJECTED`` concern orders
    whose place is IN_DOUBT: the venue side resolves those by its own query of the venue
    (``OrderProcess.venue_said``); until the engine offers reconciliation a way to hand it the
    venue's word, such a resolution is logged and changes nothing (the order keeps its
    reservation and its doubt: never guessed)."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        """Resolve through ``engine``."""
        self.engine = engine
        self.clock = clock

    async def resolve(self, resolve: Resolve) -> None:
        """Cancel an order the venue ended; log the in-doubt resolutions."""
        if resolve.resolution is not Resolution.CANCELLED:
            logger.error("reconciliation cannot resolve %s as %s (%s) in this engine",
                         resolve.order_id, resolve.resolution, resolve.reason)  # fmt: skip
            return
        command = CancelOrder(
            f"reconcile:{resolve.order_id}", resolve.order_id, resolve.account_id, self.clock()
        )
        try:
            await self.engine.cancel_order(command)
        except DomainError as refused:  # ended meanwhile: nothing left to do
            logger.info("reconciliation: %s already ended: %s", resolve.order_id, refused.code)


class Halt(ABC):
    """What an unexplained difference costs: recorded, announced, and the account halted."""

    @abstractmethod
    async def halt(self, discrepancy: Discrepancy, at: float) -> None:
        """Publish the ``risk-events`` record and HALT the account (every account when its
        ``account_id`` is None), durably, so that a restart does not resume it."""


@dataclass
class Discrepancies:
    """Where every unexplained difference goes (a run's, or a fill the ledger refused): counted
    by kind (``oms_reconcile_discrepancies_total{kind}``), logged, and handed to ``Halt``."""

    halt: Halt
    by_kind: Counter[str] = field(default_factory=Counter)
    # What was recorded already: a difference that stays (the venue keeps a stranger's order)
    # is found by every run, and halts once; an operator who resumed the account decided it.
    _recorded: set[tuple[DiscrepancyKind, str | None, str]] = field(default_factory=set)

    async def record(self, found: Iterable[Discrepancy], at: float) -> None:
        """Count, log and halt for each one not recorded before."""
        for one in found:
            key = (one.kind, one.account_id, one.order_id)
            if key in self._recorded:
                continue
            self._recorded.add(key)
            self.by_kind[one.kind.value] += 1
            logger.warning(
                "reconciliation discrepancy %s on order %s (account %s): %s",
                one.kind, one.order_id, one.account_id or "every account", one.detail,
            )  # fmt: skip
            await self.halt.halt(one, at)

    async def unbookable(self, fill: Unbookable, at: float) -> None:
        """A fill the ledger refused (beyond the account's funds): decided as a discrepancy."""
        detail = f"fill {fill.fill_id}: {fill.code}: {fill.detail}"
        kind = DiscrepancyKind.UNBOOKABLE_FILL
        await self.record((Discrepancy(kind, fill.account_id, fill.order_id, detail),), at)


class ReconcileReport(NamedTuple):
    """One run: what it matched, booked, resolved, left pending and could not explain."""

    trigger: str  # start, rebuild, timer, request
    at: float
    matched: int
    booked: int
    resolved: int
    pending: int
    discrepancies: tuple[Discrepancy, ...]
    failed: str | None = None  # why the run stopped before applying anything (a venue error)

    def line(self) -> str:
        """The one log line of the run."""
        kinds = Counter(d.kind for d in self.discrepancies)
        failed = f" failed={self.failed}" if self.failed else ""
        return (
            f"reconciliation ({self.trigger}): matched={self.matched} booked={self.booked} "
            f"resolved={self.resolved} pending={self.pending} "
            f"discrepancies={len(self.discrepancies)} {dict(kinds) or ''}{failed}"
        ).rstrip()


@dataclass
class Reconciler:
    """Reconciles one replica's orders with the venue, one run at a time."""

    engine: Engine
    venue: VenuePort
    resolver: Resolver
    discrepancies: Discrepancies
    in_doubt: InDoubt
    symbols: Sequence[str]
    owns: Callable[[str], bool]  # the accounts this replica reconciles (it owns them)
    submit_window_s: float
    lookback_s: float
    clock: Callable[[], float] = time.time
    last: ReconcileReport | None = None
    _since: float | None = None  # the last reconciled point: trades from here on
    _venue_ids: dict[str, str] = field(default_factory=dict)  # venue order id -> ours
    _looked_for: set[str] = field(default_factory=set)  # venue order ids learning was tried for
    _asked: set[str] = field(default_factory=set)  # our ended orders fetched to learn theirs
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def run(self, trigger: str) -> ReconcileReport:
        """One reconciliation run (never two at once); its report, also logged and kept."""
        async with self._lock:
            now = self.clock()
            try:
                found = await self._plan(now)
            except VenueRequestError as error:
                report = ReconcileReport(trigger, now, 0, 0, 0, 0, (), error.code)
                logger.warning("%s: %s", report.line(), error)
                self.last = report
                return report
            report = await self._apply(trigger, now, found)
            (logger.warning if report.discrepancies else logger.info)("%s", report.line())
            self.last = report
            return report

    async def every(self, interval_s: float) -> None:
        """Run on a timer until cancelled (a failed run is logged, and the next one comes)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.run("timer")
            except Exception:  # reported: the timer must outlive one bad run
                logger.exception("reconciliation run failed")

    # -- reading both sides ----------------------------------------------------------------

    async def _plan(self, now: float) -> Plan:
        # Orders are read from the store, which trails the engine until what it queued has run
        # and been journaled: a fill booked just before (by the last run, or a report) must be
        # read as booked, or its trade, now behind the last reconciled point, is missed.
        await self.engine.idle()
        ours = await self._ours()
        venue_orders = list(await self.venue.open_orders())
        listed = {state.client_order_id for state in venue_orders}
        missing: list[NotAtVenue] = []
        for order in ours.values():
            if order.order_id in listed or order.status.is_terminal:
                continue
            answer = await self._fetch(order.order_id, order.symbol)
            if isinstance(answer, NotAtVenue):
                missing.append(answer)
            else:
                venue_orders.append(answer)
        for state in venue_orders:
            self._venue_ids[state.venue_order_id] = state.client_order_id
        since = self._since if self._since is not None else now - self.lookback_s
        trades: list[VenueTrade] = []
        for symbol in self.symbols:
            trades.extend(await self.venue.my_trades(symbol, since))
        await self._learn_venue_ids(trades, ours)
        named = [self._named(t) for t in trades]
        # Our ended orders the venue names (a trade, or still open there) are compared too;
        # those of accounts another replica owns are its to reconcile (one venue account
        # serves every replica).
        others = await self._add_ended(
            [t.client_order_id for t in named] + [s.client_order_id for s in venue_orders], ours
        )
        found = plan(
            ours.values(),
            [s for s in venue_orders if s.client_order_id not in others],
            missing,
            [t for t in named if t.client_order_id not in others],
            now=now,
            submit_window_s=self.submit_window_s,
        )
        # The next run reads again from a submit window before the newest trade seen: a trade
        # the venue lists late, or stamped a moment back, is not skipped (a trade seen twice
        # is matched by its id, never booked twice).
        newest = max((t.executed_at for t in trades), default=since + self.submit_window_s)
        self._since = max(since, newest - self.submit_window_s)
        return found

    async def _ours(self) -> dict[str, OurOrder]:
        ours: dict[str, OurOrder] = {}
        for status in _AT_VENUE:
            for order in await self.engine.list_orders(
                OrderQuery(status=status, limit=_MAX_ORDERS)
            ):
                if self.owns(order.account_id):
                    ours[order.order_id] = await self._our(order)
        return ours

    async def _our(self, order: Order) -> OurOrder:
        events = await self.engine.order_events(order.order_id)
        trade_ids = frozenset(e.command_id for e in events if isinstance(e, OrderFilled))
        sent = self.in_doubt(order, events)
        return OurOrder(
            order.order_id,
            order.account_id,
            order.symbol,
            order.status,
            order.quantity,
            order.filled_quantity,
            trade_ids,
            in_doubt=sent is not None,
            submitted_at=sent,
        )

    async def _fetch(self, client_order_id: str, symbol: str) -> VenueOrderState | NotAtVenue:
        try:
            return await self.venue.fetch_order(client_order_id, symbol)
        except VenueRefused as refused:
            if refused.reason is not RefusalReason.ORDER_NOT_FOUND:
                raise
            return NotAtVenue(client_order_id, refused.code)

    async def _learn_venue_ids(
        self, trades: Iterable[VenueTrade], ours: Mapping[str, OurOrder]
    ) -> None:
        """Fetch the orders of a symbol with a trade of an unknown venue id (ended lately, or of
        accounts another replica owns), to learn their venue ids. Once each: a venue id learned is remembered, and one that no
        order of ours turned out to have (a stranger's) is not looked for again, nor is an
        order asked twice (the venue's rate limits)."""
        unknown = {
            t.venue_order_id: t.symbol
            for t in trades
            if t.client_order_id is None
            and t.venue_order_id not in self._venue_ids
            and t.venue_order_id not in self._looked_for
        }
        for symbol in set(unknown.values()):
            # Open ones too: another replica's (not among ``ours``) may have traded since.
            for status in _AT_VENUE + _ENDED:
                ended = await self.engine.list_orders(
                    OrderQuery(symbol=symbol, status=status, limit=_MAX_LEARN)
                )
                for order in ended:
                    if order.order_id in self._asked or order.order_id in ours:
                        continue
                    answer = await self._fetch(order.order_id, symbol)  # a venue error: next run
                    self._asked.add(order.order_id)
                    if isinstance(answer, VenueOrderState):
                        self._venue_ids[answer.venue_order_id] = order.order_id
        self._looked_for.update(unknown)

    def _named(self, trade: VenueTrade) -> VenueTrade:
        """The trade with our client order id when the venue's order id tells it."""
        if trade.client_order_id is not None:
            return trade
        return trade._replace(client_order_id=self._venue_ids.get(trade.venue_order_id))

    async def _add_ended(self, named: Iterable[str | None], ours: dict[str, OurOrder]) -> set[str]:
        """Our orders the venue names that are not among the open ones join ``ours`` (a trade
        on one is matched if booked, a discrepancy if not; open there, a discrepancy); the ids
        of those whose account this replica does not own."""
        others: set[str] = set()
        for order_id in named:
            if order_id is None or order_id in ours or order_id in others:
                continue
            order = await self.engine.get_order(order_id)
            if order is None:
                continue
            if self.owns(order.account_id):
                ours[order_id] = await self._our(order)
            else:
                others.add(order_id)
        return others

    # -- applying the plan -----------------------------------------------------------------

    async def _apply(self, trigger: str, now: float, found: Plan) -> ReconcileReport:
        late: list[Discrepancy] = []
        booked = 0
        for fill in found.fills:
            refused = await self._book(fill)
            if refused is None:
                booked += 1
            else:
                late.append(refused)
        for resolve in found.resolutions:
            await self.resolver.resolve(resolve)
        discrepancies = found.discrepancies + tuple(late)
        await self.discrepancies.record(discrepancies, now)
        await self.engine.idle()  # what this run booked is in the store for whoever reads next
        return ReconcileReport(
            trigger,
            now,
            found.matched,
            booked,
            len(found.resolutions),
            found.pending,
            discrepancies,
        )

    async def _book(self, fill: ApplyFill) -> Discrepancy | None:
        """Book a missed fill; the engine's refusal (the order moved on since we read it, or
        the fill overfills it) is a discrepancy."""
        try:
            await self.engine.apply_fill(fill)
        except DomainError as refused:
            kind = (
                DiscrepancyKind.QUANTITY_MISMATCH
                if isinstance(refused, Overfill)
                else DiscrepancyKind.FILL_ON_ENDED_ORDER
            )
            detail = f"trade {fill.command_id}: {refused.code}: {refused}"
            return Discrepancy(kind, fill.account_id, fill.order_id, detail)
        return None


@dataclass
class Reconciliation:
    """What ``GET /api/venue/reconciliation`` shows: the discrepancies counted by kind (a
    refused fill counts with the simulated venue too) and the reconciler, if a network venue
    is configured (None: the simulated venue is the book of record, nothing to reconcile)."""

    discrepancies: Discrepancies
    reconciler: Reconciler | None = None

    def last(self) -> ReconcileReport | None:
        """The last run's report (None before the first, or without a network venue)."""
        return None if self.reconciler is None else self.reconciler.last
