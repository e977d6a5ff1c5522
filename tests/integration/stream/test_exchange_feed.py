"""The exchange feed against a local Binance replaying recorded frames, publishing to real Kafka.

The replay (``tests/fixtures/binance_replay.py``) plays ``binance_btcusdt.json``: a first
event the snapshot already covers, a gap in the update ids (events 1011..1019 lost), and a
disconnect after the first session. The real publisher (the Redis lease, the Binance adapter,
the Kafka producer) publishes to this test's ``prices`` topic, and the ticks are read back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from oms.config import Settings
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from oms.marketdata import Tick
from oms.store.redis_leases import RedisLeases
from oms.store.redis_store import redis_client
from oms.stream.codecs import decode_tick
from oms.stream.exchange_feed import FeedStats
from oms.stream.names import topic_names
from oms.stream.price_publisher import ExchangeSource, PricePublisher
from oms.stream.topics import TopicSpec, ensure_topics
from tests.fixtures.binance_replay import BinanceReplay
from tests.integration.stream.records import read_all

pytestmark = pytest.mark.integration

D = Decimal
# Every change that leaves a synced book with a last trade is one tick: 9 before the gap, none
# while the book waits for its snapshot, 8 after the resync, 7 after the reconnect.
EXPECTED_TICKS = 24


@pytest.fixture
async def replay() -> AsyncIterator[BinanceReplay]:
    server = BinanceReplay(frame_interval_s=0.01)
    await server.start()
    yield server
    await server.stop()


def _ticks(records: list[Any]) -> list[Tick]:
    instruments = instrument_map(DEFAULT_INSTRUMENTS)
    return [decode_tick(r.value, instruments) for r in records]


async def test_feed_when_replaying_a_gap_and_a_disconnect_then_publishes_only_whole_books(
    settings: Settings, unique: str, replay: BinanceReplay
) -> None:
    # Arrange
    feed_settings = settings.replace(
        topic_suffix=f"feed-{unique}",
        market_data="exchange",
        market_data_url=replay.url,
        market_data_rest_url=replay.rest_url,
        market_data_symbols={"BTC-USD": "BTCUSDT"},
        market_data_reconnect_initial_s=0.05,
        market_data_lease_s=3.0,
    )
    topic = topic_names(feed_settings).prices
    await ensure_topics(feed_settings, (TopicSpec(topic, 1, "symbol"),))
    redis = redis_client(feed_settings)
    stats = FeedStats()
    source = ExchangeSource(feed_settings, stats)
    publisher = PricePublisher(
        feed_settings,
        topic,
        source,
        symbols=("BTC-USD",),
        leases=RedisLeases(redis, deployment=feed_settings.topic_suffix),
        owner=f"it-{unique}",
    )

    # Act
    await publisher.start()
    try:
        records = await read_all(
            feed_settings,
            topic,
            lambda seen: len(seen) >= EXPECTED_TICKS,
            within_s=30.0,
        )
    finally:
        await publisher.stop()
        await source.close()
        await redis.aclose()
    ticks = _ticks(records)

    # Assert: one symbol, keyed by it, every amount a Decimal with the exchange's digits.
    assert {r.key for r in records} == {b"BTC-USD"}
    assert len(ticks) == EXPECTED_TICKS
    first = ticks[0]
    assert first.last_price == D("60000.10000000")
    # The event the snapshot already covered (60000.00 -> 9) was dropped.
    assert (first.bids[0].price, first.bids[0].quantity) == (D("60000.00"), D("1.5"))
    assert all(isinstance(level.quantity, Decimal) for t in ticks for level in t.bids + t.asks)
    # The gap: no tick was made from the broken book; the resynced one lacks the bid at
    # 59999.90 that the lost events removed, and carries the event after the gap (60000.20).
    before_gap, after_gap = ticks[8], ticks[9]
    assert D("59999.90") in [level.price for level in before_gap.bids]
    assert after_gap.best_bid == D("60000.20")
    assert after_gap.last_price == D("60000.30")
    assert D("59999.90") not in [level.price for t in ticks[9:] for level in t.bids]
    # The disconnect: a second connection, its own snapshot, and the market where it went.
    last = ticks[-1]
    assert last.last_price == D("60010.50")
    assert [(lv.price, lv.quantity) for lv in last.bids] == [
        (D("60010.20"), D("0.6")), (D("60010.00"), D("1.0")), (D("60009.50"), D("2.0")),
        (D("60009.00"), D("1.8")), (D("60008.00"), D("3.0")),
    ]  # fmt: skip
    assert [(lv.price, lv.quantity) for lv in last.asks] == [
        (D("60010.50"), D("1.5")), (D("60011.00"), D("1.4")), (D("60012.00"), D("2.5")),
        (D("60013.00"), D("1.1")), (D("60014.00"), D("3.3")),
    ]  # fmt: skip
    assert all(t.last_price > D("60005") for t in ticks[17:])  # no last price carried over
    assert replay.connections == 2
    assert replay.snapshot_requests == 3
    assert stats.resyncs == {"BTC-USD": 1}
    assert stats.disconnects.get("BTC-USD", 0) >= 1
    assert publisher.published == {"BTC-USD": EXPECTED_TICKS}


async def test_feed_when_the_exchange_goes_silent_then_reconnects_after_the_idle_bound(
    settings: Settings, unique: str, replay: BinanceReplay
) -> None:
    # Arrange: the replay says nothing more once both sessions are played.
    feed_settings = settings.replace(
        topic_suffix=f"idle-{unique}",
        market_data="exchange",
        market_data_url=replay.url,
        market_data_rest_url=replay.rest_url,
        market_data_symbols={"BTC-USD": "BTCUSDT"},
        market_data_reconnect_initial_s=0.05,
        market_data_idle_s=0.5,
    )
    topic = topic_names(feed_settings).prices
    await ensure_topics(feed_settings, (TopicSpec(topic, 1, "symbol"),))
    redis = redis_client(feed_settings)
    stats = FeedStats()
    source = ExchangeSource(feed_settings, stats)
    publisher = PricePublisher(
        feed_settings,
        topic,
        source,
        symbols=("BTC-USD",),
        leases=RedisLeases(redis, deployment=feed_settings.topic_suffix),
        owner=f"it-{unique}",
    )

    # Act
    await publisher.start()
    try:
        await asyncio.wait_for(replay.finished.wait(), timeout=10.0)
        deadline = asyncio.get_running_loop().time() + 10.0
        while replay.connections < 4:
            assert asyncio.get_running_loop().time() < deadline, replay.connections
            await asyncio.sleep(0.05)
    finally:
        await publisher.stop()
        await source.close()
        await redis.aclose()

    # Assert: each silent connection was dropped and made again; nothing more was published.
    assert stats.connects["BTC-USD"] >= 4
    assert publisher.published == {"BTC-USD": EXPECTED_TICKS}
