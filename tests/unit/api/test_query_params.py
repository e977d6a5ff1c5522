"""Numeric query parameters take ASCII digits only: anything else is a 422 naming the field."""

from __future__ import annotations

import pytest

from oms.api.problems import PROBLEM_CONTENT_TYPE
from tests.unit.api.conftest import Api

NOT_A_COUNT = [
    ("superscript two", "²"),
    ("arabic-indic three", "٣"),
    ("fullwidth one", "\uff11"),
    ("negative", "-1"),
    ("zero", "0"),
    ("exponent", "1e3"),
    ("leading space", " 5"),
    ("empty", ""),
    ("overlong", "1" * 5000),
    ("above the maximum", "501"),
]
ROUTES = [
    ("/api/orders", "limit"),
    ("/api/market-data/orderbook/BTC-USD", "depth"),
]


@pytest.mark.parametrize(("path", "name"), ROUTES, ids=[name for _, name in ROUTES])
@pytest.mark.parametrize("value", [v for _, v in NOT_A_COUNT], ids=[n for n, _ in NOT_A_COUNT])
async def test_get_when_a_count_parameter_is_not_ascii_digits_in_range_then_422_naming_it(
    api: Api, path: str, name: str, value: str
) -> None:
    # Act
    response = await api.client.get(path, params={name: value})

    # Assert
    assert response.status == 422
    assert response.content_type == PROBLEM_CONTENT_TYPE
    problem = await response.json()
    assert problem["code"] == "INVALID_PARAMETERS"
    assert [e["field"] for e in problem["errors"]] == [name]


@pytest.mark.parametrize(("path", "name"), ROUTES, ids=[name for _, name in ROUTES])
@pytest.mark.parametrize("value", ["1", "07", "500"])
async def test_get_when_a_count_parameter_is_ascii_digits_in_range_then_200(
    api: Api, path: str, name: str, value: str
) -> None:
    response = await api.client.get(path, params={name: value})

    assert response.status == 200
