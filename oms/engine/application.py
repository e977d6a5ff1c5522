"""The application service: the engine's use cases as asyncio calls that answer values.

What the stream, API and service layers hold. It wraps an ``EngineCore`` (the actors on their
dispatcher thread) and turns each of its pykka futures into an ``asyncio.Future`` resolved on the
caller's loop (``oms.engine.aio``), so no pykka future, and no pykka error, leaves ``oms.engine``:
an engine that stopped (or an actor gone) answers ``EngineUnavailable``.

Commands and asks are **eager**: the message is on its way when the method returns, and the
returned future only brings the answer back. Order matters to the callers (the ingestion hands a
batch of places, then a cancel, then waits for the cancel's answer at commit time), and a
coroutine would send nothing until awaited. Order reads (``get_order``, ``list_orders``,
``order_events``) go to the store, never to the dispatcher (see ``EngineCore.get_order``).

The hot path costs nothing more than the core's: ``submit`` (the ingestion's batches) and
``on_tick`` hand over in the same one hop, and return nothing to wait for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from pykka import ActorDeadError, Future

from oms.actors.journal import Listener
from oms.actors.messages import OrderCommand
from oms.actors.runtime import ActorFailure
from oms.actors.supervisor import Unbookable
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
from oms.domain.errors import EngineUnavailable
from oms.domain.events import OrderEvent, VenueWord
from oms.domain.instruments import Instrument
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.orders import Order
from oms.domain.reasons import Denial
from oms.engine.aio import to_asyncio
from oms.engine.core import EngineCore
from oms.engine.ports import AccountRecord, Execution, OrderQuery, StoredOrder
from oms.engine.recovery import RecoverySummary
from oms.marketdata import SimulatedFeed, Tick
from oms.risk import AccountSnapshot
from oms.risk.checkpoint import LedgerCheckpoint
from oms.risk.global_verdicts import GlobalVerdicts
from oms.risk.restore import Acceptance

T = TypeVar("T")

AccountChange = OpenAccount | SetLimits | SetTradingState
KillSwitches = Callable[[], tuple[TradingState, dict[str, TradingState]]]


class Engine:
    """Orders, risk, market data, settlement and recovery as async use cases.

    Call the use cases from a running event loop (their answers resolve on it); ``submit``,
    ``on_tick``, ``subscribe`` and the lifecycle methods may be called from any thread.
    """

    def __init__(self, core: EngineCore) -> None:
        """Serve the use cases of ``core`` (built, started and stopped through this object)."""
        self.core = core

    # -- what it is ------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings the engine was built with."""
        return self.core.settings

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        """The instruments traded, by symbol."""
        return self.core.instruments

    @property
    def feed(self) -> SimulatedFeed | None:
        """The seeded simulated feed, if the settings ask for one."""
        return self.core.feed

    @property
    def kill_switches(self) -> KillSwitches:
        """Reads the global and per-account kill switches from any thread (for ``/metrics``)."""
        return self.core.risk_book.kill_switches

    @property
    def global_verdicts(self) -> GlobalVerdicts:
        """Where the event loop leaves Redis's answers on the firm-wide caps for the risk book
        (``oms.engine.global_gate``): written on the loop, read on the engine thread."""
        return self.core.risk_book.global_verdicts

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def failure(self) -> ActorFailure | None:
        """The first exception that escaped an actor (``EngineCore.failure``)."""
        return self.core.failure

    def trouble(self) -> str | None:
        """Why the engine can no longer be trusted, or None (``EngineCore.trouble``)."""
        return self.core.trouble()

    def on_failure(self, callback: Callable[[ActorFailure], None]) -> None:
        """Call ``callback(failure)`` (on the engine thread) whenever an actor fails."""
        self.core.on_failure(callback)

    def on_unbookable(self, callback: Callable[[Unbookable], None]) -> None:
        """Call ``callback(fill)`` (on the engine thread) for each fill the ledger refused."""
        self.core.on_unbookable(callback)

    def start(self, *, on_loop: bool = False) -> None:
        """Start the dispatcher thread, or with ``on_loop`` run the dispatcher's turns on the
        running loop, this one (``engine_loop``); call it on the loop."""
        self.core.start(asyncio.get_running_loop() if on_loop else None)

    def stop(self) -> None:
        """Finish what is queued, flush the journal and stop (blocks: run it off the loop)."""
        self.core.stop()

    def idle(self) -> asyncio.Future[None]:
        """Resolves once everything queued so far, and all it caused, has run and the journal
        went to the store (``EngineCore.idle``)."""
        return self._answer(self.core.idle)

    async def durable(self) -> None:
        """Return once everything saved so far is durable.

        A write-behind store is waited for on the loop (its writer, not the dispatcher, does the
        work); any other is flushed on the dispatcher (``EngineCore.flush``). Call it once the
        engine is idle (``idle``) so that the journal has handed the store everything.
        """
        repository = self.core.repository
        if repository.waits_async:
            await repository.durable()
        else:
            await self._answer(self.core.flush)

    # -- recovery --------------------------------------------------------------------------

    def recover(
        self,
        open_orders: Sequence[StoredOrder],
        accounts: Iterable[AccountRecord],
        executions: Iterable[Execution],
        ledger: LedgerCheckpoint | None = None,
        *,
        accepted: Sequence[Acceptance] = (),
    ) -> asyncio.Future[RecoverySummary]:
        """Rebuild from the store after a restart (``EngineCore.recover`` has the rules)."""
        return self._answer(
            lambda: self.core.recover(open_orders, accounts, executions, ledger, accepted=accepted)
        )

    def rebuild(
        self,
        open_orders: Sequence[StoredOrder],
        accounts: Iterable[AccountRecord],
        executions: Iterable[Execution],
        global_state: TradingState = TradingState.ACTIVE,
        ledger: LedgerCheckpoint | None = None,
        *,
        accepted: Sequence[Acceptance] = (),
    ) -> asyncio.Future[RecoverySummary]:
        """Drop what the engine holds and recover the accounts owned now
        (``EngineCore.rebuild``)."""
        return self._answer(
            lambda: self.core.rebuild(
                open_orders, accounts, executions, global_state, ledger, accepted=accepted
            )
        )

    def checkpoint(
        self, owned: Callable[[str], bool], capture: Callable[[], T]
    ) -> asyncio.Future[tuple[LedgerCheckpoint, T]]:
        """At the next idle point, the ledger of the ``owned`` accounts and ``capture()``
        (``EngineCore.checkpoint``)."""
        return self._answer(lambda: self.core.checkpoint(owned, capture))

    # -- orders ----------------------------------------------------------------------------

    def place_order(self, command: PlaceOrder) -> asyncio.Future[Order]:
        """Place an order; the order as soon as it exists (NEW), before risk decides."""
        return self._answer(lambda: self.core.place_order(command))

    def cancel_order(self, command: CancelOrder) -> asyncio.Future[Order]:
        """Ask to cancel: the order (cancel in progress), or ``InvalidTransition`` (already
        FILLED or terminal) or ``UnknownOrder``."""
        return self._answer(lambda: self.core.cancel_order(command))

    def amend_order(self, command: AmendOrder) -> asyncio.Future[Order]:
        """Ask to amend price and/or quantity: the order (amend in progress, or refused with an
        ``AmendRejected`` event), or ``InvalidTransition`` (already FILLED or terminal) or
        ``UnknownOrder``."""
        return self._answer(lambda: self.core.amend_order(command))

    def cancel_all(self, command: CancelAll) -> asyncio.Future[int]:
        """Cancel every open order of the account (of one symbol if given): how many it asked
        to cancel (``EngineCore.cancel_all``)."""
        return self._answer(lambda: self.core.cancel_all(command))

    def apply_fill(self, fill: ApplyFill) -> asyncio.Future[Order]:
        """Apply an external execution; ``InvalidTransition`` or ``Overfill`` if refused."""
        return self._answer(lambda: self.core.apply_fill(fill))

    def resolve_doubt(
        self, order_id: str, word: VenueWord, venue_filled: Decimal
    ) -> asyncio.Future[bool]:
        """Reconciliation's word on an order whose place is in doubt, taken as the venue
        gateway's answer would be; False if the order was not in doubt any more
        (``EngineCore.resolve_doubt``)."""
        return self._answer(lambda: self.core.resolve_doubt(order_id, word, venue_filled))

    def submit(self, commands: Sequence[OrderCommand | CancelAll]) -> None:
        """Many commands in one hop, no answers (the stream layer's batches; a cancel-all runs
        after the commands before it)."""
        self.core.submit(commands)

    def expire_due(self) -> int:
        """Expire the GTD orders due by the engine's clock now; how many (``EngineCore``)."""
        return self.core.expire_due()

    async def get_order(self, order_id: str) -> Order | None:
        """The order's latest saved state, or None; ``StoreUnavailable`` when only MongoDB
        knows it and does not answer in time (``EngineCore.get_order``)."""
        stored = await asyncio.wrap_future(self.core.repository.read(order_id))
        return None if stored is None else stored.order

    async def list_orders(self, query: OrderQuery) -> Sequence[Order]:
        """Orders matching ``query``, newest first (from the store, as ``get_order``)."""
        return await asyncio.wrap_future(self.core.repository.read_page(query))

    async def order_events(self, order_id: str) -> Sequence[OrderEvent]:
        """The order's history, oldest first (from the store, as ``get_order``)."""
        stored = await asyncio.wrap_future(self.core.repository.read(order_id))
        return () if stored is None else stored.events

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(batch_of_events)`` on the engine thread after each journal flush;
        returns unsubscribe. Hand the batch on at once (to an event loop:
        ``loop.call_soon_threadsafe``, as ``oms.api.live`` does)."""
        return self.core.subscribe(listener)

    # -- risk ------------------------------------------------------------------------------

    def open_account(
        self,
        account_id: str,
        balances: Mapping[str, Decimal],
        limits: RiskLimits | None = None,
        *,
        exist_ok: bool = False,
    ) -> asyncio.Future[AccountSnapshot]:
        """Open an account (``AccountExists`` unless ``exist_ok``: an open one is left as is)."""
        return self._answer(
            lambda: self.core.open_account(account_id, balances, limits, exist_ok=exist_ok)
        )

    def account(self, account_id: str) -> asyncio.Future[AccountSnapshot]:
        """Balances, reservations, positions and PnL of an account (``UnknownAccount``)."""
        return self._answer(lambda: self.core.account(account_id))

    def validate(self, command: PlaceOrder) -> asyncio.Future[tuple[Denial, ...]]:
        """Dry run of every pre-trade check (empty: it would be accepted now)."""
        return self._answer(lambda: self.core.validate(command))

    def set_limits(self, account_id: str, limits: RiskLimits) -> asyncio.Future[RiskLimits]:
        """Replace an account's limits (open orders keep what they reserved)."""
        return self._answer(lambda: self.core.set_limits(account_id, limits))

    def limits(self, account_id: str) -> asyncio.Future[RiskLimits]:
        """An account's limits."""
        return self._answer(lambda: self.core.limits(account_id))

    def set_kill_switch(
        self, state: TradingState, account_id: str | None = None
    ) -> asyncio.Future[TradingState]:
        """Halt (or reduce-only, or resume) one account, or everything when None."""
        return self._answer(lambda: self.core.set_kill_switch(state, account_id))

    def apply_account_change(self, change: AccountChange) -> asyncio.Future[Any]:
        """An account change recorded by whichever replica took the request
        (``EngineCore.apply_account_change``)."""
        return self._answer(lambda: self.core.apply_account_change(change))

    def totals(self) -> asyncio.Future[dict[str, Decimal]]:
        """Per asset, all balances plus reservations over every account."""
        return self._answer(self.core.totals)

    # -- market data -----------------------------------------------------------------------

    def on_tick(self, tick: Tick) -> None:
        """A market-data tick: marks risk's price, then lets the venue fill what it crosses."""
        self.core.on_tick(tick)

    def last_price(self, symbol: str) -> Decimal | None:
        """The venue's last price of ``symbol``, or None (``EngineCore.last_price``); from the
        event loop without waiting for the engine thread."""
        return self.core.last_price(symbol)

    def market_data_stale(self, symbol: str) -> bool:
        """Whether ``symbol``'s feed has stopped (``EngineCore.market_data_stale``)."""
        return self.core.market_data_stale(symbol)

    def market_data_ages(self) -> dict[str, float]:
        """Seconds since each symbol's book last moved (``EngineCore.market_data_ages``)."""
        return self.core.market_data_ages()

    def order_book(self, symbol: str, depth: int | None = None) -> asyncio.Future[Tick | None]:
        """The venue's book of ``symbol`` as a tick (None before the first one)."""
        return self._answer(lambda: self.core.order_book(symbol, depth))

    def resting_count(self) -> asyncio.Future[int]:
        """How many orders rest at the simulated venue."""
        return self._answer(self.core.resting_count)

    def stats(self) -> asyncio.Future[dict[str, int]]:
        """Directory counts: live, peak_live, spawned, rehydrated, passivated."""
        return self._answer(self.core.stats)

    # -- inside ----------------------------------------------------------------------------

    @staticmethod
    def _answer(ask: Callable[[], Future[T]]) -> asyncio.Future[T]:
        """Send now (``ask()``), answer on the running loop; a stopped engine or a dead actor,
        at once or later, answers ``EngineUnavailable``."""
        loop = asyncio.get_running_loop()
        try:
            return to_asyncio(ask(), loop, _translate)
        except ActorDeadError as error:
            failed: asyncio.Future[T] = loop.create_future()
            failed.set_exception(_translate(error))
            return failed


def _translate(error: BaseException) -> BaseException:
    """A pykka ``ActorDeadError`` (the engine stopped, or an actor is gone) as ours."""
    if not isinstance(error, ActorDeadError):
        return error
    unavailable = EngineUnavailable(f"the engine is not running: {error}")
    unavailable.__cause__ = error
    return unavailable
