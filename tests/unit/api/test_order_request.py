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


def test_a_good_limit_order_passes_with_decimals_intact() -> None:
    request = parse_order_request(decode_json_object(body()), INSTRUMENTS)

    assert request.side is Side.BUY
    assert request.type is OrderType.LIMIT
    assert request.quantity == Decimal("0.5")
    assert request.price == Decimal("60000.00")
    assert request.time_in_force is TimeInForce.GTC


def test_a_market_order_without_time_in_force_defaults_to_ioc() -> None:
    request = parse_order_request(
        decode_json_object(body(type="MARKET", price=..., time_in_force=...)), INSTRUMENTS
    )

    assert request.time_in_force is TimeInForce.IOC
    assert request.price is None


def test_the_same_order_written_differently_has_the_same_fingerprint() -> None:
    first = parse_order_request(decode_json_object(body(quantity="0.5")), INSTRUMENTS)
    second = parse_order_request(decode_json_object(body(quantity="0.5000")), INSTRUMENTS)

    assert first.fingerprint() == second.fingerprint()


@pytest.mark.parametrize(
    ("name", "raw", "status", "fields"), MALFORMED, ids=[c[0] for c in MALFORMED]
)
def test_a_malformed_order_is_refused_with_its_fields_named(
    name: str, raw: bytes, status: int, fields: set[str]
) -> None:
    with pytest.raises(Problem) as refused:
        _parse(raw)

    problem = refused.value
    assert problem.status == status, name
    assert {error.field for error in problem.errors} >= fields
    assert problem.body()["status"] == status


def test_there_are_at_least_25_malformed_cases() -> None:
    assert len(MALFORMED) >= 25
