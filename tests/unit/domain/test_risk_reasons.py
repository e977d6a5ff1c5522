"""Denials render as ``CODE: key=value`` and carry their figures; rejection reasons are closed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.domain.reasons import (
    REJECTION_REASONS,
    Denial,
    OrderCheckReason,
    RejectReason,
    deny,
    known_rejection_reason,
    rejection_reason,
)


def test_str_when_denial_has_figures_then_renders_code_and_key_values() -> None:
    # Arrange
    denial = deny(
        RejectReason.NOTIONAL_EXCEEDS_MAX_PER_ORDER,
        max_notional=Decimal("1000"),
        notional=Decimal("1500.00"),
    )

    # Act
    rendered = str(denial)

    # Assert
    assert rendered == "NOTIONAL_EXCEEDS_MAX_PER_ORDER: max_notional=1000, notional=1500.00"


def test_str_when_denial_has_no_figures_then_renders_code_only() -> None:
    # Arrange
    denial = Denial(RejectReason.REDUCE_ONLY)

    # Act
    rendered = str(denial)

    # Assert
    assert rendered == "REDUCE_ONLY"


def test_detail_when_figure_present_then_returns_its_text_else_none() -> None:
    # Arrange
    denial = deny(RejectReason.UNKNOWN_ACCOUNT, account_id="bob")

    # Act
    found, missing = denial.detail("account_id"), denial.detail("symbol")

    # Assert
    assert (found, missing) == ("bob", None)


def test_reject_reasons_when_listed_then_each_value_is_its_name() -> None:
    # Arrange
    reasons = list(RejectReason)

    # Act
    mismatched = [reason for reason in reasons if reason.value != reason.name]

    # Assert
    assert mismatched == []
    assert len(reasons) == 19


def test_rejection_reason_when_given_each_value_then_names_its_own_member() -> None:
    # Arrange
    values = [reason.value for reason in REJECTION_REASONS]

    # Act
    named = [rejection_reason(value) for value in values]

    # Assert
    assert named == list(REJECTION_REASONS)
    assert all(type(reason) in (RejectReason, OrderCheckReason) for reason in named)


def test_rejection_reasons_when_listed_then_no_value_is_in_both_sets() -> None:
    # Arrange
    risk, process = {r.value for r in RejectReason}, {r.value for r in OrderCheckReason}

    # Act
    shared = risk & process

    # Assert
    assert shared == set()
    assert len(REJECTION_REASONS) == len(risk) + len(process)


def test_rejection_reason_when_the_code_is_unknown_then_value_error_and_none_when_asked_softly() -> (
    None
):
    # Arrange
    code = "INSUFFICIENT_FUNDS"  # a ledger error's code, not a rejection reason

    # Act
    with pytest.raises(ValueError, match="INSUFFICIENT_FUNDS"):
        rejection_reason(code)
    soft = known_rejection_reason(code)

    # Assert
    assert soft is None
