"""The recovery log's documents and its fold, without a server; the filter and the capture."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.events import OrderFilled
from oms.risk.checkpoint import AccountLedger, LedgerCheckpoint, PositionFigures, RecordFigures
from oms.store.batcher import IdFilter, WriteBehind
from oms.store.documents import order_document, stored_order
from oms.store.recovery_log import (
    CHECKPOINT,
    LogError,
    checkpoint_documents,
    delta_document,
    epoch_collection,
    epochs_in,
    fold,
    ledger_from_dict,
    ledger_to_dict,
    read_checkpoint,
)
from tests.unit.store.histories import open_history, settled_history, states

LEDGER = LedgerCheckpoint(
    (
        AccountLedger(
            "acct-1",
            {"USD": (Decimal("99.5"), Decimal("0.5")), "BTC": (Decimal("1.25"), Decimal(0))},
            (PositionFigures("BTC-USD", Decimal("0.25"), Decimal(30000), Decimal(-1), Decimal(1)),),
            Decimal(-1),
            (
                RecordFigures(
                    "o-rest",
                    "BTC-USD",
                    True,
                    Decimal(5),
                    Decimal(10),
                    Decimal("0.5"),
                    Decimal("0.5"),
                    ("x-1",),
                ),
            ),
            ((1_767_225_600.125, Decimal("1500.5")), (1_767_225_601.0, Decimal(20))),
            20454,
            Decimal("-0.75"),
        ),
    )
)


def _document(history: list, upto: int | None = None) -> dict:
    """The order document of the history's state after ``upto`` events (all by default)."""
    events = history if upto is None else history[:upto]
    return order_document(states(events)[-1], events)


def _checkpoint(open_docs: list[dict], versions: dict[str, int], finished: IdFilter) -> object:
    packed, count = finished.slices()
    full = finished.full_slices()
    size = finished.slice_bytes
    documents = checkpoint_documents(
        ledger=LEDGER,
        open_orders=open_docs,
        versions=versions,
        finished_top={"acct-1": (100.0, "o-old")},
        partial=packed[full * size :],
        full_slices=full,
        finished_count=count,
        events_from={0: 7, 1: 0},
        at=1.0,
    )
    slices = [{"_id": k, "bits": packed[k * size : (k + 1) * size]} for k in range(full)]
    by_id = {d["_id"]: d for d in documents}
    return read_checkpoint(by_id[CHECKPOINT], by_id, slices)


def test_checkpoint_when_written_and_read_back_then_everything_returns() -> None:
    # Arrange
    finished = IdFilter(capacity=64)
    for n in range(100):  # one full slice and a partial one
        finished.add(f"done-{n}")
    resting = open_history("o-rest")

    # Act
    base = _checkpoint([_document(resting)], {"o-rest": 2, "o-pending": 5}, finished)

    # Assert
    assert base.ledger == LEDGER
    assert [stored_order(d) for d in base.open_orders] == [stored_order(_document(resting))]
    assert base.versions == {"o-rest": 2, "o-pending": 5}
    assert base.finished_top == {"acct-1": (100.0, "o-old")}
    assert base.events_from == {0: 7, 1: 0}
    again = IdFilter(capacity=64)
    again.restore(base.finished, base.finished_count)
    assert all(f"done-{n}" in again for n in range(100))
    assert len(again) == 100


def test_checkpoint_when_a_filter_slice_is_missing_then_refuses_with_a_log_error() -> None:
    finished = IdFilter(capacity=8)
    for n in range(20):
        finished.add(f"done-{n}")
    packed, count = finished.slices()
    documents = checkpoint_documents(
        ledger=LEDGER, open_orders=[], versions={}, finished_top={}, partial=b"",
        full_slices=2, finished_count=count, events_from=None, at=1.0,
    )  # fmt: skip
    by_id = {d["_id"]: d for d in documents}
    with pytest.raises(LogError) as refused:
        read_checkpoint(by_id[CHECKPOINT], by_id, [{"_id": 0, "bits": packed[:10]}])
    assert refused.value.code == "RECOVERY_LOG_UNREADABLE"


def test_fold_when_no_checkpoint_then_every_state_counts_from_the_first_event() -> None:
    # Arrange: one write saw the order open, a later one finished it
    done = settled_history("o-1")
    deltas = [
        delta_document("w", 1, 0, [_document(done, 2)]),
        delta_document("w", 2, 1, [_document(done)]),
    ]

    # Act
    folded = fold(None, deltas, stored_order)

    # Assert
    assert folded.open_orders == []
    assert [f[0] for f in folded.finished] == ["o-1"]
    assert [f.execution_id for f in folded.fills] == ["x-o-1-1", "x-o-1-2"]
    assert [e.sequence for e, _ in folded.unpublished] == [1, 2, 3, 4, 5]
    assert {account for _, account in folded.unpublished} == {"acct-1"}
    assert [s.order.order_id for s in folded.resave] == ["o-1"]  # write 2: not known stored
    assert [(a.order_id, a.account_id) for a in folded.accepted] == [("o-1", "acct-1")]


def test_fold_when_a_checkpoint_holds_part_of_it_then_only_what_came_after_counts() -> None:
    # Arrange: at the checkpoint o-open was at version 3 (one fill) and o-pending had ended
    # but was not written yet; afterwards o-open ended and o-new came and went
    across, pending, new = (
        settled_history("o-open"),
        settled_history("o-pending"),
        open_history("o-new"),
    )
    base = _checkpoint([_document(across, 3)], {"o-open": 3, "o-pending": 5}, IdFilter())
    deltas = [
        delta_document("w", 8, 7, [_document(pending), _document(new)]),
        delta_document("w", 9, 8, [_document(across)]),
    ]

    # Act
    folded = fold(base, deltas, stored_order)  # type: ignore[arg-type]

    # Assert
    assert [s.order.order_id for s in folded.open_orders] == ["o-new"]
    assert sorted(f[0] for f in folded.finished) == ["o-open", "o-pending"]
    assert [f.execution_id for f in folded.fills] == ["x-o-open-2"]
    after = [(e.order_id, e.sequence) for e, _ in folded.unpublished]
    assert after == [("o-open", 4), ("o-open", 5), ("o-new", 1), ("o-new", 2)]
    assert isinstance(folded.unpublished[0][0], OrderFilled)
    assert [s.order.order_id for s in folded.resave] == ["o-open"]  # only write 9 is unsure
    # Accepted before the checkpoint: in its velocity window already; o-new came after it
    assert [a.order_id for a in folded.accepted] == ["o-new"]


def test_ledger_when_written_before_the_risk_counters_were_kept_then_reads_them_empty() -> None:
    # Arrange: a checkpoint's ledger as written before velocity and the day were in it
    old = ledger_to_dict(LEDGER)
    for account in old:
        for name in ("velocity", "day", "day_start_pnl"):
            del account[name]

    # Act
    ledger = ledger_from_dict(old)

    # Assert: the figures as before, the counters as a fresh account's
    (account,) = ledger.accounts
    assert account.balances == LEDGER.accounts[0].balances
    assert (account.velocity, account.day, account.day_start_pnl) == ((), None, Decimal(0))


def test_epochs_when_collections_of_other_counts_are_there_then_only_ours_are_named() -> None:
    names = [
        epoch_collection(2, 0, 3),
        epoch_collection(2, 0, 1),
        epoch_collection(2, 1, 0),
        epoch_collection(6, 0, 9),
        "orders",
    ]
    assert epochs_in(names, 2) == {0: [1, 3], 1: [0]}


def test_id_filter_when_adopting_another_then_answers_for_both_and_replaces_by_owner() -> None:
    # Arrange
    ours, theirs = IdFilter(capacity=64), IdFilter(capacity=64)
    ours.add("mine")
    theirs.add("yours")
    packed, _ = theirs.slices()

    # Act
    ours.adopt("p1", packed)
    ours.adopt("p1", packed)  # again: replaces, does not pile up

    # Assert
    assert "mine" in ours
    assert "yours" in ours
    assert "nobody" not in ours
    assert len(ours._adopted["p1"]) == 1
    with pytest.raises(ValueError, match="slices"):
        ours.adopt("p2", b"odd")


def test_capture_when_asked_for_some_accounts_then_gives_their_open_orders_and_unwritten_versions() -> (
    None
):
    # Arrange
    memory = WriteBehind()
    for history in (
        open_history("o-a", "a"),
        settled_history("o-done", "a"),
        open_history("o-b", "b"),
    ):
        for event, order in zip(history, states(history), strict=True):
            memory.save([order], [event])

    # Act
    mark, open_orders, versions = memory.capture(lambda account: account == "a")

    # Assert
    assert mark == memory.saved
    assert [s.order.order_id for s in open_orders] == ["o-a"]
    assert len(open_orders[0].events) == 2
    assert versions == {"o-a": 2, "o-done": 5}
