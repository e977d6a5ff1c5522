"""``EngineCore.recover``: one replica's state rebuilt from the store after a restart."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from oms.config import Settings
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.events import (
    CancelReason,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    new_order_accepted,
    new_order_filled,
    new_order_placed,
)
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.orders import Order, apply
from oms.engine.core import EngineCore
from oms.engine.ports import AccountRecord, Execution, OrderQuery, StoredOrder, executions_of
from oms.store.memory import MemoryOrderRepository
from tests.unit.engine_helpers import FUNDS, cancel, place, tick

ACCOUNTS = [AccountRecord("a1", FUNDS), AccountRecord("a2", FUNDS)]


def _engine(repository: MemoryOrderRepository) -> EngineCore:
    engine = EngineCore(
        Settings(simulated_feed=False),
        repository=repository,
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        clock=lambda: 1000.0,
    )
    engine.start()
    return engine


def _stored(repository: MemoryOrderRepository) -> tuple[list[StoredOrder], list[Execution]]:
    """What a restart reads back: the open orders with histories, and every fill."""
    open_orders: list[StoredOrder] = []
    executions: list[Execution] = []
    for order in repository.query(OrderQuery(limit=10_000)):
        stored = repository.load(order.order_id)
        assert stored is not None
        executions.extend(executions_of(stored))
        if not order.is_terminal:
            open_orders.append(stored)
    return open_orders, executions


def _view(engine: EngineCore) -> tuple[object, ...]:
    """Balances, positions (not their unrealized PnL: marks come with the next ticks), totals."""
    accounts = {a: engine.account(a).get(timeout=5) for a in ("a1", "a2")}
    positions = {
        a: {sym: (p.quantity, p.average_price, p.realized_pnl) for sym, p in s.positions.items()}
        for a, s in accounts.items()
    }
    return (
        {a: (s.balances, positions[a], s.realized_pnl) for a, s in accounts.items()},
        engine.totals().get(timeout=5),
        {a: engine.risk_book.open_order_count(a) for a in ("a1", "a2")},
    )


@pytest.fixture
def repository() -> MemoryOrderRepository:
    return MemoryOrderRepository()


@pytest.fixture
def restarted(repository: MemoryOrderRepository) -> Iterator[tuple[EngineCore, tuple[object, ...]]]:
    """A first engine's life (settled, resting and part-filled orders), then a second engine
    recovered from its store; yields the second engine and the first one's final view."""
    first = _engine(repository)
    for record in ACCOUNTS:
        first.open_account(record.account_id, record.balances).get(timeout=5)
    first.on_tick(tick())
    first.wait_idle()
    first.place_order(place(kind=OrderType.MARKET, price=None, order_id="m1")).get(timeout=5)
    first.place_order(place(price="99.00", order_id="rest-buy")).get(timeout=5)
    first.place_order(
        place(account="a2", side=Side.SELL, price="101.00", quantity="0.3", order_id="rest-sell")
    ).get(timeout=5)
    first.wait_idle()
    first.on_tick(tick(bid="98.80", ask="98.90", size="0.2", ts=1001.0))  # part-fills rest-buy
    first.wait_idle()
    assert first.get_order("rest-buy").get(timeout=5).filled_quantity == Decimal("0.2")
    view = _view(first)
    assert first.resting_count().get(timeout=5) == 2
    first.stop()

    second = _engine(repository)
    open_orders, executions = _stored(repository)
    summary = second.recover(open_orders, ACCOUNTS, executions).get(timeout=5)
    second.wait_idle()
    assert summary.accounts_opened == 2
    assert summary.resting == 2
    assert summary.resumed == 0
    assert summary.orders_open == 2
    assert summary.orders_finished == 1
    assert summary.fills_booked == 2
    yield second, view
    second.stop()


def test_recover_when_restarted_then_balances_reservations_positions_and_resting_orders_come_back(
    restarted: tuple[EngineCore, tuple[object, ...]],
) -> None:
    engine, before = restarted
    assert _view(engine) == before
    assert engine.resting_count().get(timeout=5) == 2
    assert engine.stats().get(timeout=5)["live"] == 0  # resting orders stay in the store


def test_commands_when_replayed_after_a_restart_then_change_nothing_and_resting_orders_go_on(
    restarted: tuple[EngineCore, tuple[object, ...]], repository: MemoryOrderRepository
) -> None:
    engine, before = restarted
    replayed = engine.place_order(place(kind=OrderType.MARKET, price=None, order_id="m1"))
    assert replayed.get(timeout=5).status is OrderStatus.SETTLED
    again = engine.place_order(place(price="99.00", order_id="rest-buy")).get(timeout=5)
    assert again.filled_quantity == Decimal("0.2")
    engine.wait_idle()
    assert _view(engine) == before

    engine.on_tick(tick(bid="98.80", ask="98.90", size="1", ts=1002.0))  # fills the rest
    engine.cancel_order(cancel("rest-sell", account="a2")).get(timeout=5)
    engine.wait_idle()
    buy = engine.get_order("rest-buy").get(timeout=5)
    assert buy.status is OrderStatus.SETTLED
    fill_ids = [e.command_id for e in repository.events("rest-buy") if isinstance(e, OrderFilled)]
    assert fill_ids == ["rest-buy:1", "rest-buy:2"]
    assert engine.get_order("rest-sell").get(timeout=5).status is OrderStatus.CANCELLED
    for account in ("a1", "a2"):
        balances = engine.account(account).get(timeout=5).balances
        assert all(b.reserved == 0 for b in balances.values())
    assert engine.totals().get(timeout=5) == before[1]
    assert engine.resting_count().get(timeout=5) == 0


def _history(*events: OrderEvent) -> StoredOrder:
    order: Order | None = None
    for event in events:
        order = apply(order, event)
    assert order is not None
    return StoredOrder(order, events)


def _placed(
    order_id: str, kind: OrderType, side: Side, quantity: str, price: str | None
) -> OrderEvent:
    tif = TimeInForce.GTC if kind is OrderType.LIMIT else TimeInForce.IOC
    return new_order_placed(
        order_id, 1, f"place-{order_id}", 999.0, f"cl-{order_id}", "a1", "BTC-USD", side, kind,
        Decimal(quantity), None if price is None else Decimal(price), tif,
    )  # fmt: skip


def test_recover_when_open_orders_do_not_rest_then_resumes_them(
    repository: MemoryOrderRepository,
) -> None:
    new = _history(_placed("new", OrderType.LIMIT, Side.BUY, "0.5", "95.00"))
    filled = _history(
        _placed("filled", OrderType.LIMIT, Side.SELL, "0.5", "100.00"),
        new_order_accepted("filled", 2, "place:filled", 999.0, Decimal("100.00")),
        new_order_filled("filled", 3, "filled:1", 999.5, Decimal("0.5"), Decimal("100.00"),
                         Decimal("0.05")),
    )  # fmt: skip
    market = _history(
        _placed("market", OrderType.MARKET, Side.BUY, "1", None),
        new_order_accepted("market", 2, "place:market", 999.0, Decimal("110.00")),
        new_order_filled("market", 3, "market:1", 999.5, Decimal("0.4"), Decimal("100.10"),
                         Decimal("0.04")),
    )  # fmt: skip
    for stored in (new, filled, market):
        repository.save([stored.order], list(stored.events))
    engine = _engine(repository)
    try:
        engine.on_tick(tick())
        engine.wait_idle()
        open_orders, executions = _stored(repository)
        summary = engine.recover(open_orders, ACCOUNTS, executions).get(timeout=5)
        engine.wait_idle()
        assert (summary.resumed, summary.resting, summary.fills_booked) == (3, 0, 2)

        assert engine.get_order("new").get(timeout=5).status is OrderStatus.ACCEPTED  # re-asked
        assert engine.resting_count().get(timeout=5) == 1  # ... and now resting
        assert engine.get_order("filled").get(timeout=5).status is OrderStatus.SETTLED
        market_order = engine.get_order("market").get(timeout=5)
        assert market_order.status is OrderStatus.CANCELLED
        last = repository.events("market")[-1]
        assert isinstance(last, OrderCancelled)
        assert last.reason is CancelReason.REMAINDER

        a1 = engine.account("a1").get(timeout=5).balances
        # sold 0.5 at 100 (fee 0.05), bought 0.4 at 100.10 (fee 0.04); "new" reserves 95 * 0.5
        # plus the fee rate, so USD is its reservation and nothing else.
        usd = FUNDS["USD"] + Decimal("50") - Decimal("0.05") - Decimal("40.04") - Decimal("0.04")
        assert a1["BTC"].available == FUNDS["BTC"] - Decimal("0.5") + Decimal("0.4")
        assert a1["BTC"].reserved == 0
        assert a1["USD"].available + a1["USD"].reserved == usd
        reservation = engine.risk_book.open_reservation("new")
        assert reservation is not None
        assert a1["USD"].reserved == reservation.amount
    finally:
        engine.stop()


def test_recover_when_a_new_market_order_has_no_tick_yet_then_rejects_it_no_market_price(
    repository: MemoryOrderRepository,
) -> None:
    new = _history(_placed("new-market", OrderType.MARKET, Side.BUY, "0.5", None))
    repository.save([new.order], list(new.events))
    engine = _engine(repository)
    try:
        open_orders, executions = _stored(repository)
        engine.recover(open_orders, ACCOUNTS, executions).get(timeout=5)
        engine.wait_idle()
        order = engine.get_order("new-market").get(timeout=5)
        assert order.status is OrderStatus.REJECTED
        assert order.reject_reason == "NO_MARKET_PRICE"
        balances = engine.account("a1").get(timeout=5).balances
        assert all(b.reserved == 0 for b in balances.values())
    finally:
        engine.stop()


def test_recover_when_an_account_was_halted_then_it_stays_halted(
    repository: MemoryOrderRepository,
) -> None:
    # Arrange: the store recorded a1 halted by an operator
    engine = _engine(repository)
    halted = AccountRecord("a1", FUNDS, trading_state=TradingState.HALTED)

    # Act
    engine.recover([], [halted, ACCOUNTS[1]], []).get(timeout=5)
    engine.on_tick(tick())
    engine.wait_idle()
    engine.place_order(place(order_id="after-restart")).get(timeout=5)
    engine.wait_idle()

    # Assert
    order = engine.get_order("after-restart").get(timeout=5)
    engine.stop()
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "KILL_SWITCH_ACCOUNT"
    assert engine.risk_book.trading_state("a2") is TradingState.ACTIVE


def test_recover_when_the_replica_keeps_fewer_accounts_then_keeps_theirs_and_lets_the_others_go(
    restarted: tuple[EngineCore, tuple[object, ...]], repository: MemoryOrderRepository
) -> None:
    """After a rebalance that leaves this replica only a1: a1's balances and resting order as
    the store has them, a2's resting order out of the venue (its new owner fills it), a2 back
    to its opening balances; given both again, everything as before."""
    engine, before = restarted
    open_orders, executions = _stored(repository)
    mine = [s for s in open_orders if s.order.account_id == "a1"]
    fills = [e for e in executions if e.account_id == "a1"]

    # Act
    engine.rebuild(mine, ACCOUNTS, fills).get(timeout=5)
    engine.wait_idle()

    # Assert
    view = _view(engine)
    assert engine.resting_count().get(timeout=5) == 1
    assert engine.matcher.remaining("rest-sell") is None
    assert view[0]["a1"] == before[0]["a1"]  # type: ignore[index]
    a2 = engine.account("a2").get(timeout=5)
    assert {asset: b.available for asset, b in a2.balances.items()} == dict(FUNDS)
    assert engine.risk_book.open_order_count("a2") == 0

    engine.rebuild(open_orders, ACCOUNTS, executions).get(timeout=5)
    engine.wait_idle()
    assert _view(engine) == before
    assert engine.resting_count().get(timeout=5) == 2


def _after(stored: StoredOrder, version: int) -> StoredOrder:
    """The order with only the events after ``version`` (what a checkpoint does not hold)."""
    return StoredOrder(stored.order, tuple(e for e in stored.events if e.sequence > version))


def test_recover_when_from_a_checkpoint_and_the_fills_after_it_then_ends_as_the_live_engine(
    repository: MemoryOrderRepository,
) -> None:
    # Arrange: a life with a checkpoint in the middle: orders ended before it, open across it
    # (part-filled before and after), accepted after it, ended after it
    first = _engine(repository)
    for record in ACCOUNTS:
        first.open_account(record.account_id, record.balances).get(timeout=5)
    first.on_tick(tick())
    first.wait_idle()
    first.place_order(place(kind=OrderType.MARKET, price=None, order_id="m1")).get(timeout=5)
    first.place_order(place(price="99.00", order_id="rest-buy")).get(timeout=5)
    first.place_order(
        place(account="a2", side=Side.SELL, price="101.00", quantity="0.3", order_id="rest-sell")
    ).get(timeout=5)
    first.wait_idle()
    first.on_tick(tick(bid="98.80", ask="98.90", size="0.2", ts=1001.0))  # part-fills rest-buy
    first.wait_idle()
    ledger, versions = first.checkpoint(
        lambda _account: True,
        lambda: {o.order_id: o.version for o in repository.query(OrderQuery(limit=10_000))},
    ).get(timeout=5)
    first.on_tick(tick(bid="98.80", ask="98.90", size="0.1", ts=1002.0))  # and again, after it
    first.place_order(place(kind=OrderType.MARKET, price=None, order_id="m2")).get(timeout=5)
    first.place_order(place(price="98.00", order_id="late-rest")).get(timeout=5)
    first.wait_idle()
    first.cancel_order(cancel("rest-sell", account="a2")).get(timeout=5)
    first.wait_idle()
    view = _view(first)
    first.stop()
    open_orders, _ = _stored(repository)
    after = [
        execution
        for order in repository.query(OrderQuery(limit=10_000))
        for execution in executions_of(
            _after(repository.load(order.order_id), versions.get(order.order_id, 0))  # type: ignore[arg-type]
        )
    ]
    second = _engine(repository)

    # Act
    summary = second.recover(open_orders, ACCOUNTS, after, ledger).get(timeout=5)
    second.wait_idle()

    # Assert
    assert {a.account_id for a in ledger.accounts} == {"a1", "a2"}
    assert ledger.order_ids() == {"rest-buy", "rest-sell"}
    assert [e.order_id for e in after].count("rest-buy") == 1  # only its fill after the checkpoint
    assert summary.orders_finished == 2  # rest-sell (cancelled after it) and m2
    assert summary.resting == 2  # rest-buy and late-rest
    assert summary.skipped == 0
    assert _view(second) == view
    assert second.resting_count().get(timeout=5) == 2
    second.stop()


@pytest.mark.parametrize(
    "refused",
    [
        AccountRecord("bad", {"USD": Decimal("-1")}),
        AccountRecord("nan", {"USD": Decimal("NaN")}),
        AccountRecord("venue", {"USD": Decimal(1)}),
    ],
    ids=["negative balance", "NaN balance", "reserved id"],
)
def test_a_rebuild_when_the_book_refuses_a_stored_account_then_leaves_it_out_and_counts_it(
    repository: MemoryOrderRepository, refused: AccountRecord
) -> None:
    # Arrange
    engine = _engine(repository)

    # Act
    try:
        summary = engine.rebuild([], [ACCOUNTS[0], refused, ACCOUNTS[1]], []).get(timeout=5)
    finally:
        engine.stop()

    # Assert: the others are open, the refused one is not, and the summary says so
    assert summary.accounts_opened == 2
    assert summary.accounts_refused == 1
    assert not engine.risk_book.has_account(refused.account_id)


def test_a_rebuild_when_resting_orders_come_back_then_the_venue_rests_each_once(
    restarted: tuple[EngineCore, tuple[object, ...]], repository: MemoryOrderRepository
) -> None:
    # Arrange: the recovered engine (two orders resting again)
    engine, before = restarted
    open_orders, executions = _stored(repository)

    # Act: its share is rebuilt from the same store (the venue is emptied first, by message)
    summary = engine.rebuild(open_orders, ACCOUNTS, executions).get(timeout=5)
    engine.wait_idle()

    # Assert: both rest again, once, nothing resumed, and the books read as before
    assert (summary.resting, summary.resumed, summary.orders_open) == (2, 0, 2)
    assert engine.resting_count().get(timeout=5) == 2
    assert _view(engine) == before
