"""The local book: snapshot plus events in sequence, a gap refused and resynced."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.marketdata import InvalidTick
from oms.marketdata.binance import DepthSnapshot, DepthUpdate, Level
from oms.marketdata.depth import DepthBook, SequenceGap

D = Decimal
SNAPSHOT = DepthSnapshot(
    100,
    ((D("100.0"), D(1)), (D("99.9"), D(2))),
    ((D("100.1"), D(1)), (D("100.2"), D(3))),
)


def _update(
    first: int, last: int, bids: tuple[Level, ...] = (), asks: tuple[Level, ...] = ()
) -> DepthUpdate:
    return DepthUpdate("BTCUSDT", first, last, bids, asks)


def test_load_when_events_buffered_then_drops_covered_and_applies_the_rest() -> None:
    book = DepthBook("BTCUSDT")
    book.on_update(_update(95, 99, bids=((D("98"), D(9)),)))  # covered by the snapshot
    book.on_update(_update(100, 102, bids=((D("100.0"), D(0)),)))  # straddles it

    book.load(SNAPSHOT)

    bids, asks = book.levels(5)
    assert [(b.price, b.quantity) for b in bids] == [(D("99.9"), D(2))]
    assert asks[0].price == D("100.1")
    assert book.last_id == 102


def test_on_update_when_in_sequence_then_levels_set_and_removed() -> None:
    book = DepthBook("BTCUSDT")
    book.load(SNAPSHOT)

    changed = book.on_update(
        _update(101, 101, bids=((D("100.05"), D(4)),), asks=((D("100.1"), D(0)),))
    )

    assert changed
    bids, asks = book.levels(1)
    assert (bids[0].price, bids[0].quantity) == (D("100.05"), D(4))
    assert asks[0].price == D("100.2")


def test_on_update_when_older_than_the_book_then_ignored() -> None:
    book = DepthBook("BTCUSDT")
    book.load(SNAPSHOT)

    assert not book.on_update(_update(90, 100, bids=((D("50"), D(1)),)))
    assert book.levels(5)[0][-1].price == D("99.9")


def test_on_update_when_ids_skip_then_sequence_gap_and_book_reset() -> None:
    book = DepthBook("BTCUSDT")
    book.load(SNAPSHOT)
    gapped = _update(105, 106, bids=((D("100.05"), D(4)),))

    with pytest.raises(SequenceGap, match=r"101\.\.104") as raised:
        book.on_update(gapped)

    assert raised.value.code == "FEED_SEQUENCE_GAP"
    assert not book.synced
    assert book.levels(5) == ((), ())
    book.load(DepthSnapshot(105, ((D("100"), D(1)),), ((D("101"), D(1)),)))  # resync
    assert book.last_id == 106  # the event after the gap was kept and applied
    assert book.levels(1)[0][0].price == D("100.05")


def test_load_when_snapshot_older_than_buffered_events_then_sequence_gap() -> None:
    book = DepthBook("BTCUSDT")
    book.on_update(_update(200, 201))

    with pytest.raises(SequenceGap):
        book.load(SNAPSHOT)  # last id 100: 101..199 unknown

    assert not book.synced


def test_tick_when_synced_and_traded_then_decimal_tick_of_our_symbol() -> None:
    book = DepthBook("BTCUSDT")
    assert book.tick("BTC-USD", D("100.05"), 1.0, 5) is None  # no snapshot yet
    book.load(SNAPSHOT)
    assert book.tick("BTC-USD", None, 1.0, 5) is None  # no trade yet

    tick = book.tick("BTC-USD", D("100.05"), 2.0, 1)

    assert tick is not None
    assert (tick.symbol, tick.last_price, tick.best_bid, tick.best_ask, tick.ts) == (
        "BTC-USD", D("100.05"), D("100.0"), D("100.1"), 2.0,
    )  # fmt: skip
    assert len(tick.bids) == len(tick.asks) == 1


def test_tick_when_book_crossed_then_invalid_tick() -> None:
    book = DepthBook("BTCUSDT")
    book.load(DepthSnapshot(1, ((D("101"), D(1)),), ((D("100"), D(1)),)))

    with pytest.raises(InvalidTick) as raised:
        book.tick("BTC-USD", D("100"), 1.0, 5)

    assert raised.value.code == "CROSSED_BOOK"
