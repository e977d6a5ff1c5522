"""Every malformed order over HTTP: 400 or 422 problem+json, nothing sent, nothing cached."""

from __future__ import annotations

import pytest

from oms.api.problems import PROBLEM_CONTENT_TYPE
from tests.malformed_orders import MALFORMED
from tests.unit.api.conftest import Api


@pytest.mark.parametrize(
    ("name", "raw", "status", "fields"), MALFORMED, ids=[c[0] for c in MALFORMED]
)
async def test_place_when_the_order_is_malformed_then_problem_and_nothing_sent(
    api: Api, name: str, raw: bytes, status: int, fields: set[str]
) -> None:
    response = await api.client.post(
        "/api/orders", data=raw, headers={"Content-Type": "application/json"}
    )

    assert response.status == status, name
    assert response.content_type == PROBLEM_CONTENT_TYPE
    problem = await response.json()
    assert problem["status"] == status
    assert problem["code"] == ("MALFORMED_JSON" if status == 400 else "VALIDATION_FAILED")
    assert {e["field"] for e in problem.get("errors", [])} >= fields
    assert api.bus.sent_count == 0
    await api.settle()
    assert len(api.engine.repository) == 0  # type: ignore[arg-type]


async def test_place_when_the_body_is_oversized_then_413_problem_and_nothing_sent(api: Api) -> None:
    response = await api.client.post(
        "/api/orders",
        data=b'{"pad": "' + b"x" * 100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )

    assert response.status == 413
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert (await response.json())["code"] == "BODY_TOO_LARGE"
    assert api.bus.sent_count == 0


async def test_place_when_the_idempotency_key_is_bad_then_422_and_nothing_sent(api: Api) -> None:
    response = await api.client.post(
        "/api/orders",
        json={
            "account_id": "a1",
            "symbol": "BTC-USD",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.1",
        },
        headers={"Idempotency-Key": "has space"},
    )

    assert response.status == 422
    assert (await response.json())["code"] == "INVALID_PARAMETERS"
    assert api.bus.sent_count == 0
