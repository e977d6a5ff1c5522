"""Recovery: one replica's state rebuilt from the store, through the actors' own messages.

The risk book belongs to the risk supervisor and the resting orders to the venue actor, so
recovery touches neither: it reads what the store gave it into a plan and tells the owners, on
the engine's dispatcher, one batch message each, in this order:

1. (a rebuild only) ``ForgetOrders`` to the directory and ``ForgetResting`` to the venue;
2. ``RestoreBook`` to the supervisor: accounts, the checkpoint, reservations, fills, releases
   in one turn (``oms.risk.restore`` has the rules that need the book's state); it answers which
   orders have a record;
3. ``RestAgain`` to the venue: the open GTC LIMIT orders with a record and something left
   (without the simulated venue, an external one holds them: they stay open as stored);
4. ``ResumeOrders`` to the directory: every other open order carries on.

Each step is sent when the one before has answered (a callback on the dispatcher thread, never
a blocking wait). The caller sends nothing else meanwhile: ``EngineCore.recover`` runs before any
command, and a rebuild runs while the ingestion hands nothing over.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pykka import ActorRef, Future

from oms.actors.messages import ForgetOrders, ForgetResting, RestAgain, RestoreBook, ResumeOrders
from oms.actors.ports import execution_number
from oms.actors.runtime import Dispatcher, DispatchFuture
from oms.domain.commands import ApplyFill
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.limits import TradingState
from oms.domain.order_terms import STOPS, resting_type
from oms.engine.ports import AccountRecord, Execution, StoredOrder, executions_of
from oms.risk.checkpoint import LedgerCheckpoint
from oms.risk.restore import (
    Acceptance,
    AccountOpening,
    BookRestore,
    BookRestored,
    EndedOrder,
)

__all__ = ["Recovery", "RecoverySummary", "book_plan"]


@dataclass(frozen=True, slots=True)
class RecoverySummary:
    """What ``EngineCore.recover`` rebuilt."""

    accounts_opened: int  # accounts opened by recovery (not open in the engine yet)
    fills_booked: int  # stored fills replayed into the risk book
    orders_finished: int  # ended orders whose fills were replayed
    orders_open: int  # open orders whose reservation was restored
    resting: int  # GTC LIMIT orders put back in the venue's book
    resumed: int  # open orders told to carry on (NEW re-asked to risk, others closed)
    skipped: int  # fills or orders of unknown accounts or instruments (logged)
    accounts_refused: int = 0  # stored accounts the risk book would not open (logged)
    accepted_counted: int = 0  # acceptances after the checkpoint counted into risk counters


_MAY_REST = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
_RESTING_TIF = (TimeInForce.GTC, TimeInForce.GTD)


class Recovery:
    """Sends one recovery's messages to the engine's actors, each after the previous answer."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        risk: ActorRef[Any],
        directory: ActorRef[Any],
        venue: ActorRef[Any] | None,
    ) -> None:
        """The actors recovery speaks to (``venue`` None: the engine has no simulated venue)."""
        self._dispatcher = dispatcher
        self._risk = risk
        self._directory = directory
        self._venue = venue

    def run(
        self,
        open_orders: Sequence[StoredOrder],
        accounts: Iterable[AccountRecord],
        executions: Iterable[Execution],
        ledger: LedgerCheckpoint | None,
        *,
        accepted: Sequence[Acceptance] = (),
        reset: TradingState | None = None,
    ) -> Future[RecoverySummary]:
        """Rebuild from the store (the rules: ``EngineCore.recover``); ``reset`` not None first
        drops every order actor, account and resting order and sets that global kill switch."""
        reply: DispatchFuture[RecoverySummary] = DispatchFuture()
        stored = tuple(open_orders)
        opened = tuple(accounts)
        fills = tuple(executions)
        acceptances = tuple(accepted)

        def start() -> None:
            try:
                if reset is not None:
                    self._directory.tell(ForgetOrders())
                    if self._venue is not None:
                        self._venue.tell(ForgetResting())
                plan = book_plan(stored, opened, fills, ledger, acceptances, reset=reset)
                answer = self._risk.ask(RestoreBook(plan), block=False)
                _then(answer, reply, lambda restored: self._rest(stored, restored, reply))
            except Exception:  # noqa: BLE001 - goes back to whoever reads the future
                reply.set_exception()

        # On the engine thread, as every step after it: the plan of a large store is built
        # there, not on the caller's event loop.
        self._dispatcher.call_soon(start)
        return reply

    def _rest(
        self,
        stored: tuple[StoredOrder, ...],
        restored: BookRestored,
        reply: DispatchFuture[RecoverySummary],
    ) -> None:
        """Step 3: the resting orders back into the venue; then step 4."""
        with_record = restored.restored
        venue = self._venue
        candidates = tuple(s for s in stored if s.order.order_id in with_record and _may_rest(s))
        if venue is None:
            # No simulated venue: the orders that may rest are held by the external venue (their
            # fills come back as executions), so they stay open as stored, not closed as a lost
            # arrival would be; reconciliation compares them with the venue's word.
            self._resume(stored, restored, candidates, frozenset(), reply)
            return
        if not candidates:
            self._resume(stored, restored, (), frozenset(), reply)
            return
        answer = venue.ask(RestAgain(candidates), block=False)

        def rested(already: tuple[str, ...]) -> None:
            self._resume(stored, restored, candidates, frozenset(already), reply)

        _then(answer, reply, rested)

    def _resume(
        self,
        stored: tuple[StoredOrder, ...],
        restored: BookRestored,
        candidates: tuple[StoredOrder, ...],
        already: frozenset[str],
        reply: DispatchFuture[RecoverySummary],
    ) -> None:
        """Step 4: every open order that does not rest again (not a candidate, or resting at the
        venue already) carries on."""
        resume = _not_rested(stored, candidates, already)
        if resume:
            self._directory.tell(ResumeOrders(resume))
        reply.set(
            RecoverySummary(
                restored.opened,
                restored.booked,
                restored.ended,
                len(restored.restored) - restored.ended,
                len(candidates) - len(already),
                len(resume),
                restored.skipped,
                restored.refused,
                restored.counted,
            )
        )


def _not_rested(
    stored: tuple[StoredOrder, ...],
    candidates: tuple[StoredOrder, ...],
    already: frozenset[str],
) -> tuple[StoredOrder, ...]:
    """The stored orders, in order, less the candidates that rested: ``candidates`` is a
    subsequence of ``stored`` (same objects, same order), so one walk of both finds them, with
    no set of a million resting ids (tens of megabytes) and no second look at each order."""
    rest: list[StoredOrder] = []
    walk = iter(candidates)
    nxt = next(walk, None)
    for one in stored:
        if one is nxt:
            nxt = next(walk, None)
            if one.order.order_id not in already:
                continue
        rest.append(one)
    return tuple(rest)


def book_plan(
    open_orders: tuple[StoredOrder, ...],
    accounts: tuple[AccountRecord, ...],
    executions: tuple[Execution, ...],
    ledger: LedgerCheckpoint | None,
    accepted: tuple[Acceptance, ...] = (),
    *,
    reset: TradingState | None = None,
) -> BookRestore:
    """What the risk book gets back: the accounts, the checkpoint, the open orders, the ended
    orders with fills after the checkpoint, every fill once, in execution time order, and the
    acceptances after the checkpoint once each, in time order."""
    # Every fill once: the open orders' own histories, then the store's executions.
    fills: dict[tuple[str, str], Execution] = {}
    for stored in open_orders:
        for execution in executions_of(stored):
            fills[(execution.order_id, execution.execution_id)] = execution
    for execution in executions:
        fills.setdefault((execution.order_id, execution.execution_id), execution)
    open_ids = {stored.order.order_id for stored in open_orders}
    by_order: dict[str, list[Execution]] = {}
    for execution in fills.values():
        if execution.order_id not in open_ids:
            by_order.setdefault(execution.order_id, []).append(execution)
    ordered = sorted(
        fills.values(), key=lambda e: (e.executed_at, e.order_id, execution_number(e.execution_id))
    )
    return BookRestore(
        reset,
        tuple(
            AccountOpening(r.account_id, r.balances, r.limits, r.trading_state) for r in accounts
        ),
        ledger,
        tuple(stored.order for stored in open_orders),
        tuple(_ended(order_id, done) for order_id, done in by_order.items()),
        tuple(
            ApplyFill(
                e.execution_id,
                e.order_id,
                e.account_id,
                e.quantity,
                e.price,
                e.fee,
                e.executed_at,
            )
            for e in ordered
        ),
        tuple(sorted({a.order_id: a for a in accepted}.values(), key=lambda a: (a.at, a.order_id))),
    )


def _ended(order_id: str, done: list[Execution]) -> EndedOrder:
    """An ended order reserving exactly what its fills cost."""
    first = done[0]
    is_buy = first.side is Side.BUY
    cost = sum(((e.quantity * e.price + e.fee) if is_buy else e.quantity for e in done), Decimal(0))
    return EndedOrder(
        order_id, first.account_id, first.symbol, first.side,
        sum((e.quantity for e in done), Decimal(0)), max(e.price for e in done), cost, len(done),
    )  # fmt: skip


def _may_rest(stored: StoredOrder) -> bool:
    """An open GTC or GTD LIMIT order (or an untriggered stop, or a triggered STOP_LIMIT) with
    something left and a price to rest at."""
    order = stored.order
    kind = resting_type(order.type, order.triggered_at)
    untriggered = kind in STOPS
    return (
        (order.protection_price or order.price) is not None
        and (untriggered or kind is OrderType.LIMIT)
        and (untriggered or order.time_in_force in _RESTING_TIF)
        and order.status in _MAY_REST
        and order.remaining_quantity > 0
    )


def _then(
    answer: Future[Any], reply: DispatchFuture[RecoverySummary], step: Callable[[Any], None]
) -> None:
    """Run ``step(value)`` once ``answer`` resolves (on the resolving thread); its error, or
    ``answer``'s, goes to ``reply``."""

    def done(source: DispatchFuture[Any]) -> None:
        error = source.exception()
        if error is not None:
            reply.set_exception((type(error), error, error.__traceback__))
            return
        try:
            step(source.get())
        except Exception:  # noqa: BLE001 - goes back to whoever reads the future
            reply.set_exception(sys.exc_info())

    assert isinstance(answer, DispatchFuture)  # an ask on the dispatcher's actors
    answer.add_done_callback(done)
