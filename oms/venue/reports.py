"""Execution reports on the ``executions`` topic: external fills become the same ``ApplyFill``.

A report is JSON with decimal strings for amounts, so the same shape works for fills from the
simulated venue and from an external gateway, and no amount ever passes through a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from oms.domain.commands import ApplyFill
from oms.venue.model import VenueError

_TEXT_FIELDS = ("execution_id", "order_id", "account_id")


class InvalidExecutionReport(VenueError):
    """An execution report that cannot become a fill (missing field, number for an amount, ...)."""

    code = "INVALID_EXECUTION_REPORT"


def fill_to_report(fill: ApplyFill) -> dict[str, Any]:
    """The report of ``fill``: ids, amounts as decimal strings, ``executed_at`` as a number."""
    return {
        "execution_id": fill.command_id,
        "order_id": fill.order_id,
        "account_id": fill.account_id,
        "quantity": str(fill.quantity),
        "price": str(fill.price),
        "fee": str(fill.fee),
        "executed_at": fill.executed_at,
    }


def fill_from_report(report: Mapping[str, Any]) -> ApplyFill:
    """Read an execution report as an ``ApplyFill`` whose command id is the execution id."""
    for name in _TEXT_FIELDS:
        value = report.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidExecutionReport(f"{name} must be a non-empty string")
    executed_at = report.get("executed_at")
    if isinstance(executed_at, bool) or not isinstance(executed_at, int | float):
        raise InvalidExecutionReport("executed_at must be a number of epoch seconds")
    quantity = _amount(report, "quantity")
    price = _amount(report, "price")
    fee = _amount(report, "fee")
    if quantity <= 0 or price <= 0:
        raise InvalidExecutionReport("quantity and price must be positive")
    if fee < 0:
        raise InvalidExecutionReport("fee must not be negative")
    return ApplyFill(
        command_id=report["execution_id"],
        order_id=report["order_id"],
        account_id=report["account_id"],
        quantity=quantity,
        price=price,
        fee=fee,
        executed_at=float(executed_at),
    )


def _amount(report: Mapping[str, Any], name: str) -> Decimal:
    raw = report.get(name)
    # A JSON number went through a float on the way in: refuse it instead of guessing digits.
    if not isinstance(raw, str):
        raise InvalidExecutionReport(f"{name} must be a decimal string, got {raw!r}")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InvalidExecutionReport(f"{name} is not a decimal: {raw!r}") from None
    if not value.is_finite():
        raise InvalidExecutionReport(f"{name} must be finite")
    return value
