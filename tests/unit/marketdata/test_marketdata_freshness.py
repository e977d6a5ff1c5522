"""Stale-feed detection by the clock it is given."""

from __future__ import annotations

import pytest

from oms.marketdata.freshness import Freshness


def test_stale_when_no_update_for_longer_than_the_bound_then_stale() -> None:
    freshness = Freshness(stale_s=5.0)
    freshness.saw("BTC-USD", 100.0)

    assert not freshness.stale("BTC-USD", 105.0)
    assert freshness.stale("BTC-USD", 105.5)
    assert freshness.age("BTC-USD", 105.5) == 5.5


def test_stale_when_an_update_comes_back_then_fresh_again() -> None:
    freshness = Freshness(stale_s=5.0)
    freshness.saw("BTC-USD", 100.0)

    freshness.saw("BTC-USD", 120.0)

    assert not freshness.stale("BTC-USD", 121.0)


def test_stale_when_the_symbol_never_had_an_update_then_not_stale_and_no_age() -> None:
    freshness = Freshness(stale_s=5.0)

    assert not freshness.stale("ETH-USD", 1e9)
    assert freshness.age("ETH-USD", 1e9) is None
    assert freshness.ages(1e9) == {}


def test_stale_when_the_bound_is_zero_then_never_stale() -> None:
    freshness = Freshness(stale_s=0.0)
    freshness.saw("BTC-USD", 0.0)

    assert not freshness.stale("BTC-USD", 1e9)


def test_freshness_when_the_bound_is_negative_then_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Freshness(stale_s=-1.0)
