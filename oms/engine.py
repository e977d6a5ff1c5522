"""The engine facade: the one object the stream and API layers use.

It wires one ``Dispatcher`` (one thread) running the order actors, their directory, the risk
supervisor and the simulated venue, around the store ports it is handed. Every method returns
at once: queries and commands give a pykka ``Future`` (``.get()`` in a thread, or
``await oms.actors.aio.reply(future)`` in an event loop, which never blocks the loop);
fire-and-forget methods return None.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from pykka import ActorRef, Future

from oms.actors.directory import DirectoryStats, OrderDirectory
from oms.actors.journal import Journal, Listener
from oms.actors.messages import GetOrder, MarketTick, OrderCommand, Route, RouteMany
from oms.actors.order import OrderContext
from oms.actors.runtime import Dispatcher, DispatchFuture
from oms.actors.venue import CountResting, GetBook, SimulatedVenue
from oms.config import Settings
from oms.domain.commands import ApplyFill, CancelOrder, PlaceOrder
from oms.domain.events import OrderEvent
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument
from oms.domain.orders import Order
from oms.marketdata import MarketData, SimulatedFeed, Tick
from oms.risk import (
    DEFAULT_LIMITS,
    AccountSnapshot,
    Denial,
    RiskBook,
    RiskLimits,
    TradingState,
)
from oms.risk.supervisor import (
    GetLimits,
    GetSnapshot,
    GetTotals,
    MarkPrice,
    OpenAccount,
    RiskSupervisor,
    SetLimits,
    SetTradingState,
    Validate,
)
from oms.store.memory import MemoryOrderRepository
from oms.store.ports import EventSink, OrderQuery, OrderRepository
from oms.venue import Matcher

T = TypeVar("T")


class Engine:
    """Orders, risk, market data and settlement behind one facade."""

    def __init__(
        self,
        settings: Settings,
        *,
        repository: OrderRepository | None = None,
        sink: EventSink | None = None,
        instruments: Sequence[Instrument] = DEFAULT_INSTRUMENTS,
        default_limits: RiskLimits = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.time,
        simulated_venue: bool = True,
    ) -> None:
        """Build (not start) the engine; ``repository`` defaults to an in-memory one."""
        self.settings = settings
        self.clock = clock
        listed = {i.symbol: i for i in instruments if i.symbol in settings.symbols}
        self.instruments: Mapping[str, Instrument] = listed
        self.repository = repository if repository is not None else MemoryOrderRepository()
        self.dispatcher = Dispatcher("oms-engine")
        self.journal = Journal(self.repository, sink)
        self.dispatcher.add_drain_hook(self.journal.flush)
        self._ctx = OrderContext(journal=self.journal, instruments=listed, clock=clock)
        self.risk_book = RiskBook(listed, fee_rate=settings.fee_rate,
                                  default_limits=default_limits)
        self._risk: ActorRef[Any] = RiskSupervisor.start(self.dispatcher, self.risk_book)
        self._directory: ActorRef[Any] = OrderDirectory.start(
            self.dispatcher, self._ctx, max_live=settings.max_live_order_actors,
        )
        self._venue: ActorRef[Any] | None = None
        if simulated_venue:
            self.market = MarketData(listed)
            self.matcher = Matcher(settings.fee_rate, listed)
            self._venue = SimulatedVenue.start(
                self.dispatcher, self.market, self.matcher, self._directory, clock,
            )
        self._ctx.risk = self._risk
        self._ctx.directory = self._directory
        self._ctx.venue = self._venue
        self.feed: SimulatedFeed | None = (
            SimulatedFeed(listed, settings.feed_seed) if settings.simulated_feed else None
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher thread."""
        self.dispatcher.start()

    def stop(self) -> None:
        """Finish what is queued, flush the journal and stop."""
        if self.dispatcher.is_running:
            self.dispatcher.wait_idle()
        for ref in (self._venue, self._directory, self._risk):
            if ref is not None and ref.is_alive():
                ref.stop(block=False)
        self.dispatcher.stop()
        self.journal.flush()
        self.repository.flush()

    def wait_idle(self, timeout: float | None = 30.0) -> None:
        """Block until every queued message (and what it caused) has been handled."""
        self.dispatcher.wait_idle(timeout)

    def flush(self) -> Future[None]:
        """Resolves once everything applied so far is saved and the store flushed (durable)."""

        def barrier() -> None:
            self.journal.flush()
            self.repository.flush()

        return self._on_dispatcher(barrier)

    # -- orders ----------------------------------------------------------------------------

    def place_order(self, command: PlaceOrder) -> Future[Order]:
        """Place an order; resolves with it as soon as it exists (NEW), before risk decides.

        Placing the same order id again changes nothing and answers the order as it stands.
        """
        return self._route(command)

    def cancel_order(self, command: CancelOrder) -> Future[Order]:
        """Ask to cancel; resolves with the order (cancel in progress) or fails with
        ``InvalidTransition`` (already FILLED or terminal) or ``UnknownOrder``."""
        return self._route(command)

    def apply_fill(self, fill: ApplyFill) -> Future[Order]:
        """Apply an external execution; fails with ``InvalidTransition`` or ``Overfill``."""
        return self._route(fill)

    def submit(self, commands: Sequence[OrderCommand]) -> None:
        """Many commands in one hop, no answers (the stream layer's batches)."""
        self._directory.tell(RouteMany(tuple(commands)))

    def get_order(self, order_id: str) -> Future[Order | None]:
        """The order's current state (read-your-writes after ``place_order``), or None."""
        reply: DispatchFuture[Order | None] = DispatchFuture()
        self._directory.tell(GetOrder(order_id, reply))
        return reply

    def list_orders(self, query: OrderQuery) -> Future[Sequence[Order]]:
        """Orders matching ``query``, newest first."""
        return self._on_dispatcher(lambda: self._flushed().query(query))

    def order_events(self, order_id: str) -> Future[Sequence[OrderEvent]]:
        """The order's history, oldest first."""
        return self._on_dispatcher(lambda: self._flushed().events(order_id))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(batch_of_events)`` after each journal flush; returns unsubscribe.

        It runs on the engine thread: hand the batch on at once (for asyncio:
        ``oms.actors.aio.queue_listener``).
        """
        return self.journal.subscribe(listener)

    # -- risk ------------------------------------------------------------------------------

    def open_account(
        self,
        account_id: str,
        balances: Mapping[str, Decimal],
        limits: RiskLimits | None = None,
    ) -> Future[AccountSnapshot]:
        """Open an account (fails with ``AccountExists``)."""
        return self._risk.ask(OpenAccount(account_id, dict(balances), limits), block=False)

    def account(self, account_id: str) -> Future[AccountSnapshot]:
        """Balances, reservations, positions and PnL of an account."""
        return self._risk.ask(GetSnapshot(account_id), block=False)

    def validate(self, command: PlaceOrder) -> Future[tuple[Denial, ...]]:
        """Dry run of every pre-trade check (empty: it would be accepted now)."""
        return self._risk.ask(Validate(command, self.clock()), block=False)

    def set_limits(self, account_id: str, limits: RiskLimits) -> Future[RiskLimits]:
        """Replace an account's limits (open orders keep what they reserved)."""
        return self._risk.ask(SetLimits(account_id, limits), block=False)

    def limits(self, account_id: str) -> Future[RiskLimits]:
        """An account's limits."""
        return self._risk.ask(GetLimits(account_id), block=False)

    def set_kill_switch(
        self, state: TradingState, account_id: str | None = None,
    ) -> Future[TradingState]:
        """Halt (or reduce-only, or resume) one account, or everything when None."""
        return self._risk.ask(SetTradingState(state, account_id), block=False)

    def totals(self) -> Future[dict[str, Decimal]]:
        """Per asset, all balances plus reservations over every account (conservation check)."""
        return self._risk.ask(GetTotals(), block=False)

    # -- market data -----------------------------------------------------------------------

    def on_tick(self, tick: Tick) -> None:
        """A market-data tick: marks risk's price, then lets the venue fill what it crosses."""
        self._risk.tell(MarkPrice(tick.symbol, tick.last_price, tick.ts))
        if self._venue is not None:
            self._venue.tell(MarketTick(tick))

    def advance_market(self, now: float | None = None) -> list[Tick]:
        """Step the simulated feed once for every symbol and apply the ticks (demo, tests)."""
        if self.feed is None:
            raise RuntimeError("the engine was built without a simulated feed")
        ticks = self.feed.step(self.clock() if now is None else now)
        for tick in ticks:
            self.on_tick(tick)
        return ticks

    def order_book(self, symbol: str, depth: int | None = None) -> Future[Tick | None]:
        """The venue's book of ``symbol`` as a tick (None before the first one)."""
        return self._venue_ref().ask(GetBook(symbol, depth), block=False)

    def resting_count(self) -> Future[int]:
        """How many orders rest at the simulated venue."""
        return self._venue_ref().ask(CountResting(), block=False)

    # -- inside ----------------------------------------------------------------------------

    def stats(self) -> Future[dict[str, int]]:
        """Directory counts: live, peak_live, spawned, rehydrated, passivated."""
        return self._directory.ask(DirectoryStats(), block=False)

    def _route(self, command: OrderCommand) -> Future[Order]:
        reply: DispatchFuture[Order] = DispatchFuture()
        self._directory.tell(Route(command, reply))
        return reply

    def _flushed(self) -> OrderRepository:
        self.journal.flush()
        return self.repository

    def _on_dispatcher(self, fn: Callable[[], T]) -> Future[T]:
        reply: DispatchFuture[T] = DispatchFuture()

        def run() -> None:
            try:
                reply.set(fn())
            except Exception:  # noqa: BLE001 - goes back to whoever reads the future
                reply.set_exception()

        self.dispatcher.call_soon(run)
        return reply

    def _venue_ref(self) -> ActorRef[Any]:
        if self._venue is None:
            raise RuntimeError("the engine was built without the simulated venue")
        return self._venue
