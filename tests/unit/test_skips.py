"""Stored records start-up leaves out: screened, reported once per pass, counted."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from oms.engine.ports import AccountRecord
from oms.skips import Skip, SkipReason, Skips, screen_accounts, unreadable


def test_screen_accounts_when_ids_are_reserved_or_malformed_then_leaves_them_out_with_reasons() -> (
    None
):
    # Arrange
    good = AccountRecord("acct-1", {"USD": Decimal(1)})
    records = [AccountRecord("VENUE", {}), good, AccountRecord("fees", {}),
               AccountRecord("a b", {})]  # fmt: skip

    # Act
    usable, skips = screen_accounts(records)

    # Assert
    assert usable == [good]
    assert [(s.record_id, s.reason) for s in skips] == [
        ("VENUE", SkipReason.RESERVED_ACCOUNT_ID),
        ("fees", SkipReason.RESERVED_ACCOUNT_ID),
        ("a b", SkipReason.INVALID_ACCOUNT_ID),
    ]


def test_report_when_records_were_left_out_then_one_warning_with_the_count_and_a_distinct_total(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Arrange
    skips = Skips()
    left_out = [Skip("account", "VENUE", SkipReason.RESERVED_ACCOUNT_ID),
                *unreadable("order", [f"o-{n}" for n in range(7)])]  # fmt: skip

    # Act: the same records in two passes (start-up, then a rebuild)
    with caplog.at_level(logging.WARNING, logger="oms.skips"):
        skips.report("start-up", left_out)
        skips.report("recovery", left_out)
        skips.report("recovery", [])

    # Assert
    assert len(caplog.records) == 2
    message = caplog.records[0].getMessage()
    assert "left out 8 stored records" in message
    assert "1 account RESERVED_ACCOUNT_ID" in message
    assert "7 order UNREADABLE_DOCUMENT" in message
    assert "o-6" not in message  # only the first few are named
    assert skips.distinct == 8
