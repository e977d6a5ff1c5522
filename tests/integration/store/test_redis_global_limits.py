"""Firm-wide caps in the real Redis: two replicas' reservations never pass a cap together,
releases give back, a rebuild rewrites one partition only, and Redis gone fails closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from oms.config import Settings
from oms.domain.enums import Side
from oms.domain.global_limits import (
    GlobalLimits,
    GlobalLimitsUnavailable,
    GlobalReservation,
    GroupCaps,
    SymbolCaps,
    Usage,
    notional_units,
    quantity_units,
)
from oms.domain.reasons import RejectReason
from oms.store.redis_global_limits import RedisGlobalLimits

PARTITIONS = 2
ONE_BTC = quantity_units(Decimal(1))


@pytest.fixture
async def clients(settings: Settings, unique: str) -> AsyncIterator[list[aioredis.Redis]]:
    """Two clients (two replicas' pools); the test's keys (all hold ``unique``) deleted after."""
    clients = [aioredis.from_url(settings.redis_url) for _ in range(2)]
    yield clients
    keys = [key async for key in clients[0].scan_iter(match=f"*{unique}*", count=10_000)]
    if keys:
        await clients[0].delete(*keys)
    for client in clients:
        await client.aclose()


def _replicas(clients: list[aioredis.Redis], unique: str) -> list[RedisGlobalLimits]:
    return [
        RedisGlobalLimits(client, partitions=PARTITIONS, timeout_s=2.0, deployment=unique)
        for client in clients
    ]


async def _refused(
    store: RedisGlobalLimits, orders: list[GlobalReservation]
) -> list[RejectReason | None]:
    """What refused each order (None: it holds its reservation)."""
    return [answer.refused for answer in await store.reserve(orders)]


def _order(
    n: int, partition: int, notional: str = "10000", side: Side = Side.BUY, group: str = ""
) -> GlobalReservation:
    return GlobalReservation(
        f"o-{partition}-{n}", partition, "BTC-USD", group, notional_units(Decimal(notional)),
        side, quantity_units(Decimal("0.1")),
    )  # fmt: skip


async def test_reserve_when_two_replicas_race_for_one_notional_cap_then_it_is_never_passed(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange: 95,000 USD of BTC-USD open orders firm-wide; each order 10,000
    first, second = _replicas(clients, unique)
    await first.set_limits(GlobalLimits({"BTC-USD": SymbolCaps(Decimal(95000))}))

    # Act: 40 orders at once, each replica reserving for its own partition's accounts
    verdicts = await asyncio.gather(
        *(_refused(first if n % 2 else second, [_order(n, n % 2)]) for n in range(40))
    )

    # Assert: exactly nine fit, the rest refused with the code, and the count says nine
    flat = [v for answer in verdicts for v in answer]
    assert flat.count(None) == 9
    assert set(flat) - {None} == {RejectReason.GLOBAL_NOTIONAL_LIMIT}
    usage = await second.usage("BTC-USD")
    assert usage.notional == 9 * notional_units(Decimal(10000))


async def test_reserve_when_a_group_cap_spans_two_partitions_then_refuses_past_it(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange: a group of two accounts on different partitions, 25,000 between them
    first, second = _replicas(clients, unique)
    await first.set_limits(
        GlobalLimits(groups={"desk": GroupCaps(frozenset({"a", "b"}), Decimal(25000))})
    )

    # Act
    a = await _refused(first, [_order(1, 0, group="desk"), _order(2, 0, group="desk")])
    b = await _refused(second, [_order(3, 1, group="desk"), _order(4, 1, group="other")])

    # Assert: the third of the group is refused; another group's order is not counted in it
    assert a == [None, None]
    assert b == [RejectReason.GLOBAL_NOTIONAL_LIMIT, None]


async def test_reserve_when_the_net_position_cap_counts_open_orders_and_fills_then_refuses(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange: at most 0.25 BTC net, long or short; two BUYs of 0.1 open, one fills
    first, second = _replicas(clients, unique)
    await first.set_limits(GlobalLimits({"BTC-USD": SymbolCaps(max_net_position=Decimal("0.25"))}))
    assert await _refused(first, [_order(1, 0), _order(2, 0)]) == [None, None]
    await first.release(0, "o-0-1", filled=quantity_units(Decimal("0.1")), ended=True)

    # Act
    third_buy = await _refused(second, [_order(3, 1)])
    big_sell = GlobalReservation(
        "o-1-9", 1, "BTC-USD", "", 1, Side.SELL, quantity_units(Decimal("0.5"))
    )
    sells = await _refused(second, [big_sell])

    # Assert: 0.1 held + 0.1 open + 0.1 more > 0.25; a SELL of 0.5 from +0.1 goes to -0.4
    assert third_buy == [RejectReason.GLOBAL_POSITION_LIMIT]
    assert sells == [RejectReason.GLOBAL_POSITION_LIMIT]
    usage = await second.usage("BTC-USD")
    assert (usage.position, usage.buying) == (ONE_BTC // 10, ONE_BTC // 10)


async def test_reserve_when_the_same_order_comes_again_then_it_is_counted_once(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange
    (store, _) = _replicas(clients, unique)
    await store.set_limits(GlobalLimits({"BTC-USD": SymbolCaps(Decimal(15000))}))

    # Act: a record fetched again after a rebalance reserves again
    again = [await store.reserve([_order(1, 0)]) for _ in range(3)]

    # Assert: reserved by the first call only
    assert [answer.fresh for (answer,) in again] == [True, False, False]
    assert {answer.refused for (answer,) in again} == {None}
    assert (await store.usage("BTC-USD")).notional == notional_units(Decimal(10000))


async def test_release_when_an_order_ends_then_its_headroom_is_free_for_another_replica(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange: the cap is full with one order of partition 0
    first, second = _replicas(clients, unique)
    await first.set_limits(GlobalLimits({"BTC-USD": SymbolCaps(Decimal(10000))}))
    assert await _refused(first, [_order(1, 0)]) == [None]
    assert await _refused(second, [_order(2, 1)]) == [RejectReason.GLOBAL_NOTIONAL_LIMIT]

    # Act: cancelled (twice: a second release finds nothing)
    released = [await first.release(0, "o-0-1", ended=True) for _ in range(2)]

    # Assert
    assert released == [True, False]
    assert await _refused(second, [_order(3, 1)]) == [None]
    assert (await first.usage("BTC-USD")).notional == notional_units(Decimal(10000))


async def test_rebuild_when_a_replica_takes_a_partition_over_then_only_its_share_is_rewritten(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange: both partitions hold orders; partition 0's owner died after a cancel it never
    # released, and its accounts hold 0.2 BTC
    first, second = _replicas(clients, unique)
    await _refused(first, [_order(1, 0), _order(2, 0)])
    await _refused(second, [_order(3, 1)])

    # Act: the new owner of partition 0 recovered one open order and the position, twice
    for _ in range(2):
        await second.rebuild(0, [_order(2, 0)], {"BTC-USD": quantity_units(Decimal("0.2"))})

    # Assert: partition 0 counts what it recovered, partition 1 what it held
    usage = await first.usage("BTC-USD")
    assert usage == Usage(
        notional=2 * notional_units(Decimal(10000)),
        buying=2 * quantity_units(Decimal("0.1")),
        selling=0,
        position=quantity_units(Decimal("0.2")),
        group_notional=0,
    )


async def test_limits_when_set_then_read_back_by_another_replica(
    clients: list[aioredis.Redis], unique: str
) -> None:
    # Arrange
    first, second = _replicas(clients, unique)
    limits = GlobalLimits(
        {"BTC-USD": SymbolCaps(Decimal("1000000.5"), Decimal("12.5"))},
        {"desk": GroupCaps(frozenset({"a", "b"}), Decimal(250000))},
    )

    # Act
    await first.set_limits(limits)

    # Assert
    assert await second.limits() == limits


async def test_reserve_when_redis_does_not_answer_then_fails_closed_with_the_code() -> None:
    # Arrange: nothing listens on this port
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    store = RedisGlobalLimits(client, partitions=PARTITIONS, timeout_s=1.0, deployment="gone")

    # Act
    with pytest.raises(GlobalLimitsUnavailable) as refused:
        await _refused(store, [_order(1, 0)])
    await client.aclose()

    # Assert
    assert refused.value.code == "GLOBAL_LIMITS_UNAVAILABLE"
