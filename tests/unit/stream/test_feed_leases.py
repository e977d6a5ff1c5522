"""One publisher per symbol: leases taken, renewed, lost and moved, on a fake clock."""

from __future__ import annotations

from oms.stream.feed_leases import SymbolLeases
from tests.unit.stream.feed_leases_fakes import (
    Clock,
    MemoryLeases,
)


def _replica(store: MemoryLeases, owner: str, log: list[str]) -> SymbolLeases:
    return SymbolLeases(
        store,
        ("BTC-USD", "ETH-USD"),
        owner,
        lease_s=6.0,
        on_gained=lambda s: log.append(f"{owner}+{s}"),
        on_lost=lambda s: log.append(f"{owner}-{s}"),
        clock=store.clock,
    )


async def test_step_when_two_replicas_then_each_symbol_has_exactly_one_publisher() -> None:
    store = MemoryLeases(Clock())
    log: list[str] = []
    a, b = _replica(store, "a", log), _replica(store, "b", log)

    for _ in range(5):
        await a.step()
        await b.step()
        store.clock.now += 2.0

    assert a.held == {"BTC-USD", "ETH-USD"}
    assert b.held == frozenset()
    assert log == ["a+BTC-USD", "a+ETH-USD"]


async def test_step_when_the_holder_dies_then_the_lease_moves_after_it_expires() -> None:
    store = MemoryLeases(Clock())
    log: list[str] = []
    a, b = _replica(store, "a", log), _replica(store, "b", log)
    await a.step()
    await b.step()

    store.clock.now = 5.9  # a stopped renewing at 0: its leases expire at 6
    await b.step()
    assert b.held == frozenset()
    store.clock.now = 6.0
    await b.step()

    assert b.held == {"BTC-USD", "ETH-USD"}


async def test_step_when_store_unanswered_past_the_deadline_then_stops_publishing() -> None:
    store = MemoryLeases(Clock())
    a = _replica(store, "a", [])
    await a.step()
    store.answering = False

    store.clock.now = 5.0
    await a.step()
    assert a.held == {"BTC-USD", "ETH-USD"}  # still within the last renewal's bound
    store.clock.now = 6.0
    assert not a.holds("BTC-USD")  # the deadline passed: no publishing even between rounds
    await a.step()

    assert a.held == frozenset()


async def test_step_when_another_took_the_lease_then_lost_at_once() -> None:
    store = MemoryLeases(Clock())
    log: list[str] = []
    a = _replica(store, "a", log)
    await a.step()
    store.leases["market-data:BTC-USD"] = ("b", 100.0)  # a paused past its expiry; b took it

    store.clock.now = 2.0
    await a.step()

    assert a.held == {"ETH-USD"}
    assert log[-1] == "a-BTC-USD"


async def test_release_all_when_stopping_then_another_replica_takes_over_at_once() -> None:
    store = MemoryLeases(Clock())
    a, b = _replica(store, "a", []), _replica(store, "b", [])
    await a.step()

    await a.release_all()
    await b.step()

    assert a.held == frozenset()
    assert b.held == {"BTC-USD", "ETH-USD"}
