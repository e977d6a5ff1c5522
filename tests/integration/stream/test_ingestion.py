"""Kafka ingestion against the real broker and the real engine (in-memory store).

Each test has its own topics (``TopicNames.suffixed``) and consumer group, so tests never see
each other's records.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from oms.config import Settings
from oms.domain.commands import CancelOrder, OpenAccount, PlaceOrder, SetTradingState
from oms.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from oms.domain.limits import RiskLimits, TradingState
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.marketdata import BookLevel, Tick
from oms.store.memory import MemoryOrderRepository
from oms.stream.codecs import decode_event, encode_tick
from oms.stream.command_bus import KafkaCommandBus
from oms.stream.event_sink import KafkaEventSink
from oms.stream.ingestion import StreamIngestion
from oms.stream.names import TopicNames
from oms.stream.topics import dead_letter
from tests.integration.stream.records import read_all

pytestmark = pytest.mark.integration

ACCOUNT = "acct-stream"


class HeldRepository(MemoryOrderRepository):
    """An in-memory repository whose ``flush`` (the durability barrier) can be held shut."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def flush(self) -> None:
        """Block while the gate is shut (the store is "writing")."""
        self.entered.set()
        self.gate.wait(30)


@dataclass
class Pipeline:
    """A started engine, event sink and ingestion over this test's topics."""

    settings: Settings
    names: TopicNames
    group_id: str
    engine: Engine
    repository: MemoryOrderRepository
    ingestion: StreamIngestion
    producer: AIOKafkaProducer

    async def produce(self, topic: str, value: bytes, key: str = ACCOUNT) -> None:
        await (await self.producer.send(topic, value=value, key=key.encode()))

    async def order(self, order_id: str) -> Any:
        return await self.engine.get_order(order_id)


async def _eventually(check: Callable[[], Any], within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
def small(settings: Settings) -> Settings:
    return settings.replace(
        orders_partitions=2,
        executions_partitions=1,
        prices_partitions=1,
        events_partitions=1,
        simulated_feed=False,
    )


async def _pipeline(
    settings: Settings, unique: str, repository: MemoryOrderRepository
) -> AsyncIterator[Pipeline]:
    names = TopicNames.suffixed(unique)
    group_id = f"oms-test-{unique}"
    sink = KafkaEventSink(settings, names, account_of=lambda _: None)
    engine = Engine(EngineCore(settings, repository=repository, sink=sink))
    ingestion = StreamIngestion(settings, engine, names=names, group_id=group_id, sink=sink)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    pipeline = Pipeline(settings, names, group_id, engine, repository, ingestion, producer)
    engine.start()
    await sink.start()
    await producer.start()
    try:
        await ingestion.start()
        await _eventually(_async(ingestion.partitions_assigned), 30)
        await engine.open_account(ACCOUNT, {"USD": Decimal(1_000_000)})
        yield pipeline
    finally:
        if isinstance(repository, HeldRepository):
            repository.gate.set()
        await producer.stop()
        await ingestion.stop()
        await sink.stop()
        engine.stop()


def _async(fn: Callable[[], Any]) -> Callable[[], Any]:
    async def call() -> Any:
        return fn()

    return call


@pytest.fixture
async def pipeline(small: Settings, unique: str) -> AsyncIterator[Pipeline]:
    async for started in _pipeline(small, unique, MemoryOrderRepository()):
        yield started


@pytest.fixture
async def held(small: Settings, unique: str) -> AsyncIterator[Pipeline]:
    async for started in _pipeline(small, unique, HeldRepository()):
        yield started


def _tick(price: str) -> Tick:
    last = Decimal(price)
    bid, ask = last - Decimal("0.5"), last + Decimal("0.5")
    return Tick(
        symbol="BTC-USD",
        last_price=last,
        best_bid=bid,
        best_ask=ask,
        bids=(BookLevel(bid, Decimal(5)),),
        asks=(BookLevel(ask, Decimal(5)),),
        ts=time.time(),
    )


def _place(order_id: str, **overrides: Any) -> bytes:
    body = {
        "type": "PlaceOrder",
        "order_id": order_id,
        "account_id": ACCOUNT,
        "symbol": "BTC-USD",
        "side": "BUY",
        "order_type": "MARKET",
        "quantity": "0.01",
    }
    body.update(overrides)
    return orjson.dumps(body)


async def _settled_with_price(p: Pipeline) -> None:
    await p.produce(p.names.prices, encode_tick(_tick("30000.00")), key="BTC-USD")

    async def has_price() -> bool:
        return await p.engine.order_book("BTC-USD") is not None

    await _eventually(has_price)


async def test_ingestion_when_an_order_is_produced_on_orders_then_settled_and_published(
    pipeline: Pipeline,
) -> None:
    # Arrange: a price reaches the engine through the prices topic
    await _settled_with_price(pipeline)

    # Act
    await pipeline.produce(pipeline.names.orders, _place("o-kafka-1"))

    # Assert: through the engine...
    async def settled() -> Any:
        order = await pipeline.order("o-kafka-1")
        return order if order is not None and order.status is OrderStatus.SETTLED else None

    order = await _eventually(settled)
    assert order.filled_quantity == Decimal("0.01")
    # ...and on order-events, keyed by the account, in order
    records = await read_all(
        pipeline.settings,
        pipeline.names.order_events,
        lambda seen: any(decode_event(r.value)[0].__class__.__name__ == "OrderSettled"
                         for r in seen),
    )  # fmt: skip
    decoded = [decode_event(r.value) for r in records]
    assert [type(e).__name__ for e, _ in decoded] == [
        "OrderPlaced", "OrderAccepted", "OrderFilled", "OrderSettled",
    ]  # fmt: skip
    assert {account for _, account in decoded} == {ACCOUNT}
    assert {r.key for r in records} == {ACCOUNT.encode()}


async def test_ingestion_when_a_record_is_poison_then_dead_lettered_and_the_next_processed(
    pipeline: Pipeline,
) -> None:
    # Arrange
    await _settled_with_price(pipeline)
    orders = pipeline.names.orders

    # Act: garbage, a JSON number as an amount, a cancel of an unknown order, then a good one
    await pipeline.produce(orders, b"{not json")
    await pipeline.produce(orders, _place("o-bad-amount", quantity=0.01))
    await pipeline.produce(
        orders, orjson.dumps({"type": "CancelOrder", "order_id": "nope", "account_id": ACCOUNT})
    )
    await pipeline.produce(orders, _place("o-after-poison"))

    # Assert
    async def processed() -> Any:
        order = await pipeline.order("o-after-poison")
        return order is not None and order.status is OrderStatus.SETTLED

    await _eventually(processed)
    dead = await read_all(pipeline.settings, dead_letter(orders), lambda seen: len(seen) >= 3)
    letters = [orjson.loads(r.value) for r in dead]
    assert [letter["reason"] for letter in letters] == [
        "MALFORMED_JSON", "INVALID_AMOUNT", "UNKNOWN_ORDER",
    ]  # fmt: skip
    assert letters[0]["value"] == "{not json"
    assert letters[0]["topic"] == orders
    assert all(r.key == ACCOUNT.encode() for r in dead)
    assert [letter["offset"] for letter in letters] == [0, 1, 2]
    assert await pipeline.order("o-bad-amount") is None


async def _committed(settings: Settings, group_id: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def test_ingestion_when_the_store_is_held_then_commits_the_offset_only_after_the_barrier(
    held: Pipeline,
) -> None:
    # Arrange: the store's flush is held shut
    repository = held.repository
    assert isinstance(repository, HeldRepository)
    repository.gate.clear()
    orders = held.names.orders

    # Act: a command arrives and is applied, but its flush cannot finish
    await held.produce(orders, _place("o-held", order_type="LIMIT", price="100.00"))
    await _eventually(_async(repository.entered.is_set))
    await asyncio.sleep(1.0)  # five commit intervals

    # Assert: nothing committed while the barrier is held...
    assert all(offset <= 0 for offset in (await _committed(
        held.settings, held.group_id, orders)).values())  # fmt: skip
    assert held.ingestion.stats.batches == 0

    # ...and the offset right after the record once the flush finishes
    repository.gate.set()

    async def committed_after_release() -> bool:
        offsets = await _committed(held.settings, held.group_id, orders)
        return 1 in offsets.values()

    await _eventually(committed_after_release, 10)
    assert held.ingestion.stats.batches == 1


async def _status(p: Pipeline, order_id: str, status: OrderStatus) -> Any:
    async def reached() -> Any:
        order = await p.order(order_id)
        return order if order is not None and order.status is status else None

    return await _eventually(reached)


async def test_command_bus_when_placing_and_cancelling_then_goes_through_kafka(
    pipeline: Pipeline,
) -> None:
    # Arrange
    await _settled_with_price(pipeline)
    bus = KafkaCommandBus(pipeline.settings, pipeline.names)
    await bus.start()
    place = PlaceOrder(
        "place:o-bus", "o-bus", "o-bus", ACCOUNT, "BTC-USD", Side.BUY, OrderType.LIMIT,
        Decimal("0.01"), Decimal("29900.00"), TimeInForce.GTC, time.time(),
    )  # fmt: skip
    try:
        # Act
        await bus.send([place])
        await _status(pipeline, "o-bus", OrderStatus.ACCEPTED)
        await bus.send([CancelOrder("cancel:o-bus", "o-bus", ACCOUNT, time.time())])

        # Assert
        order = await _status(pipeline, "o-bus", OrderStatus.CANCELLED)
    finally:
        await bus.stop()
    assert order.filled_quantity == 0


async def test_the_command_bus_when_commands_name_requests_then_their_events_carry_them(
    pipeline: Pipeline,
) -> None:
    # Arrange: one place alone (the bus's one-by-one path), twenty together (its batches), and
    # one produced by another system without a request id
    await _settled_with_price(pipeline)
    bus = KafkaCommandBus(pipeline.settings, pipeline.names)
    await bus.start()

    def place(order_id: str) -> PlaceOrder:
        return PlaceOrder(
            f"place:{order_id}", order_id, order_id, ACCOUNT, "BTC-USD", Side.BUY,
            OrderType.MARKET, Decimal("0.01"), None, TimeInForce.IOC, time.time(),
            request_id=f"req-{order_id}",
        )  # fmt: skip

    try:
        # Act
        await bus.send([place("o-alone")])
        await bus.send([place(f"o-batch-{i}") for i in range(20)])
        await pipeline.produce(pipeline.names.orders, _place("o-other"))
        for order_id in ("o-alone", "o-batch-19", "o-other"):
            await _status(pipeline, order_id, OrderStatus.SETTLED)
    finally:
        await bus.stop()

    # Assert: in the engine's history and on order-events
    for order_id in ("o-alone", "o-batch-0", "o-batch-19"):
        events = await pipeline.engine.order_events(order_id)
        assert [e.request_id for e in events[:2]] == [f"req-{order_id}"] * 2
    other = (await pipeline.engine.order_events("o-other"))[0].request_id
    assert other is not None
    assert other.startswith(f"{pipeline.names.orders}/")
    published = await read_all(
        pipeline.settings, pipeline.names.order_events, lambda seen: len(seen) >= 22 * 4
    )
    placed = [decode_event(r.value)[0] for r in published]
    named = {e.order_id: e.request_id for e in placed if type(e).__name__ == "OrderPlaced"}
    assert named["o-batch-7"] == "req-o-batch-7"
    assert named["o-other"] == other


async def test_ingestion_when_an_external_fill_arrives_then_settles_and_an_overfill_is_dead_lettered(
    pipeline: Pipeline,
) -> None:
    # Arrange: a resting order
    await _settled_with_price(pipeline)
    await pipeline.produce(
        pipeline.names.orders, _place("o-ext", order_type="LIMIT", price="29900.00")
    )
    await _status(pipeline, "o-ext", OrderStatus.ACCEPTED)
    fill = {"execution_id": "x-1", "order_id": "o-ext", "account_id": ACCOUNT,
            "quantity": "0.01", "price": "29900.00", "fee": "0.30"}  # fmt: skip

    # Act: the fill, the same execution again (harmless), and one too many
    executions = pipeline.names.executions
    await pipeline.produce(executions, orjson.dumps(fill))
    await pipeline.produce(executions, orjson.dumps(fill))
    await pipeline.produce(executions, orjson.dumps({**fill, "execution_id": "x-2"}))

    # Assert
    order = await _status(pipeline, "o-ext", OrderStatus.SETTLED)
    assert order.filled_quantity == Decimal("0.01")
    assert order.version == 4  # placed, accepted, filled, settled: the repeat changed nothing
    dead = await read_all(pipeline.settings, dead_letter(executions), lambda seen: len(seen) >= 1)
    assert [orjson.loads(r.value)["reason"] for r in dead] == ["INVALID_TRANSITION"]
    assert orjson.loads(dead[0].value)["offset"] == 2


async def test_ingestion_when_account_changes_come_through_kafka_then_reach_the_owner_ahead_of_orders(
    pipeline: Pipeline,
) -> None:
    """An account opened (and halted) on another replica: the announcements on ``orders`` open
    it here before its first order, then halt it; a global halt reaches every partition."""
    # Arrange
    await _settled_with_price(pipeline)
    bus = KafkaCommandBus(pipeline.settings, pipeline.names)
    await bus.start()
    elsewhere = "acct-elsewhere"
    limits = RiskLimits(max_order_notional=Decimal("100000"))
    try:
        # Act: opened, then an order, then halted, then another order; then a global halt
        await bus.send_account(OpenAccount(elsewhere, {"USD": Decimal("50000")}, limits))
        await pipeline.produce(pipeline.names.orders, _place("o-opened", account_id=elsewhere),
                               key=elsewhere)  # fmt: skip
        await bus.send_account(SetTradingState(TradingState.HALTED, elsewhere))
        await pipeline.produce(pipeline.names.orders, _place("o-halted", account_id=elsewhere),
                               key=elsewhere)  # fmt: skip
        settled = await _status(pipeline, "o-opened", OrderStatus.SETTLED)
        halted = await _status(pipeline, "o-halted", OrderStatus.REJECTED)
        await bus.send_account(SetTradingState(TradingState.HALTED, None))

        # Assert
        async def globally_halted() -> bool:
            return pipeline.engine.core.risk_book.trading_state() is TradingState.HALTED

        await _eventually(globally_halted)
    finally:
        await bus.stop()
    assert settled.filled_quantity == Decimal("0.01")
    assert halted.reject_reason == "KILL_SWITCH_ACCOUNT"
    snapshot = await pipeline.engine.account(elsewhere)
    assert snapshot.limits == limits
    assert pipeline.ingestion.stats.dead_letters == 0


async def _lag_of(ingestion: StreamIngestion, topic: str, partition: int) -> int:
    """The lag the ingestion reports for one partition, once it knows the partition's end."""

    async def known() -> Any:
        lag = ingestion.consumer_lag()
        return lag if (topic, partition) in lag else None

    return int((await _eventually(known))[(topic, partition)])


async def test_consumer_lag_when_a_restart_owns_partitions_committed_before_then_reads_zero(
    pipeline: Pipeline,
) -> None:
    # Arrange: five records on partition 0 of orders, processed and committed by this replica
    orders = pipeline.names.orders
    for n in range(5):
        place = _place(f"o-lag-{n}", order_type="LIMIT", price="100.00")
        await (await pipeline.producer.send(orders, value=place, key=ACCOUNT.encode(),
                                            partition=0))  # fmt: skip

    async def committed() -> bool:
        return (await _committed(pipeline.settings, pipeline.group_id, orders)).get(0) == 5

    await _eventually(committed)
    assert await _lag_of(pipeline.ingestion, orders, 0) == 0
    await pipeline.ingestion.stop()

    # Act: the replica restarts (a new ingestion in the same group): nothing is outstanding
    again = StreamIngestion(
        pipeline.settings, pipeline.engine, names=pipeline.names, group_id=pipeline.group_id,
        prices=False,
    )  # fmt: skip
    await again.start()
    try:
        await _eventually(_async(again.partitions_assigned), 30)
        lag_committed = await _lag_of(again, orders, 0)
        lag_never_used = await _lag_of(again, orders, 1)
    finally:
        await again.stop()

    # Assert: not the partition's end (5) for records committed before the restart
    assert lag_committed == 0
    assert lag_never_used == 0


async def test_consumer_lag_when_a_record_is_not_durable_yet_then_counts_it_until_committed(
    held: Pipeline,
) -> None:
    # Arrange: the store's flush is held shut, so nothing can be committed
    repository = held.repository
    assert isinstance(repository, HeldRepository)
    repository.gate.clear()
    orders = held.names.orders

    # Act: two records arrive on a partition never committed before
    for n in range(2):
        place = _place(f"o-held-{n}", order_type="LIMIT", price="100.00")
        await (await held.producer.send(orders, value=place, key=ACCOUNT.encode(),
                                        partition=1))  # fmt: skip
    await _eventually(_async(repository.entered.is_set))

    async def both_seen() -> bool:
        return held.ingestion.consumer_lag().get((orders, 1)) == 2

    await _eventually(both_seen)
    repository.gate.set()

    # Assert: counted while not durable, gone once committed
    async def caught_up() -> bool:
        return held.ingestion.consumer_lag().get((orders, 1)) == 0

    await _eventually(caught_up)


async def test_ingestion_when_an_account_id_is_reserved_then_dead_letters_the_opening(
    pipeline: Pipeline,
) -> None:
    # Arrange
    orders = pipeline.names.orders
    record = orjson.dumps({"type": "OpenAccount", "account_id": "VENUE", "balances": {"USD": "1"}})

    # Act: the reserved opening, then a good order behind it
    await pipeline.produce(orders, record, key="VENUE")
    await pipeline.produce(orders, _place("o-after-venue", order_type="LIMIT", price="100.00"))

    # Assert: dead-lettered with its reason, and the order behind it processed
    await _status(pipeline, "o-after-venue", OrderStatus.ACCEPTED)
    dead = await read_all(pipeline.settings, dead_letter(orders), lambda seen: len(seen) >= 1)
    letter = orjson.loads(dead[0].value)
    assert letter["reason"] == "RESERVED_ACCOUNT_ID"
    assert letter["value"] == record.decode()
    assert not pipeline.engine.core.risk_book.has_account("VENUE")
