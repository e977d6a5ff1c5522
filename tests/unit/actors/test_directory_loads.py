"""Orders only the store's MongoDB knows are loaded off the engine's thread, and what arrives for
them meanwhile waits behind the load, in order; a failing load is asked again, never raised.

The store here is memory plus an archive reachable only through ``read``, whose every read
waits until the test answers or fails it (from the test's thread, as the store's loop would).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from concurrent.futures import Future
from decimal import Decimal
from typing import Any

import pytest

from oms.actors.directory import LOAD_RETRY_FIRST_S, OrderDirectory
from oms.actors.messages import GetOrder
from oms.actors.runtime import DispatchFuture
from oms.codec import CodecError
from oms.config import Settings
from oms.domain.commands import ApplyFill
from oms.domain.enums import OrderStatus
from oms.domain.errors import StoreClosed, StoreUnavailable, UnknownOrder
from oms.domain.events import OrderCancelled, OrderPlaced
from oms.domain.limits import RiskLimits
from oms.domain.orders import Order, fold
from oms.domain.transitions import InvalidTransition, Trigger
from oms.engine.core import EngineCore
from oms.engine.ports import StoredOrder
from oms.store.memory import MemoryOrderRepository, answered
from tests.unit.engine_helpers import FUNDS, cancel, place, tick
from tests.unit.store.histories import settled_history

Read = tuple[str, float, "Future[StoredOrder | None]"]


class ArchiveStore(MemoryOrderRepository):
    """Memory, plus orders only "MongoDB" holds: each read of them waits for the test."""

    def __init__(self, archive: dict[str, StoredOrder], maybe: set[str]) -> None:
        super().__init__()
        self.archive = archive
        self.maybe = maybe | set(archive)  # ids memory would send to MongoDB
        self.asked: queue.Queue[Read] = queue.Queue()
        self.attempts: list[int] = []  # of each read that reached "MongoDB", in order

    def may_be_stored(self, order_id: str) -> bool:
        return order_id in self.maybe and self.load(order_id) is None

    def read(
        self, order_id: str, *, delay_s: float = 0.0, attempt: int = 0
    ) -> Future[StoredOrder | None]:
        held = self.load(order_id)
        if held is not None or order_id not in self.maybe:
            return answered(held)
        self.attempts.append(attempt)
        future: Future[StoredOrder | None] = Future()
        self.asked.put((order_id, delay_s, future))
        return future

    def next_read(self) -> Read:
        return self.asked.get(timeout=5)

    def answer(self) -> Read:
        asked = self.next_read()
        asked[2].set_result(self.archive.get(asked[0]))
        return asked

    def fail(self, error: Exception | None = None) -> Read:
        asked = self.next_read()
        asked[2].set_exception(error or StoreUnavailable("MongoDB did not answer"))
        return asked


def _archived(order_id: str) -> StoredOrder:
    """A SETTLED order of a1 (two fills, ``x-{order_id}-1`` and ``-2``), finished long ago."""
    events = tuple(settled_history(order_id, account_id="a1", at=900.0))
    return StoredOrder(fold(events), events)


@pytest.fixture
def store() -> ArchiveStore:
    return ArchiveStore({"old-1": _archived("old-1")}, maybe={"ghost", "gone"})


@pytest.fixture
def engine(store: ArchiveStore) -> Iterator[EngineCore]:
    e = EngineCore(
        Settings(simulated_feed=False),
        repository=store,
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
        clock=lambda: 1000.0,
    )
    e.start()
    for account in ("a1", "a2"):
        e.open_account(account, FUNDS).get(timeout=5)
    e.on_tick(tick())
    e.wait_idle()
    yield e
    e.stop()


def _code(future: Any) -> str:
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the reason code is asserted
        future.get(timeout=5)
    return str(getattr(raised.value, "code", type(raised.value).__name__))


def test_commands_when_their_order_loads_after_failures_then_applied_in_order(
    engine: EngineCore, store: ArchiveStore
) -> None:
    # Arrange: an id memory cannot rule out (a filter's false positive), MongoDB away twice
    placed = place(order_id="ghost", price="95.00")
    cancelled = cancel("ghost")

    # Act
    place_reply = engine.place_order(placed)
    cancel_reply = engine.cancel_order(cancelled)
    delays = [store.fail()[1], store.fail()[1]]
    other = engine.place_order(place(price="95.00")).get(timeout=5)  # not held up meanwhile
    assert not place_reply.done()
    delays.append(store.answer()[1])  # MongoDB has no such order
    engine.wait_idle()

    # Assert: the place went first, then the cancel; the directory lives on; each retry said
    # which it was (the store gives it longer)
    assert delays == [0.0, LOAD_RETRY_FIRST_S, 2 * LOAD_RETRY_FIRST_S]
    assert store.attempts == [0, 1, 2]
    assert other.status is OrderStatus.NEW
    assert place_reply.get(timeout=5).status is OrderStatus.NEW
    assert cancel_reply.get(timeout=5).order_id == "ghost"
    events = store.events("ghost")
    assert isinstance(events[0], OrderPlaced)  # a cancel routed first would be UNKNOWN_ORDER
    assert isinstance(events[-1], OrderCancelled)
    assert events[-1].command_id == cancelled.command_id
    stats = engine.stats().get(timeout=5)
    assert (stats["loads"], stats["load_failures"], stats["loading"]) == (1, 2, 0)


def test_engine_idle_when_a_load_is_outstanding_then_resolves_only_after_it(
    engine: EngineCore, store: ArchiveStore
) -> None:
    # Arrange: a cancel of an order only MongoDB has, told as the ingestion does
    engine.submit([cancel("old-1")])
    store.fail()  # the first attempt fails: retried, still outstanding

    # Act
    idle = engine.idle()
    time.sleep(0.2)
    waited = idle.done()
    store.answer()

    # Assert: not idle while the cancel waited for its order; idle once it was refused
    assert not waited
    idle.get(timeout=5)
    assert engine.stats().get(timeout=5)["loading"] == 0


def test_replays_when_order_only_in_mongodb_then_answered_from_it_and_nothing_changes(
    engine: EngineCore, store: ArchiveStore
) -> None:
    # Arrange: a settled order memory no longer holds
    archived = store.archive["old-1"]
    replayed_fill = ApplyFill(
        "x-old-1-1", "old-1", "a1", Decimal("0.20"), Decimal("30000.10"), Decimal("6"), 900.0
    )

    # Act: three commands arrive while its one load is outstanding
    place_again = engine.place_order(
        place(order_id="old-1", price="95.00"),
    )
    fill_again = engine.apply_fill(replayed_fill)
    new_cancel = engine.cancel_order(cancel("old-1"))
    store.answer()
    engine.wait_idle()

    # Assert
    assert place_again.get(timeout=5) == archived.order
    assert fill_again.get(timeout=5) == archived.order
    with pytest.raises(InvalidTransition) as refused:
        new_cancel.get(timeout=5)
    assert refused.value.code == "INVALID_TRANSITION"
    assert refused.value.status is OrderStatus.SETTLED
    assert refused.value.trigger is Trigger.CANCEL
    assert store.load("old-1") is None  # nothing saved: the replays changed nothing
    assert store.asked.empty()  # one load served all three


def test_cancel_when_mongodb_does_not_know_the_order_then_unknown_order(
    engine: EngineCore, store: ArchiveStore
) -> None:
    # Act
    answer = engine.cancel_order(cancel("gone"))
    store.answer()

    # Assert
    assert _code(answer) == UnknownOrder.code


def test_query_when_order_only_in_mongodb_then_answered_after_its_load(
    engine: EngineCore, store: ArchiveStore
) -> None:
    # Arrange
    directory = engine._directory
    reply: DispatchFuture[Order | None] = DispatchFuture()

    # Act
    directory.tell(GetOrder("old-1", reply))
    store.answer()

    # Assert
    assert reply.get(timeout=5) == store.archive["old-1"].order
    assert isinstance(directory._actor_weakref(), OrderDirectory)


def test_load_when_store_closed_then_what_waited_is_refused_and_engine_idles(
    engine: EngineCore, store: ArchiveStore
) -> None:
    # Arrange
    answer = engine.cancel_order(cancel("old-1"))

    # Act
    store.fail(StoreClosed("the order store is closed"))

    # Assert: refused with the store's reason, not retried for ever, the hold released
    assert _code(answer) == StoreClosed.code
    engine.idle().get(timeout=5)
    assert store.asked.empty()


def test_get_order_when_only_mongodb_has_it_then_read_by_the_store_not_the_engine(
    engine: EngineCore, store: ArchiveStore
) -> None:
    # Act: the engine's read goes to the store; nothing queues on the dispatcher for it
    found = engine.get_order("old-1")
    store.answer()

    # Assert
    assert found.get(timeout=5) == store.archive["old-1"].order
    assert engine.stats().get(timeout=5)["loads"] == 0


def test_load_when_document_unreadable_then_refused_with_its_code_not_retried(
    engine: EngineCore, store: ArchiveStore
) -> None:
    # Arrange
    answer = engine.cancel_order(cancel("old-1"))

    # Act: an unreadable record is no outage: asking again would hold every commit for ever
    store.fail(CodecError("unreadable order document 'old-1'"))

    # Assert
    assert _code(answer) == CodecError.code
    engine.idle().get(timeout=5)
    assert store.asked.empty()
    assert engine.stats().get(timeout=5)["load_failures"] == 0
