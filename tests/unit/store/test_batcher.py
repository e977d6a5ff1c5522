"""The write-behind buffer: served from memory at once, drained once per order, bounded."""

from __future__ import annotations

import hashlib

from oms.domain.enums import OrderStatus
from oms.engine.ports import OrderQuery, StoredOrder
from oms.store.batcher import IdFilter, WriteBehind
from oms.store.documents import OrderDocument, order_document, order_document_id, stored_order
from tests.unit.store.histories import open_history, settled_history, states


def _save_whole(buffer: WriteBehind, history: list) -> None:
    for event, order in zip(history, states(history), strict=True):
        buffer.save([order], [event])


def test_load_when_an_order_was_saved_then_reads_it_back_at_once_with_its_history() -> None:
    buffer = WriteBehind()
    history = settled_history("o-1")
    _save_whole(buffer, history)
    assert buffer.get("o-1") == states(history)[-1]
    assert buffer.load("o-1") == StoredOrder(states(history)[-1], tuple(history))


def test_drain_when_orders_changed_then_gives_each_once_with_latest_state_and_whole_history() -> (
    None
):
    buffer = WriteBehind()
    _save_whole(buffer, settled_history("o-1"))
    _save_whole(buffer, open_history("o-2"))
    drained = buffer.drain()
    assert drained.mark == buffer.saved == 7
    assert [(s.order.order_id, s.order.version, len(s.events)) for s in drained.states] == [
        ("o-1", 5, 5),
        ("o-2", 2, 2),
    ]
    assert buffer.drain().states == ()


def test_save_when_a_batch_is_replayed_then_changes_nothing_in_memory() -> None:
    buffer = WriteBehind()
    history = settled_history("o-1")
    _save_whole(buffer, history)
    _save_whole(buffer, history)
    assert buffer.load("o-1") == StoredOrder(states(history)[-1], tuple(history))


def test_written_when_a_drain_is_written_then_advances_the_durable_mark_to_it() -> None:
    buffer = WriteBehind()
    _save_whole(buffer, open_history("o-1"))
    drained = buffer.drain()
    _save_whole(buffer, open_history("o-2"))
    buffer.written(drained)
    assert buffer.durable == 2
    assert buffer.saved == 4


def test_written_when_beyond_the_cap_then_only_durable_terminal_orders_leave_memory() -> None:
    buffer = WriteBehind(keep_terminal=2)
    for i in range(4):
        _save_whole(buffer, settled_history(f"done-{i}", at=100.0 + i))
    _save_whole(buffer, open_history("open-1", at=50.0))
    assert len(buffer) == 5  # nothing durable yet: everything stays
    buffer.written(buffer.drain())
    assert not buffer.holds("done-0")
    assert not buffer.holds("done-1")
    assert buffer.holds("done-2")
    assert buffer.holds("done-3")
    assert buffer.holds("open-1")  # open orders never leave
    assert buffer.may_be_stored("done-0")
    assert not buffer.may_be_stored("never-seen")


def test_listing_when_orders_left_memory_then_says_where_memory_may_miss_them() -> None:
    buffer = WriteBehind(keep_terminal=1)
    for i in range(3):
        _save_whole(buffer, settled_history(f"done-{i}", at=100.0 + i))
    found, dropped = buffer.query(OrderQuery(account_id="acct-1", limit=10))
    assert [o.order_id for o in found] == ["done-2", "done-1", "done-0"]
    assert dropped is None
    buffer.written(buffer.drain())
    found, dropped = buffer.query(OrderQuery(account_id="acct-1", limit=10))
    assert [o.order_id for o in found] == ["done-2"]
    assert dropped == (101.0, "done-1")


def test_listing_when_given_a_status_or_cursor_then_filters_by_it() -> None:
    buffer = WriteBehind()
    _save_whole(buffer, settled_history("a", at=1.0))
    _save_whole(buffer, open_history("b", at=2.0))
    _save_whole(buffer, settled_history("c", at=3.0))
    found, _ = buffer.query(OrderQuery(account_id="acct-1", status=OrderStatus.SETTLED))
    assert [o.order_id for o in found] == ["c", "a"]
    found, _ = buffer.query(OrderQuery(before=(3.0, "c")))
    assert [o.order_id for o in found] == ["b", "a"]


def test_id_filter_when_filled_past_capacity_then_never_forgets_and_rarely_imagines() -> None:
    ids = IdFilter(capacity=1_000)
    added = [f"order-{i}" for i in range(2_500)]  # three slices
    for order_id in added:
        ids.add(order_id)
    assert all(order_id in ids for order_id in added)
    imagined = sum(f"other-{i}" in ids for i in range(20_000))
    assert imagined <= 5
    assert len(ids) == 2_500


def test_order_document_id_when_the_order_ends_then_moves_from_version_key_to_order_id() -> None:
    history = settled_history("o-1")
    open_state, final = states(history)[1], states(history)[-1]
    assert order_document_id(open_state) == "o-1:00000002"
    assert order_document_id(final) == "o-1"


def test_order_document_when_built_then_has_the_beanie_fields_and_reads_back_whole() -> None:
    history = settled_history("o-1")
    final = states(history)[-1]
    raw = order_document(final, history)
    fields = {f.alias or name for name, f in OrderDocument.model_fields.items()} - {"revision_id"}
    assert set(raw) == fields
    assert raw["terminal"] is True
    assert raw["status"] == "SETTLED"
    assert stored_order(raw) == StoredOrder(final, tuple(history))


def test_drain_when_a_young_open_order_has_no_waiter_then_holds_it_and_the_mark_stops_short() -> (
    None
):
    buffer = WriteBehind()
    _save_whole(buffer, settled_history("done"))  # marks 1..5
    _save_whole(buffer, open_history("open"))  # marks 6..7
    drained = buffer.drain(required=0, hold_s=60.0)
    assert [s.order.order_id for s in drained.states] == ["done"]
    assert drained.mark == 5  # "open" changed first in save 6: not durable past 5
    assert buffer.pending() == 1


def test_drain_when_a_held_order_ends_or_is_waited_for_then_it_goes() -> None:
    buffer = WriteBehind()
    history = settled_history("o-1")
    _save_whole(buffer, history[:2])  # marks 1, 2
    assert buffer.drain(required=0, hold_s=60.0).states == ()
    # it finishes: the whole life goes as one terminal state
    for event, order in list(zip(history, states(history), strict=True))[2:]:
        buffer.save([order], [event])
    drained = buffer.drain(required=0, hold_s=60.0)
    assert [(s.order.status, len(s.events)) for s in drained.states] == [(OrderStatus.SETTLED, 5)]
    assert drained.mark == 5
    _save_whole(buffer, open_history("o-2"))  # marks 6, 7
    drained = buffer.drain(required=6, hold_s=60.0)  # someone waits on save 6
    assert [s.order.order_id for s in drained.states] == ["o-2"]
    assert drained.mark == 7


def test_drain_when_there_is_no_hold_then_every_change_goes_at_once() -> None:
    buffer = WriteBehind()
    _save_whole(buffer, open_history("o-1"))
    drained = buffer.drain(required=0, hold_s=0.0)
    assert [s.order.order_id for s in drained.states] == ["o-1"]
    assert drained.mark == 2


def test_forget_durable_when_the_share_changed_then_keeps_only_what_waits_to_be_written() -> None:
    # Arrange: two orders written, then one more changed and not yet written
    buffer = WriteBehind()
    _save_whole(buffer, settled_history("done", at=100.0))
    _save_whole(buffer, open_history("open", at=101.0))
    buffer.written(buffer.drain())
    _save_whole(buffer, open_history("pending", at=102.0))

    # Act: the replica's share of the accounts changed
    dropped = buffer.forget_durable()

    # Assert: reads of the durable ones go to MongoDB now; the pending one is still written
    assert dropped == 2
    assert not buffer.holds("done")
    assert not buffer.holds("open")
    assert buffer.may_be_stored("open")
    assert buffer.holds("pending")
    assert [s.order.order_id for s in buffer.drain().states] == ["pending"]


def _save_final(buffer: WriteBehind, history: list) -> None:
    buffer.save([states(history)[-1]], history)


def test_listing_when_orders_arrive_out_of_creation_order_then_newest_created_first() -> None:
    # Arrange: created at 3, 1, 2 (two doors' clocks), saved in that order
    buffer = WriteBehind()
    for order_id, at in (("c", 3.0), ("a", 1.0), ("b", 2.0)):
        _save_final(buffer, settled_history(order_id, at=at))

    # Act
    first, _ = buffer.query(OrderQuery(account_id="acct-1", limit=2))
    rest, _ = buffer.query(OrderQuery(account_id="acct-1", limit=2, before=(2.0, "b")))

    # Assert: a page and its cursor follow (created_at, order_id), not arrival
    assert [o.order_id for o in first] == ["c", "b"]
    assert [o.order_id for o in rest] == ["a"]


def test_listing_when_a_filter_matches_past_many_chunks_then_walks_on_and_stops_at_limit() -> None:
    # Arrange: one open order under 1,500 settled ones (three chunks of the walk)
    buffer = WriteBehind()
    _save_whole(buffer, open_history("open", at=0.5))
    for i in range(1_500):
        _save_final(buffer, settled_history(f"s-{i:04d}", at=1.0 + i))

    # Act
    accepted, _ = buffer.query(OrderQuery(account_id="acct-1", status=OrderStatus.ACCEPTED))
    newest, _ = buffer.query(OrderQuery(account_id="acct-1", limit=3))

    # Assert
    assert [o.order_id for o in accepted] == ["open"]
    assert [o.order_id for o in newest] == ["s-1499", "s-1498", "s-1497"]


def test_listing_when_most_orders_dropped_then_skips_them_and_compacts_its_index() -> None:
    # Arrange: 2,000 settled orders, all but the newest 10 dropped once durable
    buffer = WriteBehind(keep_terminal=10)
    for i in range(2_000):
        _save_final(buffer, settled_history(f"s-{i:04d}", at=1.0 + i))

    # Act
    buffer.written(buffer.drain())
    found, dropped = buffer.query(OrderQuery(account_id="acct-1", limit=50))

    # Assert: the ten held, newest first, and where MongoDB takes over
    assert [o.order_id for o in found] == [f"s-{i:04d}" for i in range(1_999, 1_989, -1)]
    assert dropped == (1_990.0, "s-1989")
    assert len(buffer._all.keys) < 1_000  # the dropped keys were compacted away


def test_id_filter_when_ids_are_added_then_it_sets_the_bits_written_slices_were_made_with() -> None:
    # Slices are kept in the recovery log and read back by later versions: the positions must
    # stay (blake2b's two halves, h1 + i * h2 modulo the slice's bits, 22 of them).
    id_filter = IdFilter(capacity=1024)
    bits = id_filter.slice_bytes * 8 - 8
    expected = bytearray(id_filter.slice_bytes)
    for n in range(500):
        order_id = f"order-{n}"
        digest = hashlib.blake2b(order_id.encode(), digest_size=16).digest()
        h1 = int.from_bytes(digest[:8], "little")
        h2 = int.from_bytes(digest[8:], "little") | 1
        for i in range(22):
            p = (h1 + i * h2) % bits
            expected[p >> 3] |= 1 << (p & 7)
        id_filter.add(order_id)

    packed, count = id_filter.slices()

    assert count == 500
    assert packed == bytes(expected)
    assert all(f"order-{n}" in id_filter for n in range(500))


def test_capture_when_orders_finished_or_were_dropped_then_only_the_open_ones_are_taken() -> None:
    # Arrange: the capture runs on the engine thread; it walks the open orders, not all held
    buffer = WriteBehind(keep_terminal=1)
    _save_whole(buffer, settled_history("o-settled"))
    _save_whole(buffer, open_history("o-open"))
    finishing = settled_history("o-finishing")
    _save_whole(buffer, finishing[:2])  # open for now
    buffer.written(buffer.drain())
    _save_whole(buffer, finishing)  # now settled; keep_terminal=1 drops the older terminal one
    buffer.written(buffer.drain())

    # Act
    _, open_orders, _ = buffer.capture(lambda account: True)

    # Assert
    assert [s.order.order_id for s in open_orders] == ["o-open"]
    assert not buffer.holds("o-settled")
