"""Execution reports: external fills enter as the same ApplyFill, amounts as decimal strings."""

from decimal import Decimal
from typing import Any

import pytest

from oms.domain.commands import ApplyFill
from oms.venue import InvalidExecutionReport, fill_from_report, fill_to_report

FILL = ApplyFill(
    command_id="gw-77",
    order_id="o-1",
    account_id="acct-1",
    quantity=Decimal("0.2500"),
    price=Decimal("60000.10"),
    fee=Decimal("15.00"),
    executed_at=1_700_000_000.5,
)


def test_fill_report_when_written_and_read_back_then_gives_the_same_fill() -> None:
    # Act
    again = fill_from_report(fill_to_report(FILL))

    # Assert
    assert again == FILL


def test_fill_to_report_when_written_then_has_decimal_strings_and_the_execution_id() -> None:
    # Act
    report = fill_to_report(FILL)

    # Assert
    assert report["execution_id"] == "gw-77"
    assert (report["quantity"], report["price"], report["fee"]) == ("0.2500", "60000.10", "15.00")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", 0.25),
        ("price", "sixty"),
        ("price", "Infinity"),
        ("quantity", "0"),
        ("fee", "-1"),
        ("execution_id", ""),
        ("order_id", None),
        ("executed_at", "yesterday"),
        ("executed_at", True),
    ],
)
def test_fill_from_report_when_it_cannot_be_a_fill_then_refused_invalid_execution_report(
    field: str, value: Any
) -> None:
    # Arrange
    report = fill_to_report(FILL)
    report[field] = value

    # Act
    with pytest.raises(InvalidExecutionReport) as raised:
        fill_from_report(report)

    # Assert
    assert raised.value.code == "INVALID_EXECUTION_REPORT"
