"""Amending orders over HTTP on a real engine: PATCH /api/orders/{order_id}."""

from __future__ import annotations

from typing import Any

from oms.api.problems import PROBLEM_CONTENT_TYPE
from tests.malformed_orders import GOOD
from tests.unit.api.conftest import Api

CROSSING = {**GOOD, "account_id": "a1", "price": "100.10", "client_order_id": "am-cross"}
RESTING = {**GOOD, "account_id": "a1", "price": "95.00", "client_order_id": "am-rest"}


async def _place(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post("/api/orders", json=body)
    assert response.status == 202, await response.text()
    document: dict[str, Any] = await response.json()
    await api.settle()
    return document


async def test_amend_when_the_order_rests_then_202_and_amended_event_in_history(
    api: Api,
) -> None:
    placed = await _place(api, RESTING)

    response = await api.client.patch(
        f"/api/orders/{placed['order_id']}", json={"quantity": "0.02", "price": "96.00"}
    )
    await api.settle()

    assert response.status == 202, await response.text()
    order = await (await api.client.get(f"/api/orders/{placed['order_id']}")).json()
    assert (order["status"], order["quantity"], order["price"]) == ("ACCEPTED", "0.02", "96.00")
    history = await (await api.client.get(f"/api/orders/{placed['order_id']}/events")).json()
    amended = history["events"][-1]
    assert amended["type"] == "OrderAmended"
    assert (amended["quantity"], amended["price"]) == ("0.02", "96.00")


async def test_amend_when_risk_refuses_then_202_and_amend_rejected_with_reason(api: Api) -> None:
    placed = await _place(api, RESTING)

    response = await api.client.patch(f"/api/orders/{placed['order_id']}", json={"price": "150.00"})
    await api.settle()

    assert response.status == 202
    history = await (await api.client.get(f"/api/orders/{placed['order_id']}/events")).json()
    rejected = history["events"][-1]
    assert (rejected["type"], rejected["reason"]) == ("AmendRejected", "PRICE_OUTSIDE_COLLAR")
    order = await (await api.client.get(f"/api/orders/{placed['order_id']}")).json()
    assert order["price"] == "95.00"


async def test_amend_when_the_order_is_terminal_then_409_and_sends_nothing(api: Api) -> None:
    placed = await _place(api, CROSSING)
    sent = api.bus.sent_count

    response = await api.client.patch(f"/api/orders/{placed['order_id']}", json={"price": "99.00"})

    assert response.status == 409
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert (await response.json())["code"] == "ORDER_NOT_AMENDABLE"
    assert api.bus.sent_count == sent


async def test_amend_when_the_body_is_bad_then_422_naming_each_field(api: Api) -> None:
    placed = await _place(api, RESTING)
    sent = api.bus.sent_count

    response = await api.client.patch(
        f"/api/orders/{placed['order_id']}",
        json={"quantity": 1, "price": "95.001", "side": "SELL"},
    )

    assert response.status == 422
    fields = {error["field"] for error in (await response.json())["errors"]}
    assert fields == {"quantity", "price", "side"}
    assert api.bus.sent_count == sent


async def test_amend_when_the_body_is_empty_then_422(api: Api) -> None:
    placed = await _place(api, RESTING)

    response = await api.client.patch(f"/api/orders/{placed['order_id']}", json={})

    assert response.status == 422


async def test_amend_when_the_order_is_unknown_then_404(api: Api) -> None:
    response = await api.client.patch("/api/orders/nope", json={"price": "99.00"})

    assert response.status == 404
    assert (await response.json())["code"] == "NOT_FOUND"
