"""Denials render as ``CODE: key=value`` and carry their figures."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.reasons import Denial, RejectReason, deny


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
    assert len(reasons) == 16
