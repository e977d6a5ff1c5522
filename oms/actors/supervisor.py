"""The risk supervisor: the one actor that owns the process's ``RiskBook``.

A thin explicit-message wrapper: every decision is the book's. Order actors tell it ``Accept``
and ``Settle`` and get ``RiskAnswer`` and ``Settled`` told back (no future, no blocking); the
engine asks it the rest (accounts, limits, kill switch, dry runs, snapshots, and recovery's
``RestoreBook``) and gets futures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

from pykka import ActorDeadError, ActorRef

from oms.actors.messages import (
    Accept,
    AmendAnswer,
    CommitAmendment,
    ReserveAmend,
    RestoreBook,
    RiskAnswer,
    Settle,
    Settled,
)
from oms.actors.runtime import DispatchedActor, Dispatcher, tell
from oms.domain.commands import OpenAccount, PlaceOrder, SetLimits, SetTradingState
from oms.domain.errors import DomainError
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.messages import distinct
from oms.domain.reasons import Denial
from oms.risk import AccountSnapshot, RiskBook
from oms.risk.restore import BookRestored, restore_book

logger = logging.getLogger(__name__)
# Builds a message (a NamedTuple) from a tuple of its fields without the Python-level __new__.
_new = tuple.__new__

# The engine's queries and notices to the supervisor: messages, so NamedTuples made distinct
# (the one style: ``oms.actors.messages``).


@distinct
class GetLimits(NamedTuple):
    """An account's limits."""

    account_id: str


@distinct
class MarkPrice(NamedTuple):
    """The last price of a symbol (collar reference, MARKET notional, PnL mark)."""

    symbol: str
    price: Decimal
    now: float


@distinct
class Validate(NamedTuple):
    """Run every check on an order without changing anything (a dry run)."""

    order: PlaceOrder
    now: float


@distinct
class GetSnapshot(NamedTuple):
    """An account's balances, positions, PnL, trading state and limits."""

    account_id: str


class Unbookable(NamedTuple):
    """A fill an order applied and the ledger refused (``code``: why, e.g. INSUFFICIENT_FUNDS)."""

    account_id: str
    order_id: str
    fill_id: str
    code: str
    detail: str


@distinct
class GetTotals(NamedTuple):
    """Per asset, the sum over every account (incl. VENUE and FEES) of available + reserved."""


class RiskSupervisor(DispatchedActor):
    """Owns the ``RiskBook``; every pre-trade check, reservation, booking and release runs here."""

    handlers: ClassVar[dict[type, str]] = {
        Accept: "on_accept",
        Settle: "on_settle",
        ReserveAmend: "on_reserve_amend",
        CommitAmendment: "on_commit_amend",
        MarkPrice: "on_mark_price",
        OpenAccount: "on_open_account",
        SetLimits: "on_set_limits",
        GetLimits: "on_get_limits",
        SetTradingState: "on_set_trading_state",
        Validate: "on_validate",
        GetSnapshot: "on_get_snapshot",
        GetTotals: "on_get_totals",
        RestoreBook: "on_restore_book",
    }

    def __init__(
        self,
        dispatcher: Dispatcher,
        book: RiskBook,
        unbookable: Callable[[Unbookable], None] | None = None,
    ) -> None:
        """Own ``book`` from now on: nobody else may touch it. ``unbookable`` hears (on the
        engine thread) of each fill the ledger refused."""
        super().__init__(dispatcher)
        self.book = book
        self.unbookable = unbookable

    def on_accept(self, message: Accept) -> None:
        """Decide on a new order and tell the order actor."""
        try:
            answer = _new(RiskAnswer, (self.book.accept(message.order, message.now), None))
        except DomainError as error:  # e.g. a symbol the book does not list
            answer = RiskAnswer(None, error.code)
        _answer(message.reply_to, answer)

    def on_settle(self, message: Settle) -> None:
        """Book each fill as a balanced entry, then release the rest if asked; tell the order."""
        book = self.book
        for fill in message.fills:
            try:
                book.post_fill(fill)  # the entry book_fill would build is not kept here
            except DomainError as refused:
                # The order has applied this fill; the ledger could not (beyond the account's
                # funds). Fail closed: the account takes nothing new from now on, and whoever
                # listens (reconciliation) records it, halts it durably and sweeps its orders,
                # rather than stop the one actor that owns every balance.
                logger.exception("could not book fill %s", fill.command_id)
                account_id = fill.account_id
                if book.has_account(account_id):
                    book.set_trading_state(TradingState.HALTED, account_id)
                if self.unbookable is not None:
                    self.unbookable(
                        Unbookable(account_id, fill.order_id, fill.command_id, refused.code,
                                   str(refused))
                    )  # fmt: skip
        released = book.release(message.order_id) if message.release else None
        _answer(message.reply_to, _new(Settled, (message.order_id, released)))

    def on_reserve_amend(self, message: ReserveAmend) -> None:
        """Decide on an amend (reserving for it if it passes) and tell the order actor."""
        try:
            outcome = self.book.reserve_amend(
                message.order_id, message.delta, message.price, message.now
            )
        except DomainError as error:  # not open any more, nothing left unfilled
            answer = AmendAnswer(None, (), error.code)
        else:
            if isinstance(outcome, Decimal):
                answer = AmendAnswer(outcome)
            else:
                answer = AmendAnswer(None, outcome)
        _answer(message.reply_to, answer)

    def on_commit_amend(self, message: CommitAmendment) -> None:
        """Adjust the amended order and trim its reservation (no answer: it only gives back)."""
        self.book.commit_amend(
            message.order_id, message.delta, message.price, message.venue_remaining
        )

    def on_mark_price(self, message: MarkPrice) -> None:
        """Record a last price."""
        self.book.mark_price(message.symbol, message.price, message.now)

    def on_open_account(self, message: OpenAccount) -> AccountSnapshot:
        """Open the account (``AccountExists`` goes back to the caller unless ``exist_ok``)."""
        book = self.book
        if not (message.exist_ok and book.has_account(message.account_id)):
            book.open_account(message.account_id, message.balances, message.limits)
        return book.snapshot(message.account_id)

    def on_set_limits(self, message: SetLimits) -> RiskLimits:
        """Replace the limits."""
        self.book.set_limits(message.account_id, message.limits)
        return message.limits

    def on_get_limits(self, message: GetLimits) -> RiskLimits:
        """The limits."""
        return self.book.limits(message.account_id)

    def on_set_trading_state(self, message: SetTradingState) -> TradingState:
        """Flip the kill switch."""
        self.book.set_trading_state(message.state, message.account_id)
        return message.state

    def on_validate(self, message: Validate) -> tuple[Denial, ...]:
        """The denials the order would get now (empty: it would pass)."""
        return self.book.check(message.order, message.now)

    def on_get_snapshot(self, message: GetSnapshot) -> AccountSnapshot:
        """The account as it stands."""
        return self.book.snapshot(message.account_id)

    def on_get_totals(self, _message: GetTotals) -> dict[str, Decimal]:
        """The conservation totals."""
        return self.book.totals()

    def on_restore_book(self, message: RestoreBook) -> BookRestored:
        """Recovery: rebuild the book from the store's plan, in this one turn."""
        return restore_book(self.book, message.plan)


def _answer(order: ActorRef[Any], answer: object) -> None:
    """Tell an order actor; one that stopped meanwhile (a rebuild forgot it) is not an error of
    the supervisor's, which owns every balance and must not stop for it."""
    try:
        tell(order, answer)
    except ActorDeadError:
        logger.warning("order actor %s stopped before its answer %s", order, type(answer).__name__)
