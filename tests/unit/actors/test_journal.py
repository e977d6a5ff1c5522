"""The journal publishes a batch (event sink and listeners) only once the store has it durable."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from oms.actors.journal import Journal
from oms.domain.events import OrderEvent
from oms.engine.ports import EventSink
from oms.store.memory import MemoryOrderRepository
from tests.unit.store.histories import open_history, settled_history, states


class _WriteBehind(MemoryOrderRepository):
    """A store that becomes durable only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Callable[[], None]] = []

    def after_durable(self, callback: Callable[[], None]) -> None:
        self.waiting.append(callback)

    def written(self) -> None:
        waiting, self.waiting = self.waiting, []
        for callback in waiting:
            callback()


class _Sink(EventSink):
    def __init__(self) -> None:
        self.published: list[OrderEvent] = []

    def publish(self, events: Sequence[OrderEvent]) -> None:
        self.published.extend(events)


def test_events_reach_the_sink_and_listeners_only_after_the_store_made_them_durable() -> None:
    # Arrange
    store, sink = _WriteBehind(), _Sink()
    journal = Journal(store, sink)
    heard: list[OrderEvent] = []
    journal.subscribe(heard.extend)
    history = settled_history("o-1")
    for event, order in zip(history, states(history), strict=True):
        journal.record(order, event)

    # Act
    journal.flush()

    # Assert: saved at once, told nobody yet
    assert store.get("o-1") is not None
    assert sink.published == []
    assert heard == []

    # Act: the store reports the write
    store.written()

    # Assert
    assert sink.published == history
    assert heard == history


def test_a_store_that_writes_through_publishes_at_once() -> None:
    # Arrange
    sink = _Sink()
    journal = Journal(MemoryOrderRepository(), sink)
    history = settled_history("o-1")
    for event, order in zip(history, states(history), strict=True):
        journal.record(order, event)

    # Act
    journal.flush()

    # Assert
    assert sink.published == history


def test_under_load_only_finished_orders_are_handed_over_and_the_rest_wait_whole() -> None:
    # Arrange: one order settled, one still open (midway), their events interleaved
    store, sink = MemoryOrderRepository(), _Sink()
    journal = Journal(store, sink)
    done, midway = settled_history("o-done"), open_history("o-open")
    finished = list(zip(done, states(done), strict=True))
    open_steps = list(zip(midway, states(midway), strict=True))
    steps = [step for pair in zip(finished, open_steps, strict=False) for step in pair]
    steps += finished[len(open_steps) :]
    for event, order in steps:
        journal.record(order, event)

    # Act
    journal.flush_finished()

    # Assert: the finished order went whole; the open one is still held, in order
    assert sink.published == done
    assert store.get("o-open") is None
    assert journal.holds("o-open")

    # Act: the queue ran dry
    journal.flush()

    # Assert
    assert sink.published == done + midway
    assert store.get("o-open") == states(midway)[-1]


def test_record_all_when_a_message_applied_several_events_then_held_as_if_each_was_recorded() -> (
    None
):
    # Arrange: the order's whole settled life, recorded as one message's events
    store, sink = MemoryOrderRepository(), _Sink()
    journal = Journal(store, sink)
    done = settled_history("o-done")

    # Act
    journal.record_all(states(done)[-1], done)
    journal.flush_finished()

    # Assert: finished, so handed over whole under load
    assert sink.published == done
    assert not journal.holds("o-done")


def test_flush_finished_when_the_finished_order_was_flushed_already_then_hands_over_nothing() -> (
    None
):
    # Arrange: a settled order flushed when the queue ran dry, then an open one recorded
    store, sink = MemoryOrderRepository(), _Sink()
    journal = Journal(store, sink)
    done, midway = settled_history("o-done"), open_history("o-open")
    for event, order in zip(done, states(done), strict=True):
        journal.record(order, event)
    journal.flush()
    for event, order in zip(midway, states(midway), strict=True):
        journal.record(order, event)

    # Act
    journal.flush_finished()

    # Assert: nothing more published; the open order still held
    assert sink.published == done
    assert journal.holds("o-open")
