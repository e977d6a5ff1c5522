"""Reconciliation's pure rules: our orders beside the venue's word and trades."""

from __future__ import annotations

from decimal import Decimal

from oms.domain.enums import OrderStatus, Side
from oms.venue.port import VenueOrderState, VenueOrderStatus, VenueTrade
from oms.venue.reconcile import (
    VENUE_UNKNOWN,
    DiscrepancyKind,
    NotAtVenue,
    OurOrder,
    Plan,
    Resolution,
    plan,
)
from oms.venue.trades import trade_fill_id

NOW = 1000.0
WINDOW = 30.0


def _ours(
    order_id: str = "o1",
    *,
    status: OrderStatus = OrderStatus.ACCEPTED,
    quantity: str = "1",
    filled: str = "0",
    trades: frozenset[str] = frozenset(),
    in_doubt: bool = False,
    submitted_at: float | None = None,
) -> OurOrder:
    return OurOrder(
        order_id, "a1", "BTC-USD", status, Decimal(quantity), Decimal(filled),
        frozenset(trade_fill_id(order_id, t) for t in trades), in_doubt, submitted_at,
    )  # fmt: skip


def _at_venue(
    order_id: str = "o1",
    status: VenueOrderStatus = VenueOrderStatus.OPEN,
    filled: str = "0",
) -> VenueOrderState:
    return VenueOrderState(
        order_id, f"V-{order_id}", "BTC-USD", status, Decimal(1), Decimal(filled),
        Decimal(100), None, None,
    )  # fmt: skip


def _trade(trade_id: str, order_id: str = "o1", quantity: str = "0.4") -> VenueTrade:
    return VenueTrade(
        trade_id, f"V-{order_id}", None, "BTC-USD", Side.BUY, Decimal(quantity), Decimal(100),
        Decimal("0.04"), None, 990.0,
    )  # fmt: skip


def _plan(
    ours: list[OurOrder],
    venue: list[VenueOrderState],
    trades: list[VenueTrade] = [],  # noqa: B006 - read only
    missing: list[NotAtVenue] = [],  # noqa: B006 - read only
) -> Plan:
    return plan(ours, venue, missing, trades, now=NOW, submit_window_s=WINDOW)


def test_plan_when_a_trade_was_missed_then_books_it_once_by_trade_id() -> None:
    # Arrange: the venue filled 0.4, reported twice, and we booked nothing
    trade = _trade("T1")

    # Act
    found = _plan([_ours()], [_at_venue(filled="0.4")], [trade, trade])

    # Assert
    assert [f.command_id for f in found.fills] == ["o1:T1"]
    assert found.fills[0].order_id == "o1"
    assert found.fills[0].quantity == Decimal("0.4")
    assert found.discrepancies == ()
    assert found.matched == 1  # the order's state agrees once T1 is booked


def test_plan_when_the_trade_is_booked_already_then_matches_and_books_nothing() -> None:
    found = _plan(
        [_ours(status=OrderStatus.PARTIALLY_FILLED, filled="0.4", trades=frozenset({"T1"}))],
        [_at_venue(filled="0.4")],
        [_trade("T1")],
    )

    assert found.fills == ()
    assert found.matched == 2
    assert found.discrepancies == ()


def test_plan_when_a_trade_hits_an_order_ended_here_then_a_discrepancy_not_a_fill() -> None:
    found = _plan(
        [_ours(status=OrderStatus.CANCELLED)],
        [_at_venue(status=VenueOrderStatus.CANCELLED, filled="0.4")],
        [_trade("T1")],
    )

    assert found.fills == ()
    kinds = {d.kind for d in found.discrepancies}
    assert DiscrepancyKind.FILL_ON_ENDED_ORDER in kinds
    assert all(d.account_id == "a1" for d in found.discrepancies)


def test_plan_when_the_venue_has_an_order_we_do_not_know_then_halts_everyone() -> None:
    found = _plan([], [_at_venue("stranger")])

    (discrepancy,) = found.discrepancies
    assert discrepancy.kind is DiscrepancyKind.UNKNOWN_VENUE_ORDER
    assert discrepancy.account_id is None


def test_plan_when_trades_overfill_the_order_then_quantity_mismatch() -> None:
    found = _plan(
        [_ours()],
        [_at_venue(status=VenueOrderStatus.FILLED, filled="1")],
        [_trade("T1", quantity="0.6"), _trade("T2", quantity="0.6")],
    )

    assert [f.command_id for f in found.fills] == ["o1:T1"]
    assert {d.kind for d in found.discrepancies} == {DiscrepancyKind.QUANTITY_MISMATCH}


def test_plan_when_the_venue_filled_more_than_its_trades_show_then_quantity_mismatch() -> None:
    found = _plan([_ours()], [_at_venue(filled="0.5")])

    (discrepancy,) = found.discrepancies
    assert discrepancy.kind is DiscrepancyKind.QUANTITY_MISMATCH


def test_plan_when_an_in_doubt_order_is_open_at_the_venue_then_resolves_it_live() -> None:
    found = _plan([_ours(in_doubt=True, submitted_at=NOW - 1)], [_at_venue()])

    (resolved,) = found.resolutions
    assert resolved.resolution is Resolution.LIVE
    assert found.discrepancies == ()


def test_plan_when_the_venue_does_not_know_an_in_doubt_order_within_the_window_then_waits() -> None:
    found = _plan(
        [_ours(in_doubt=True, submitted_at=NOW - 1)],
        [],
        missing=[NotAtVenue("o1", "VENUE_ORDER_NOT_FOUND")],
    )

    assert found.resolutions == ()
    assert found.pending == 1


def test_plan_when_the_window_passed_and_the_venue_knows_no_order_then_rejects_with_its_word() -> (
    None
):
    found = _plan(
        [_ours(in_doubt=True, submitted_at=NOW - WINDOW)],
        [],
        missing=[NotAtVenue("o1", "VENUE_ORDER_NOT_FOUND")],
    )

    (resolved,) = found.resolutions
    assert resolved.resolution is Resolution.REJECTED
    assert resolved.reason == "VENUE_ORDER_NOT_FOUND"
    assert found.discrepancies == ()


def test_plan_when_the_venue_knows_no_order_and_gives_no_word_then_venue_unknown() -> None:
    found = _plan([_ours(in_doubt=True)], [], missing=[NotAtVenue("o1", "")])

    assert found.resolutions[0].reason == VENUE_UNKNOWN


def test_plan_when_an_acknowledged_order_is_missing_at_the_venue_then_discrepancy_not_reject() -> (
    None
):
    found = _plan([_ours()], [], missing=[NotAtVenue("o1", "VENUE_ORDER_NOT_FOUND")])

    assert found.resolutions == ()
    (discrepancy,) = found.discrepancies
    assert discrepancy.kind is DiscrepancyKind.MISSING_AT_VENUE


def test_plan_when_the_venue_cancelled_a_live_order_then_cancels_it_here_with_its_fills() -> None:
    found = _plan(
        [_ours()],
        [_at_venue(status=VenueOrderStatus.CANCELLED, filled="0.4")],
        [_trade("T1")],
    )

    assert [f.command_id for f in found.fills] == ["o1:T1"]
    (resolved,) = found.resolutions
    assert resolved.resolution is Resolution.CANCELLED
    assert resolved.reason == "VENUE_CANCELLED"


def test_plan_when_the_venue_still_has_open_an_order_that_ended_here_then_discrepancy() -> None:
    found = _plan([_ours(status=OrderStatus.CANCELLED)], [_at_venue()])

    (discrepancy,) = found.discrepancies
    assert discrepancy.kind is DiscrepancyKind.OPEN_AT_VENUE_ENDED_HERE


def test_plan_when_the_fee_is_in_the_base_asset_then_books_it_in_quote_as_the_gateway_does() -> (
    None
):
    trade = _trade("T1")._replace(fee=Decimal("0.0004"), fee_asset="BTC")

    found = _plan([_ours()], [_at_venue(filled="0.4")], [trade])

    assert found.fills[0].fee == Decimal("0.0004") * Decimal(100)
    assert found.fills[0].command_id == trade_fill_id("o1", "T1")
