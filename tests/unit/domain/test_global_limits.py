"""The firm-wide caps' pure rules: units, the caps that apply, and which cap an order passes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.enums import Side
from oms.domain.global_limits import (
    CapUnits,
    GlobalLimits,
    GlobalLimitsError,
    GlobalReservation,
    GroupCaps,
    InvalidGroupName,
    SymbolCaps,
    Usage,
    breach,
    caps_for,
    check_group_name,
    notional_units,
    quantity_units,
)
from oms.domain.reasons import RejectReason

LIMITS = GlobalLimits(
    {"BTC-USD": SymbolCaps(Decimal("100.0000015"), Decimal("2"))},
    {"desk": GroupCaps(frozenset({"alice", "bob"}), Decimal(50))},
)
EMPTY = Usage(0, 0, 0, 0, 0)


def _order(side: Side = Side.BUY, notional: int = 10, quantity: int = 10) -> GlobalReservation:
    return GlobalReservation("o-1", 0, "BTC-USD", "desk", notional, side, quantity)


def test_units_when_an_amount_has_more_digits_then_rounded_up() -> None:
    # Act / Assert: an order is never counted smaller than it is
    assert notional_units(Decimal("1.0000001")) == 1_000_001
    assert quantity_units(Decimal("0.000000011")) == 2


def test_units_when_beyond_what_lua_counts_exactly_then_refused_with_the_code() -> None:
    # Act
    with pytest.raises(GlobalLimitsError) as refused:
        notional_units(Decimal("1e10"))

    # Assert
    assert refused.value.code == "GLOBAL_LIMIT_INVALID"


def test_caps_for_when_a_cap_has_more_digits_then_rounded_down() -> None:
    # Act
    caps = caps_for(LIMITS, "BTC-USD", "desk")

    # Assert: a cap is never widened
    assert caps == CapUnits(100_000_001, 200_000_000, 50_000_000)
    assert caps_for(LIMITS, "ETH-USD", "") == CapUnits(None, None, None)


def test_group_of_when_an_account_is_in_a_group_then_names_it() -> None:
    # Act / Assert
    assert LIMITS.group_of("bob") == "desk"
    assert LIMITS.group_of("carol") is None


def test_breach_when_the_symbol_notional_would_pass_then_global_notional_limit() -> None:
    # Arrange
    caps = CapUnits(100, None, None)

    # Act / Assert: reaching the cap is allowed, passing it is not
    assert breach(caps, EMPTY._replace(notional=90), _order()) is None
    assert breach(caps, EMPTY._replace(notional=91), _order()) is (
        RejectReason.GLOBAL_NOTIONAL_LIMIT
    )


def test_breach_when_the_group_notional_would_pass_then_global_notional_limit() -> None:
    # Act
    reason = breach(CapUnits(None, None, 15), EMPTY._replace(group_notional=6), _order())

    # Assert
    assert reason is RejectReason.GLOBAL_NOTIONAL_LIMIT


def test_breach_when_open_buys_and_the_position_would_pass_the_net_cap_then_position_limit() -> (
    None
):
    # Arrange: long 50, 35 more open to buy, cap 100
    caps = CapUnits(None, 100, None)
    usage = EMPTY._replace(position=50, buying=35)

    # Act / Assert: a BUY of 15 reaches it, 16 passes it; a SELL is checked on the short side
    assert breach(caps, usage, _order(quantity=15)) is None
    assert breach(caps, usage, _order(quantity=16)) is RejectReason.GLOBAL_POSITION_LIMIT
    assert breach(caps, usage, _order(Side.SELL, quantity=150)) is None
    assert breach(caps, usage, _order(Side.SELL, quantity=151)) is (
        RejectReason.GLOBAL_POSITION_LIMIT
    )


@pytest.mark.parametrize("name", ["desk", "Desk-2_b", "0", "a" * 64])
def test_check_group_name_when_of_the_grammar_then_kept(name: str) -> None:
    assert check_group_name(name) == name


@pytest.mark.parametrize("name", ["", "a.b", "$set", "a|b", "-desk", "a b", "a" * 65])
def test_check_group_name_when_outside_the_grammar_then_invalid_group_name(name: str) -> None:
    with pytest.raises(InvalidGroupName) as refused:
        check_group_name(name)

    assert refused.value.code == "INVALID_GROUP_NAME"
