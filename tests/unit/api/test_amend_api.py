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


async def test_cancel_all_when_the_account_has_resting_orders_then_202_with_the_count(
    api: Api,
) -> None:
    for n in range(2):
        await _place(api, {**RESTING, "client_order_id": f"am-all-{n}"})

    response = await api.client.delete("/api/orders", params={"account_id": "a1"})
    await api.settle()

    assert response.status == 202, await response.text()
    assert (await response.json())["requested"] == 2
    page = await (await api.client.get("/api/orders", params={"account_id": "a1"})).json()
    assert {order["status"] for order in page["items"]} == {"CANCELLED"}


async def test_cancel_all_when_the_symbol_is_unknown_then_422(api: Api) -> None:
    response = await api.client.delete(
        "/api/orders", params={"account_id": "a1", "symbol": "DOGE-USD"}
    )

    assert response.status == 422


async def test_place_when_a_stop_lacks_its_stop_price_then_422_naming_it(api: Api) -> None:
    body = {**RESTING, "type": "STOP_LIMIT"}

    response = await api.client.post("/api/orders", json=body)

    assert response.status == 422
    assert {e["field"] for e in (await response.json())["errors"]} == {"stop_price"}


async def test_place_when_gtd_expire_at_is_past_or_missing_then_422(api: Api) -> None:
    for extra in ({}, {"expire_at": "2001-01-01T00:00:00Z"}, {"expire_at": "tomorrow"}):
        body = {**RESTING, "time_in_force": "GTD", **extra}

        response = await api.client.post("/api/orders", json=body)

        assert response.status == 422, extra
        assert {e["field"] for e in (await response.json())["errors"]} == {"expire_at"}


async def test_place_when_gtd_and_stop_are_good_then_202_with_their_fields(api: Api) -> None:
    body = {
        **RESTING, "type": "STOP_LIMIT", "stop_price": "101.00", "price": "101.50",
        "time_in_force": "GTD", "expire_at": "2099-01-01T00:00:00Z",
    }  # fmt: skip

    response = await api.client.post("/api/orders", json=body)

    assert response.status == 202, await response.text()
    order = await response.json()
    assert (order["type"], order["stop_price"], order["time_in_force"]) == (
        "STOP_LIMIT", "101.00", "GTD"
    )  # fmt: skip
    assert order["expire_at"].startswith("2099-01-01T00:00:00")
    assert order["triggered_at"] is None


async def test_place_when_a_stop_is_at_or_behind_the_last_price_then_422_and_sends_nothing(
    api: Api,
) -> None:
    # The last price is 100.00: a BUY stop must be above it, a SELL stop below.
    wrong = [("BUY", "STOP_MARKET", "100.00"), ("BUY", "STOP_LIMIT", "99.00"),
             ("SELL", "STOP_MARKET", "100.00"), ("SELL", "STOP_LIMIT", "101.00")]  # fmt: skip
    sent = api.bus.sent_count
    for side, kind, stop_price in wrong:
        body = {**RESTING, "side": side, "type": kind, "stop_price": stop_price,
                "client_order_id": f"stop-{side}-{kind}"}  # fmt: skip
        if kind == "STOP_MARKET":
            body = {**body, "time_in_force": "IOC"}
            del body["price"]

        response = await api.client.post("/api/orders", json=body)

        assert response.status == 422, (side, kind, stop_price)
        assert response.content_type == PROBLEM_CONTENT_TYPE
        [error] = (await response.json())["errors"]
        assert (error["field"], error["code"]) == ("stop_price", "STOP_PRICE_WRONG_SIDE")
    assert api.bus.sent_count == sent


async def test_place_when_a_stop_is_on_the_right_side_then_202_and_it_waits(api: Api) -> None:
    body = {**RESTING, "side": "SELL", "type": "STOP_LIMIT", "stop_price": "99.00",
            "price": "98.50", "client_order_id": "stop-right"}  # fmt: skip

    placed = await _place(api, body)

    order = await api.client.get(f"/api/orders/{placed['order_id']}")
    assert (await order.json())["status"] == "ACCEPTED"
    assert (await order.json())["triggered_at"] is None


async def test_place_when_post_only_on_a_market_order_then_422(api: Api) -> None:
    body = {**RESTING, "type": "MARKET", "time_in_force": "IOC", "post_only": True}
    del body["price"]

    response = await api.client.post("/api/orders", json=body)

    assert response.status == 422
    assert {e["field"] for e in (await response.json())["errors"]} == {"post_only"}
