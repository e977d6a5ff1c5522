"""Legs: where an order's time goes, each leg counted by the part that sees both its ends."""

from __future__ import annotations

import pytest

from oms.legs import LEGS, MAX_FETCHED, Legs


def test_decided_when_the_order_was_fetched_then_counts_its_engine_leg() -> None:
    legs = Legs()
    legs.fetched("o-1", 100.0)

    legs.decided("o-1", 100.004)

    engine = legs.durations["engine"]
    assert engine.count == 1
    assert engine.total_s == pytest.approx(0.004)


def test_decided_when_the_order_was_never_fetched_then_counts_nothing() -> None:
    legs = Legs()  # an order placed before a restart, or one that came from another replica

    legs.decided("o-1", 100.0)

    assert legs.durations["engine"].count == 0


def test_decided_when_it_comes_twice_then_counts_the_order_once() -> None:
    legs = Legs()
    legs.fetched("o-1", 100.0)

    legs.decided("o-1", 100.001)
    legs.decided("o-1", 100.002)

    assert legs.durations["engine"].count == 1


def test_fetched_when_too_many_wait_for_a_decision_then_drops_the_oldest_half() -> None:
    legs = Legs()
    for n in range(MAX_FETCHED):
        legs.fetched(f"o-{n}", float(n))

    legs.fetched("newest", 0.0)
    legs.decided("o-0", 1.0)  # among the oldest half: dropped, so not counted
    legs.decided(f"o-{MAX_FETCHED - 1}", float(MAX_FETCHED))

    assert legs.durations["engine"].count == 1


def test_legs_when_made_then_every_leg_has_its_histogram_from_zero() -> None:
    legs = Legs()

    assert tuple(legs.durations) == LEGS
    assert all(d.count == 0 for d in legs.durations.values())
