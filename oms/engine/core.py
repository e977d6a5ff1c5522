"""The engine's core: the actors on their dispatcher, asked through pykka futures.

``EngineCore`` wires one ``Dispatcher`` (one thread) running the order actors, their directory,
the risk supervisor and the simulated venue, around the store ports it is handed. Every method
returns at once: queries and commands give a pykka ``Future`` (``.get()`` in a thread);
fire-and-forget methods return None. The layers above never see it: they hold the async
application service (``oms.engine.Engine``), which wraps it and answers values. Benchmarks and
tests drive it directly, without an event loop (``bench/engine.py``).

Order reads (``get_order``, ``list_orders``, ``order_events``) never touch the dispatcher: the
store answers them from its memory, or from MongoDB off every engine thread, so a burst of reads
costs trading nothing but the GIL's share.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from pykka import ActorRef, Future

from oms.actors.directory import DirectoryStats, OrderDirectory
from oms.actors.journal import Journal, Listener
from oms.actors.messages import (
    MarketTick,
    OrderCommand,
    ReconciledWord,
    Route,
    RouteMany,
    RouteReconciled,
)
from oms.actors.network_venue import NetworkAnswers, NetworkVenue
from oms.actors.order import OrderContext
from oms.actors.runtime import ActorFailure, Dispatcher, DispatchFuture
from oms.actors.supervisor import (
    GetLimits,
    GetSnapshot,
    GetTotals,
    MarkPrice,
    RiskSupervisor,
    Unbookable,
    Validate,
)
from oms.actors.venue import CountResting, GetBook, SimulatedVenue
from oms.config import Settings
from oms.domain.commands import (
    AmendOrder,
    ApplyFill,
    CancelAll,
    CancelOrder,
    OpenAccount,
    PlaceOrder,
    SetLimits,
    SetTradingState,
)
from oms.domain.enums import OrderStatus
from oms.domain.errors import DomainError, StoreError
from oms.domain.events import OrderEvent, VenueWord
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument
from oms.domain.limits import DEFAULT_LIMITS, RiskLimits, TradingState
from oms.domain.orders import Order
from oms.domain.reasons import Denial
from oms.engine.expiry import ExpiryTimer
from oms.engine.ports import (
    AccountRecord,
    EventSink,
    Execution,
    OrderQuery,
    OrderRepository,
    StoredOrder,
)
from oms.engine.recovery import Recovery, RecoverySummary
from oms.marketdata import MarketData, SimulatedFeed, Tick
from oms.marketdata.freshness import Freshness
from oms.risk import AccountSnapshot, RiskBook
from oms.risk.checkpoint import LedgerCheckpoint
from oms.risk.positions import growing_orders
from oms.risk.restore import Acceptance
from oms.venue import Matcher
from oms.venue.gateway import VenueGateway

T = TypeVar("T")
S = TypeVar("S")
logger = logging.getLogger(__name__)


class EngineCore:
    """Orders, risk, market data and settlement on the dispatcher, answering pykka futures."""

    def __init__(
        self,
        settings: Settings,
        *,
        repository: OrderRepository,
        sink: EventSink | None = None,
        instruments: Sequence[Instrument] = DEFAULT_INSTRUMENTS,
        default_limits: RiskLimits = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.time,
        simulated_venue: bool = True,
        gateway: VenueGateway | None = None,
    ) -> None:
        """Build (not start) the engine on the order repository ``service`` (or a test) gives it."""
        self.settings = settings
        self.clock = clock
        listed = {i.symbol: i for i in instruments if i.symbol in settings.symbols}
        self.instruments: Mapping[str, Instrument] = listed
        self.repository = repository
        self.dispatcher = Dispatcher(
            "oms-engine", drain_every=settings.engine_drain_every, refusal=is_refusal
        )
        self._beat_sent: float | None = None  # when the heartbeat in flight was posted
        self.journal = Journal(self.repository, sink)
        self.dispatcher.add_drain_hook(self.journal.flush, under_load=self.journal.flush_finished)
        self._ctx = OrderContext(journal=self.journal, instruments=listed, clock=clock)
        self._ctx.fail_at = settings.fault_fail_order_at
        self.risk_book = RiskBook(listed, fee_rate=settings.fee_rate, default_limits=default_limits)
        self._unbookable: list[Callable[[Unbookable], None]] = []
        self._risk: ActorRef[Any] = RiskSupervisor.start(
            self.dispatcher, self.risk_book, self._on_unbookable
        )
        self._directory: ActorRef[Any] = OrderDirectory.start(
            self.dispatcher,
            self._ctx,
            max_live=settings.max_live_order_actors,
        )
        self._venue: ActorRef[Any] | None = None
        # When each book last moved (the venue writes it), for the stale-feed check.
        self.freshness = Freshness(settings.market_data_stale_s)
        if gateway is not None:
            # A network venue (OMS_VENUE=ccxt): the exchange matches; its actor hands requests
            # to the gateway on the asyncio loop and the gateway's answers back to the orders.
            self.market = MarketData(listed)
            self._venue = NetworkVenue.start(
                self.dispatcher, self.market, gateway, clock=clock, freshness=self.freshness
            )
            gateway.bind(NetworkAnswers(self._venue))
        elif simulated_venue:
            self.market = MarketData(listed)
            self.matcher = Matcher(settings.fee_rate, listed)
            self._venue = SimulatedVenue.start(
                self.dispatcher,
                self.market,
                self.matcher,
                self._directory,
                clock,
                freshness=self.freshness,
            )
        self._ctx.risk = self._risk
        self._ctx.directory = self._directory
        self._ctx.venue = self._venue
        self._recovery = Recovery(
            self.dispatcher, risk=self._risk, directory=self._directory, venue=self._venue
        )
        self.expiries = ExpiryTimer(clock, self.submit)
        self.feed: SimulatedFeed | None = (
            SimulatedFeed(listed, settings.feed_seed) if settings.simulated_feed else None
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def failure(self) -> ActorFailure | None:
        """The first exception that escaped an actor (None while the engine is sound).

        After one, what the actors hold in memory can no longer be trusted: a turn may have
        told others half of what it meant to. Nothing decided after it may be acknowledged (the
        ingestion commits no offset once it is set), and the owner should restart the replica
        from durable state (``oms serve`` exits so that its orchestrator restarts it).
        """
        return self.dispatcher.failure

    def trouble(self) -> str | None:
        """Why this engine can no longer be trusted, or None: an actor failed, or its thread
        has not run a heartbeat posted ``engine_stall_s`` ago (stuck, or hopelessly behind).

        Cheap enough for every ``/health`` call: it posts at most one heartbeat at a time.
        """
        failure = self.failure
        if failure is not None:
            return f"actor failure in {failure.where}: {failure.error!r}"
        now = time.monotonic()
        sent = self._beat_sent
        if sent is None:
            self._beat_sent = now
            self.dispatcher.call_soon(self._beat)
        elif now - sent > self.settings.engine_stall_s:
            return f"the engine thread has not run a heartbeat posted {now - sent:.1f}s ago"
        return None

    def _beat(self) -> None:
        self._beat_sent = None

    def on_unbookable(self, callback: Callable[[Unbookable], None]) -> None:
        """Call ``callback(fill)`` (on the engine thread) for each fill an order applied and the
        ledger refused (beyond the account's funds); the account is HALTED in the book by then."""
        self._unbookable.append(callback)

    def _on_unbookable(self, fill: Unbookable) -> None:
        for callback in self._unbookable:
            callback(fill)

    def on_failure(self, callback: Callable[[ActorFailure], None]) -> None:
        """Call ``callback(failure)`` (on the engine thread) whenever an actor fails."""
        self.dispatcher.on_failure(callback)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the dispatcher thread, or with ``loop`` the dispatcher's turns on that running
        loop (call it there); and the GTD timer's thread."""
        self.dispatcher.start(loop)
        self.expiries.start()

    def stop(self) -> None:
        """Finish what is queued, flush the journal and stop."""
        self.expiries.stop()
        if self.dispatcher.is_running:
            # Not for outstanding loads: a store that does not answer would hold the stop for
            # ever, and what waits for a load was never applied, so never committed either.
            self.dispatcher.wait_idle(holds=False)
        for ref in (self._venue, self._directory, self._risk):
            if ref is not None and ref.is_alive():
                ref.stop(block=False)
        self.dispatcher.stop()
        self.journal.flush()
        self.repository.flush()

    def wait_idle(self, timeout: float | None = 30.0) -> None:
        """Block until every queued message (and what it caused) has been handled."""
        self.dispatcher.wait_idle(timeout)

    def idle(self) -> Future[None]:
        """Resolves once every message queued so far, and all it caused, has run, no command
        waits for its order to load, and the journal has gone to the store (``wait_idle``
        without a waiting thread)."""
        reply: DispatchFuture[None] = DispatchFuture()
        self.dispatcher.when_idle(lambda: reply.set(None))
        return reply

    def flush(self) -> Future[None]:
        """Resolves once everything applied so far is saved and the store flushed (durable)."""

        def barrier() -> None:
            self.journal.flush()
            self.repository.flush()

        return self._on_dispatcher(barrier)

    # -- recovery --------------------------------------------------------------------------

    def recover(
        self,
        open_orders: Sequence[StoredOrder],
        accounts: Iterable[AccountRecord],
        executions: Iterable[Execution],
        ledger: LedgerCheckpoint | None = None,
        *,
        accepted: Sequence[Acceptance] = (),
    ) -> Future[RecoverySummary]:
        """Rebuild one replica's state from the store after a restart (a crash included).

        Call it once, after ``start`` and before any command, tick or fill reaches the engine.
        ``open_orders`` are the store's open orders with their histories, ``accounts`` every
        stored account (opening balances and limits), ``ledger`` a checkpoint of some accounts
        (``checkpoint``: their figures when nothing was in flight; None: none), ``executions``
        the stored fills the checkpoint does not hold (with no checkpoint, every stored fill, of
        open and ended orders). The rules, all on the engine thread:

        - Accounts: one not open yet is opened with its opening balances and limits.
        - The checkpoint: its accounts take its balances, positions and PnL, each of its open
          records comes back as it was (what is left reserved and unfilled, the fills it booked),
          and ``VENUE`` and ``FEES`` get these accounts' share (``oms.risk.checkpoint``).
        - Balances and positions: every given fill is booked again, in execution time order,
          through the risk book's own ``post_fill`` (a fill a checkpoint's record booked already
          changes nothing); an ended order without a record is restored with exactly what its
          fills cost, and every ended order is released after its fills, so the account ends
          with its checkpoint (or opening balances) + every fill stored after it.
        - Risk counters: the checkpoint's velocity windows and trading days, and every order
          ``accepted`` after it counted into them at its ``OrderAccepted`` time, between the
          fills (``oms.risk.restore``): a limit spent before the restart stays spent.
        - Reservations: an open accepted order (ACCEPTED, PARTIALLY_FILLED, FILLED) without a
          checkpoint record gets back what its acceptance reserved (at its stored protection
          price), less what its stored fills took: as if it had never stopped. A NEW order has
          nothing reserved.
        - The venue: an open GTC or GTD LIMIT order with something left rests again in the
          matcher with its remaining quantity, its next execution id after its stored ones; an
          untriggered stop goes back among the stops (a triggered STOP_LIMIT rests as a LIMIT).
        - GTD expiry: every open order with an ``expire_at`` is scheduled again (one due while
          the replica was down expires at the timer's next round).
        - The order actors: a resting order stays in the store until it is next needed (a
          fill, a cancel, a replayed command rehydrates it). Every other open order is resumed
          (``OrderActor.on_resume``): NEW is asked to risk again (accepted or rejected now,
          with risk's reason); FILLED settles; a MARKET/IOC/FOK order whose arrival result was
          lost has its remainder cancelled (REMAINDER) and its reservation released.
        - Replayed Kafka commands then change nothing: a known order's PlaceOrder answers the
          order as stored, a booked fill's id is in its order's history and in the risk record.
          What the store never got (not durable, so its offset was never committed) is replayed
          from Kafka and happens again, for the first time as far as the ledger knows.
        """
        run = self._recovery.run(open_orders, accounts, executions, ledger, accepted=accepted)
        return self._expiries_after(run, open_orders)

    def rebuild(
        self,
        open_orders: Sequence[StoredOrder],
        accounts: Iterable[AccountRecord],
        executions: Iterable[Execution],
        global_state: TradingState = TradingState.ACTIVE,
        ledger: LedgerCheckpoint | None = None,
        *,
        accepted: Sequence[Acceptance] = (),
    ) -> Future[RecoverySummary]:
        """Drop every order actor, account, ledger balance and resting order, then ``recover``
        from what is given: the open orders, checkpoint and fills of the accounts this replica
        owns now.

        For a replica whose share of the accounts changed (a rebalance): another replica may
        have traded its new accounts since, and its former ones must no longer rest in its
        venue (it would fill them too). Call it only when everything the engine did is durable
        and nothing is in flight (the ingestion calls it from the rebalance, after its barrier).
        ``accounts`` are all of them (every replica answers reads); ``global_state`` is the
        recorded global kill switch.
        """

        self.expiries.clear()  # the GTD orders this replica owns now are scheduled once rebuilt
        run = self._recovery.run(
            open_orders, accounts, executions, ledger, accepted=accepted, reset=global_state
        )
        return self._expiries_after(run, open_orders)

    def _expiries_after(
        self, run: Future[RecoverySummary], open_orders: Sequence[StoredOrder]
    ) -> Future[RecoverySummary]:
        """Schedule the GTD orders of ``open_orders`` once ``run`` (a recovery) has succeeded.

        Not before: an expiry due while the replica was down fires at the timer's next round,
        and its order's actor would then start while the recovery (a rebuild drops every order
        actor) is still under way; the venue's answer to its cancel found the actor gone and
        failed the engine. Once the recovery has answered, its last messages are queued ahead
        of any expiry. A failed recovery schedules nothing (it is retried, or the replica stops).
        """
        assert isinstance(run, DispatchFuture)  # the recovery's own reply

        def done(answer: DispatchFuture[RecoverySummary]) -> None:
            if answer.exception() is None:
                self._schedule_expiries(open_orders)

        run.add_done_callback(done)
        return run

    def _schedule_expiries(self, open_orders: Sequence[StoredOrder]) -> None:
        for stored in open_orders:
            order = stored.order
            if order.expire_at is not None:  # due while down: expires at the timer's next round
                self.expiries.schedule(order.order_id, order.account_id, order.expire_at)

    def checkpoint(
        self, owned: Callable[[str], bool], capture: Callable[[], T]
    ) -> Future[tuple[LedgerCheckpoint, T]]:
        """At the next idle point, on the engine thread: the ledger of the trading accounts
        ``owned`` says yes to, and ``capture()`` (the store's side of the same moment).

        Idle means nothing is queued, every consequence of what ran has run, and the journal
        has gone to the store: the book's figures are then exactly what the saved events made
        them, which is what lets recovery start from the checkpoint and book only what the
        store got after it.
        """
        reply: DispatchFuture[tuple[LedgerCheckpoint, T]] = DispatchFuture()
        book = self.risk_book

        def take() -> None:
            try:
                ledger = book.export_ledger([a for a in book.account_ids() if owned(a)])
                reply.set((ledger, capture()))
            except Exception:  # noqa: BLE001 - goes back to whoever reads the future
                reply.set_exception()

        self.dispatcher.when_idle(take)
        return reply

    # -- orders ----------------------------------------------------------------------------

    def place_order(self, command: PlaceOrder) -> Future[Order]:
        """Place an order; resolves with it as soon as it exists (NEW), before risk decides.

        Placing the same order id again changes nothing and answers the order as it stands.
        """
        if command.expire_at is not None:
            self.expiries.schedule(command.order_id, command.account_id, command.expire_at)
        return self._route(command)

    def cancel_order(self, command: CancelOrder) -> Future[Order]:
        """Ask to cancel; resolves with the order (cancel in progress) or fails with
        ``InvalidTransition`` (already FILLED or terminal) or ``UnknownOrder``."""
        return self._route(command)

    def amend_order(self, command: AmendOrder) -> Future[Order]:
        """Ask to amend price and/or quantity; resolves with the order (amend in progress, or
        refused with an ``AmendRejected`` event) or fails with ``InvalidTransition`` (already
        FILLED or terminal) or ``UnknownOrder``."""
        return self._route(command)

    def apply_fill(self, fill: ApplyFill) -> Future[Order]:
        """Apply an external execution; fails with ``InvalidTransition`` or ``Overfill``."""
        return self._route(fill)

    def resolve_doubt(self, order_id: str, word: VenueWord, venue_filled: Decimal) -> Future[bool]:
        """Reconciliation's word on an order whose place is in doubt (``venue_filled``: what the
        venue filled of it), to its actor as the gateway's query answer goes: through the order
        process and its tables, journaled. Resolves True if the order took it, False if it was
        not in doubt any more (the gateway's answer came first, or it ended) or is unknown: a
        word is taken once, whichever of the two comes first."""
        reply: DispatchFuture[bool] = DispatchFuture()
        self._directory.tell(RouteReconciled(order_id, ReconciledWord(word, venue_filled), reply))
        return reply

    def submit(self, commands: Sequence[OrderCommand | CancelAll]) -> None:
        """Many commands in one hop, no answers (the stream layer's batches); a cancel-all
        goes its own way (``cancel_all``), after the commands before it."""
        routed: list[OrderCommand] = []
        for command in commands:
            if isinstance(command, CancelAll):
                if routed:
                    self._directory.tell(RouteMany(tuple(routed)))
                    routed = []
                # Once idle: the orders placed before it are then in the store, for it to find.
                self.dispatcher.when_idle(functools.partial(self._sweep, command))
                continue
            if type(command) is PlaceOrder and command.expire_at is not None:
                self.expiries.schedule(command.order_id, command.account_id, command.expire_at)
            routed.append(command)
        if routed:
            self._directory.tell(RouteMany(tuple(routed)))

    def _sweep(self, command: CancelAll) -> None:
        self.cancel_all(command)  # nobody waits: a failure is logged by cancel_all

    def expire_due(self) -> int:
        """Expire every GTD order whose time has come by the engine's clock now; how many (the
        timer's thread does this by itself: for tests and a clock that is set by hand)."""
        return self.expiries.fire_due()

    def cancel_all(
        self,
        command: CancelAll,
        select: Callable[[Sequence[Order]], Iterable[Order]] | None = None,
    ) -> Future[int]:
        """Cancel every open order of the account (of one symbol if given), or those of them
        ``select`` picks (a kill switch's REDUCING sweep); resolves with how many it asked to
        cancel.

        The open orders are the store's (its memory holds every open order; one placed in the
        same instant may be missed: cancel-all is a sweep, not a barrier). Only orders placed
        at or before the cancel-all was requested are cancelled: the sweep runs later (once the
        engine is idle), and an order placed after the trader's cancel-all was answered is not
        its to cancel. Each gets its own ``CancelOrder`` whose id derives from the cancel-all's,
        so a replayed cancel-all changes nothing that was cancelled already.
        """
        reply: DispatchFuture[int] = DispatchFuture()
        pages = [
            self.repository.read_page(
                OrderQuery(
                    account_id=command.account_id,
                    symbol=command.symbol,
                    status=status,
                    limit=_CANCEL_ALL_MAX,
                )
            )
            for status in _OPEN
        ]
        waiting = [len(pages)]
        found: list[Order] = []
        lock = threading.Lock()

        def done(page: concurrent.futures.Future[Sequence[Order]]) -> None:
            try:
                orders = page.result()
            except Exception:  # noqa: BLE001 - logged, and goes back to whoever reads the future
                logger.warning("cancel-all %s: the store did not answer", command.command_id)
                reply.set_exception()
                return
            with lock:
                found.extend(orders)
                waiting[0] -= 1
                if waiting[0]:
                    return
            # By id: an order whose status changed between two pages' reads is in both.
            placed_before = list(
                {o.order_id: o for o in found if o.created_at <= command.requested_at}.values()
            )
            cancels = tuple(
                CancelOrder(
                    f"{command.command_id}:{order.order_id}",
                    order.order_id,
                    order.account_id,
                    command.requested_at,
                    command.request_id,
                )
                for order in (placed_before if select is None else select(placed_before))
            )
            if cancels:
                self._directory.tell(RouteMany(cancels))
            reply.set(len(cancels))

        for page in pages:
            page.add_done_callback(done)
        return reply

    def get_order(self, order_id: str) -> Future[Order | None]:
        """The order's latest saved state, or None; fails with ``StoreUnavailable`` when only
        MongoDB knows it and does not answer in time.

        From the store, never the dispatcher: its memory holds every open order and the recent
        finished ones, and lags the order's actor by at most one round of the dispatcher (the
        journal hands each round over when the queue runs dry). The actor itself would be a
        message behind the engine's whole queue, and a burst of reads would lengthen that queue
        for trading: so the store it is. Right after ``place_order`` it may still be None (the
        API's cache covers that gap).
        """
        return _relay(self.repository.read(order_id), _order_of)

    def list_orders(self, query: OrderQuery) -> Future[Sequence[Order]]:
        """Orders matching ``query``, newest first (from the store, as ``get_order``)."""
        return _relay(self.repository.read_page(query), _same)

    def order_events(self, order_id: str) -> Future[Sequence[OrderEvent]]:
        """The order's history, oldest first (from the store, as ``get_order``)."""
        return _relay(self.repository.read(order_id), _events_of)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(batch_of_events)`` after each journal flush; returns unsubscribe.

        It runs on the engine thread: hand the batch on at once (to an event loop:
        ``loop.call_soon_threadsafe``, as ``oms.api.live`` does).
        """
        return self.journal.subscribe(listener)

    # -- risk ------------------------------------------------------------------------------

    def open_account(
        self,
        account_id: str,
        balances: Mapping[str, Decimal],
        limits: RiskLimits | None = None,
        *,
        exist_ok: bool = False,
    ) -> Future[AccountSnapshot]:
        """Open an account (fails with ``AccountExists``, unless ``exist_ok``: then an open
        account is left as it is)."""
        return self._risk.ask(
            OpenAccount(account_id, dict(balances), limits, exist_ok), block=False
        )

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
        self,
        state: TradingState,
        account_id: str | None = None,
    ) -> Future[TradingState]:
        """Halt (or reduce-only, or resume) one account, or everything when None.

        Both sweep what the accounts have open, through the cancel-all (one each, once what was
        queued before the switch has run). HALTED cancels every open order: nothing new is
        accepted, and nothing old stays in the market. REDUCING cancels the open orders that
        would grow the account's absolute position in their symbol and keeps the reducing ones
        (``oms.risk.positions.growing_orders``: the rule risk's REDUCING check applies to new
        orders), judged against the positions when the sweep runs.
        """
        answer = self._risk.ask(SetTradingState(state, account_id), block=False)
        if state is not TradingState.ACTIVE:
            at = self.clock()
            sweep = functools.partial(self._kill_switch_sweep, state, account_id, at)
            self.dispatcher.when_idle(sweep)
        return answer

    def _kill_switch_sweep(self, state: TradingState, account_id: str | None, at: float) -> None:
        """Cancel the open orders the switch ends, of the account (of every account: the global
        one). On the engine thread, so the positions it reads are the risk book's own."""
        book = self.risk_book
        accounts = [account_id] if account_id is not None else list(book.account_ids())
        for account in accounts:
            if state is TradingState.HALTED:
                self.cancel_all(CancelAll(f"halt:{account}:{at!r}", account, at))
            elif book.has_account(account):  # an unknown one has nothing open (its switch fails)
                positions = {
                    symbol: position.quantity
                    for symbol, position in book.snapshot(account).positions.items()
                }
                self.cancel_all(
                    CancelAll(f"reduce:{account}:{at!r}", account, at),
                    functools.partial(growing_orders, positions),
                )

    def apply_account_change(
        self, change: OpenAccount | SetLimits | SetTradingState
    ) -> Future[Any]:
        """An account change recorded in the store by whichever replica took the request (an
        ``orders`` record, or the in-process bus): an opening this engine has already made is
        left as it is (the same replica, or a replay)."""
        if isinstance(change, OpenAccount):
            return self.open_account(
                change.account_id, change.balances, change.limits, exist_ok=True
            )
        if isinstance(change, SetLimits):
            return self.set_limits(change.account_id, change.limits)
        return self.set_kill_switch(change.state, change.account_id)

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

    def last_price(self, symbol: str) -> Decimal | None:
        """The venue's last price of ``symbol`` (None before its first tick, or without the
        simulated venue), read from any thread without a hop to the engine's.

        Safe off the engine thread: a book swaps one immutable tick reference per update and
        the listed books never change, so a reader sees one whole tick, a moment old at most.
        """
        market = self.market if self._venue is not None else None
        if market is None or symbol not in self.instruments:
            return None
        return market.last_price(symbol)

    def market_data_stale(self, symbol: str) -> bool:
        """Whether ``symbol``'s feed has stopped (``oms.marketdata.freshness``): the venue then
        refuses MARKET orders on it. Read from any thread."""
        return self._venue is not None and self.freshness.stale(symbol, self.clock())

    def market_data_ages(self) -> dict[str, float]:
        """Seconds since each symbol's book last moved, by the engine's clock."""
        return self.freshness.ages(self.clock())

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


# IN_DOUBT is open: its cancel waits for the venue's word on it.
_OPEN = (
    OrderStatus.NEW,
    OrderStatus.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.IN_DOUBT,
)
# A cancel-all reads at most this many orders of each open status (far beyond a real account).
_CANCEL_ALL_MAX = 100_000


def is_refusal(error: Exception) -> bool:
    """A domain refusal (an illegal transition, an unknown order...) goes back to whoever asked
    and changes nothing. Anything else escaping an actor is a failure: a bug, or a store that
    failed inside a turn (its I/O belongs outside the engine's thread)."""
    return isinstance(error, DomainError) and not isinstance(error, StoreError)


def _relay(source: concurrent.futures.Future[S], read: Callable[[S], T]) -> Future[T]:
    """A pykka future of ``read(answer)`` that resolves when the store's future does."""
    reply: DispatchFuture[T] = DispatchFuture()

    def done(answer: concurrent.futures.Future[S]) -> None:
        try:
            reply.set(read(answer.result()))
        except Exception:  # noqa: BLE001 - goes back to whoever reads the future
            reply.set_exception()

    source.add_done_callback(done)
    return reply


def _order_of(stored: StoredOrder | None) -> Order | None:
    return None if stored is None else stored.order


def _events_of(stored: StoredOrder | None) -> Sequence[OrderEvent]:
    return () if stored is None else stored.events


def _same(page: Sequence[Order]) -> Sequence[Order]:
    return page
