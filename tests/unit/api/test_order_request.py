"""The door refuses every malformed order with the fields named, and passes good ones through."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.api.order_request import decode_json_object, parse_order_request
from oms.api.problems import Problem
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.instruments import DEFAULT_INSTRUMENTS, instrument_map
from tests.malformed_orders import MALFORMED, body

INSTRUMENTS = instrument_map(DEFAULT_INSTRUMENTS)


def _parse(raw: bytes) -> object:
    return parse_order_request(decode_json_object(raw), INSTRUMENTS)


def test_parse_when_a_limit_order_is_good_then_passes_with_decimals_intact() -> None:
    request = parse_order_request(decode_json_object(body()), INSTRUMENTS)

    assert request.side is Side.BUY
    assert request.type is OrderType.LIMIT
    assert request.quantity == Decimal("0.5")
    assert request.price == Decimal("60000.00")
    assert request.time_in_force is TimeInForce.GTC


def test_parse_when_a_market_order_has_no_time_in_force_then_defaults_to_ioc() -> None:
    request = parse_order_request(
        decode_json_object(body(type="MARKET", price=..., time_in_force=...)), INSTRUMENTS
    )

    assert request.time_in_force is TimeInForce.IOC
    assert request.price is None


def test_fingerprint_when_the_same_order_is_written_differently_then_is_the_same() -> None:
    first = parse_order_request(decode_json_object(body(quantity="0.5")), INSTRUMENTS)
    second = parse_order_request(decode_json_object(body(quantity="0.5000")), INSTRUMENTS)

    assert first.fingerprint() == second.fingerprint()


@pytest.mark.parametrize(
    ("name", "raw", "status", "fields"), MALFORMED, ids=[c[0] for c in MALFORMED]
)
def test_parse_when_the_order_is_malformed_then_refuses_it_naming_its_fields(
    name: str, raw: bytes, status: int, fields: set[str]
) -> None:
    with pytest.raises(Problem) as refused:
        _parse(raw)

    problem = refused.value
    assert problem.status == status, name
    assert problem.code == ("MALFORMED_JSON" if status == 400 else "VALIDATION_FAILED")
    assert {error.field for error in problem.errors} >= fields
    assert problem.body()["status"] == status


def test_malformed_cases_when_counted_then_are_at_least_25() -> None:
    assert len(MALFORMED) >= 25
