"""The one JSON encoding of orders, events and limits: lossless, decimal strings, typed refusals."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType
from typing import get_args

import orjson
import pytest

from oms.codec import (
    CodecError,
    InvalidAmount,
    event_from_dict,
    event_to_dict,
    limits_from_dict,
    limits_to_dict,
    order_from_dict,
    order_to_dict,
    parse_amount,
)
from oms.domain.events import (
    DoubtedRequest,
    OrderDoubtResolved,
    OrderEvent,
    OrderExpired,
    OrderInDoubt,
    OrderRejected,
    OrderTriggered,
    VenueWord,
)
from oms.domain.limits import DEFAULT_LIMITS, RiskLimits
from oms.domain.reasons import RejectReason
from tests.unit.store.histories import (
    amended_history,
    cancelled_history,
    rejected_history,
    settled_history,
    states,
)

HISTORIES = [
    settled_history("o-1"),
    rejected_history("o-2"),
    cancelled_history("o-3"),
    amended_history("o-4"),
]
_KINDS = ["settled", "rejected", "cancelled", "amended"]


@pytest.mark.parametrize("history", HISTORIES, ids=_KINDS)
def test_event_when_written_to_json_and_read_back_then_unchanged(history: list) -> None:
    for event in history:
        wire = orjson.dumps(event_to_dict(event))
        assert event_from_dict(orjson.loads(wire)) == event


@pytest.mark.parametrize("history", HISTORIES, ids=_KINDS)
def test_order_state_when_written_to_json_and_read_back_then_unchanged(history: list) -> None:
    for order in states(history):
        back = order_from_dict(orjson.loads(orjson.dumps(order_to_dict(order))))
        assert back == order
        assert [str(v) for v in back if isinstance(v, Decimal)] == [
            str(v) for v in order if isinstance(v, Decimal)
        ]  # same digits and exponent, not just equal values


# The histories above have no stop, expiry or venue doubt: one event of each such kind.
_RARER_EVENTS: list[OrderEvent] = [
    OrderTriggered("o-5", 3, "trigger:o-5", 1.0e9, Decimal("30100.50"), "req-5"),
    OrderExpired("o-6", 3, "expire:o-6", 1.0e9),
    OrderInDoubt("o-7", 2, "place:o-7", 1.0e9, DoubtedRequest.PLACE, "VENUE_TIMEOUT"),
    OrderDoubtResolved("o-7", 3, "doubt:o-7", 1.0e9, VenueWord.FILLED, Decimal("0.25")),
]


def test_event_when_of_any_type_then_written_to_json_and_read_back_unchanged() -> None:
    events = [*(event for history in HISTORIES for event in history), *_RARER_EVENTS]
    for event in events:
        wire = orjson.dumps(event_to_dict(event))
        assert event_from_dict(orjson.loads(wire)) == event
    assert {type(event) for event in events} == set(get_args(OrderEvent))  # every type


def test_event_when_it_has_a_request_id_then_it_survives_the_round_trip() -> None:
    placed = replace(settled_history("o-1")[0], request_id="req-1")

    data = event_to_dict(placed)

    assert data["request_id"] == "req-1"
    assert event_from_dict(orjson.loads(orjson.dumps(data))) == placed


def test_event_when_it_has_no_request_id_then_none_is_written_and_none_read_back() -> None:
    """Documents written before events carried request ids read back unchanged."""
    fill = settled_history("o-1")[2]

    data = event_to_dict(fill)

    assert "request_id" not in data
    assert event_from_dict(data).request_id is None


def test_event_when_its_request_id_is_not_text_then_unreadable_record() -> None:
    data = {**event_to_dict(settled_history("o-1")[0]), "request_id": 42}

    with pytest.raises(CodecError) as refused:
        event_from_dict(data)

    assert refused.value.code == "UNREADABLE_RECORD"


def test_to_dict_when_a_record_has_amounts_then_writes_decimal_strings_never_numbers() -> None:
    order = states(settled_history("o-1"))[-1]
    data = order_to_dict(order)
    assert data["quantity"] == "0.50"
    assert data["price"] == "30000.10"
    assert isinstance(data["filled_notional"], str)
    assert isinstance(data["created_at"], float)
    fill = event_to_dict(settled_history("o-1")[2])
    assert fill == {
        "type": "OrderFilled",
        "order_id": "o-1",
        "sequence": 3,
        "command_id": "x-o-1-1",
        "at": 1_767_225_600.252,
        "quantity": "0.20",
        "price": "30000.10",
        "fee": "6.00002",
    }


def test_event_to_dict_when_order_placed_then_names_order_type_and_its_kind_type() -> None:
    data = event_to_dict(settled_history("o-1")[0])
    assert data["type"] == "OrderPlaced"
    assert data["order_type"] == "LIMIT"


def test_limits_when_written_and_read_back_then_keep_overrides_and_switched_off_checks() -> None:
    limits = RiskLimits(
        max_order_quantity=Decimal("5"),
        symbol_max_order_quantity=MappingProxyType({"BTC-USD": Decimal("0.5")}),
        max_position=None,
        velocity_window_s=1.5,
        max_orders_per_window=10,
        max_notional_per_window=Decimal("100000.00"),
    )
    for value in (limits, DEFAULT_LIMITS, RiskLimits()):
        assert limits_from_dict(orjson.loads(orjson.dumps(limits_to_dict(value)))) == value


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"type": "OrderExploded", "order_id": "o", "sequence": 1, "command_id": "c", "at": 1.0},
        {
            "type": "OrderFilled",
            "order_id": "o",
            "sequence": 3,
            "command_id": "c",
            "at": 1.0,
            "quantity": "lots",
            "price": "1",
            "fee": "0",
        },
    ],
)
def test_event_from_dict_when_unreadable_then_refused_unreadable_record(broken: dict) -> None:
    with pytest.raises(CodecError) as refused:
        event_from_dict(broken)

    assert refused.value.code == "UNREADABLE_RECORD"


def test_order_from_dict_when_the_status_is_unknown_then_refused_unreadable_record() -> None:
    data = order_to_dict(states(settled_history("o-1"))[-1])
    data["status"] = "LOST"
    with pytest.raises(CodecError) as refused:
        order_from_dict(data)

    assert refused.value.code == "UNREADABLE_RECORD"


@pytest.mark.parametrize("text", ["0.5", "30000.10", "1", "999999999999999.000000000000000001"])
def test_parse_amount_when_a_plain_positive_decimal_string_then_keeps_its_digits(text: str) -> None:
    amount = parse_amount(text)

    assert amount == Decimal(text)
    assert str(amount) == text


@pytest.mark.parametrize(
    "value",
    ["0", "0.00", "-1", "+1", "1e3", "NaN", "Infinity", "1" * 16, "0.1234567890123456789",
     ".5", "5.", " 1", "01", "", 0.5, 1, True, None, ["1"], {"v": "1"}],
    ids=repr,
)  # fmt: skip
def test_parse_amount_when_anything_else_then_refused_invalid_amount(value: object) -> None:
    with pytest.raises(InvalidAmount) as refused:
        parse_amount(value)

    assert refused.value.code == "INVALID_AMOUNT"


def test_parse_amount_when_zero_then_an_amount_only_where_zero_is_allowed() -> None:
    assert parse_amount("0", zero_ok=True) == 0
    assert parse_amount("0.00", zero_ok=True) == 0


def test_event_from_dict_when_the_rejection_reason_is_unknown_then_refused_unreadable_record() -> (
    None
):
    # Arrange
    data = event_to_dict(rejected_history("o-2")[-1])
    data["reason"] = "NOT_A_REASON"

    # Act
    with pytest.raises(CodecError) as refused:
        event_from_dict(data)

    # Assert
    assert refused.value.code == "UNREADABLE_RECORD"


def test_order_from_dict_when_the_reject_reason_is_unknown_then_refused_unreadable_record() -> None:
    # Arrange
    data = order_to_dict(states(rejected_history("o-2"))[-1])
    data["reject_reason"] = "NOT_A_REASON"

    # Act
    with pytest.raises(CodecError) as refused:
        order_from_dict(data)

    # Assert
    assert refused.value.code == "UNREADABLE_RECORD"


def test_rejection_when_written_and_read_back_then_the_same_string_and_the_enum_member() -> None:
    # Arrange
    rejected = rejected_history("o-2")[-1]
    order = states(rejected_history("o-2"))[-1]

    # Act
    event_data, order_data = event_to_dict(rejected), order_to_dict(order)
    event_back, order_back = event_from_dict(event_data), order_from_dict(order_data)

    # Assert
    assert event_data["reason"] == order_data["reject_reason"] == "INSUFFICIENT_BUYING_POWER"
    assert isinstance(event_back, OrderRejected)
    assert event_back.reason is RejectReason.INSUFFICIENT_BUYING_POWER
    assert order_back.reject_reason is RejectReason.INSUFFICIENT_BUYING_POWER


def test_order_from_dict_when_stored_before_issue_15_then_loads_with_the_defaults() -> None:
    order = states(settled_history("o-9"))[-1]
    old = order_to_dict(order)
    for name in ("post_only", "stop_price", "expire_at", "triggered_at"):
        del old[name]

    back = order_from_dict(old)

    assert back == order
    assert (back.post_only, back.stop_price, back.expire_at, back.triggered_at) == (
        False, None, None, None
    )  # fmt: skip


def test_event_when_placed_with_stop_gtd_post_only_then_round_trips_and_old_ones_omit_them() -> (
    None
):
    plain = settled_history("o-10")[0]
    stop = replace(plain, stop_price=Decimal("30100.10"), expire_at=1.9e9, post_only=True)

    assert event_from_dict(orjson.loads(orjson.dumps(event_to_dict(stop)))) == stop
    assert not {"post_only", "stop_price", "expire_at"} & set(event_to_dict(plain))
