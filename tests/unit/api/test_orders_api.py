"""Orders over HTTP on a real engine: place, follow, list, cancel."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from oms.api.problems import PROBLEM_CONTENT_TYPE
from tests.malformed_orders import GOOD
from tests.unit.api.conftest import Api

CROSSING = {**GOOD, "account_id": "a1", "price": "100.10", "client_order_id": "cross-1"}
RESTING = {**GOOD, "account_id": "a1", "price": "95.00", "client_order_id": "rest-1"}


async def _place(api: Api, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await api.client.post("/api/orders", json=body, headers=headers)
    assert response.status == 202, await response.text()
    document: dict[str, Any] = await response.json()
    return document


async def test_place_when_the_order_is_good_then_202_new_and_a_get_finds_it_at_once(
    api: Api,
) -> None:
    placed = await _place(api, CROSSING)

    assert placed["status"] == "NEW"
    assert placed["quantity"] == "0.5"
    assert placed["price"] == "100.10"
    assert placed["filled_quantity"] == "0"
    assert placed["version"] == 1
    assert placed["created_at"].endswith("Z")
    assert set(placed) == {
        "order_id", "client_order_id", "account_id", "symbol", "side", "type", "quantity",
        "price", "time_in_force", "status", "filled_quantity", "average_fill_price",
        "reject_reason", "created_at", "updated_at", "version",
        "stop_price", "expire_at", "post_only", "triggered_at",
    }  # fmt: skip
    got = await api.client.get(f"/api/orders/{placed['order_id']}")
    assert got.status == 200
    assert (await got.json())["order_id"] == placed["order_id"]


async def test_place_when_the_order_crosses_then_settles_in_get_events_and_websocket(
    api: Api,
) -> None:
    async with api.client.ws_connect("/ws/orders?account_id=a1") as ws:
        hello = orjson.loads((await ws.receive()).data)
        assert hello == {"type": "subscribed", "account_id": "a1"}

        placed = await _place(api, CROSSING)
        await api.settle()

        statuses = []
        kinds = []
        while not statuses or statuses[-1] != "SETTLED":
            message = orjson.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            assert message["order_id"] == placed["order_id"]
            statuses.append(message["status"])
            kinds.append(message["event"]["type"])

    assert statuses == ["NEW", "ACCEPTED", "FILLED", "SETTLED"]
    assert kinds == ["OrderPlaced", "OrderAccepted", "OrderFilled", "OrderSettled"]
    order = await (await api.client.get(f"/api/orders/{placed['order_id']}")).json()
    assert order["status"] == "SETTLED"
    assert order["filled_quantity"] == "0.5"
    assert order["average_fill_price"] == "100.10"
    history = await (await api.client.get(f"/api/orders/{placed['order_id']}/events")).json()
    assert [e["type"] for e in history["events"]] == kinds
    assert [e["sequence"] for e in history["events"]] == [1, 2, 3, 4]
    assert history["events"][2]["price"] == "100.10"
    assert history["events"][0]["order_type"] == "LIMIT"


async def test_order_websocket_when_subscribed_to_an_account_then_sees_only_its_orders(
    api: Api,
) -> None:
    async with api.client.ws_connect("/ws/orders?account_id=a2") as ws:
        await ws.receive()  # subscribed
        await _place(api, CROSSING)
        await _place(api, {**CROSSING, "account_id": "a2", "client_order_id": "other"})
        await api.settle()

        message = orjson.loads((await asyncio.wait_for(ws.receive(), 5)).data)

    assert message["account_id"] == "a2"


async def test_cancel_when_the_order_rests_then_202_and_it_ends_cancelled(api: Api) -> None:
    placed = await _place(api, RESTING)
    await api.settle()
    assert (await (await api.client.get(f"/api/orders/{placed['order_id']}")).json())[
        "status"
    ] == "ACCEPTED"

    response = await api.client.delete(f"/api/orders/{placed['order_id']}")
    await api.settle()

    assert response.status == 202
    order = await (await api.client.get(f"/api/orders/{placed['order_id']}")).json()
    assert order["status"] == "CANCELLED"
    account = await (await api.client.get("/api/accounts/a1")).json()
    assert account["reservations"] == {}


async def test_cancel_when_the_order_is_terminal_then_409_and_sends_nothing(api: Api) -> None:
    placed = await _place(api, CROSSING)
    await api.settle()
    sent = api.bus.sent_count

    response = await api.client.delete(f"/api/orders/{placed['order_id']}")

    assert response.status == 409
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert (await response.json())["code"] == "ORDER_NOT_CANCELLABLE"
    assert api.bus.sent_count == sent


async def test_order_routes_when_the_order_is_unknown_then_404(api: Api) -> None:
    for method, path in (
        ("GET", "/api/orders/nope"),
        ("DELETE", "/api/orders/nope"),
        ("GET", "/api/orders/nope/events"),
    ):
        response = await api.client.request(method, path)
        assert response.status == 404, path
        assert response.content_type == PROBLEM_CONTENT_TYPE
        assert (await response.json())["code"] == "NOT_FOUND", path


async def test_list_when_orders_span_pages_then_newest_first_with_an_opaque_cursor(
    api: Api,
) -> None:
    ids = []
    for n in range(5):
        placed = await _place(api, {**RESTING, "client_order_id": f"page-{n}"})
        ids.append(placed["order_id"])
    await api.settle()

    first = await (await api.client.get("/api/orders?account_id=a1&limit=3")).json()
    second = await (
        await api.client.get(f"/api/orders?account_id=a1&limit=3&cursor={first['next_cursor']}")
    ).json()

    listed = [o["order_id"] for o in first["items"] + second["items"]]
    assert sorted(listed, reverse=True) == sorted(ids, reverse=True)
    assert len(set(listed)) == 5
    assert second["next_cursor"] is None
    filtered = await (await api.client.get("/api/orders?account_id=a1&status=SETTLED")).json()
    assert filtered["items"] == []


async def test_list_when_parameters_are_bad_then_422_naming_each(api: Api) -> None:
    response = await api.client.get("/api/orders?status=done&limit=0&colour=red&cursor=x")

    assert response.status == 422
    assert (await response.json())["code"] == "INVALID_PARAMETERS"
    fields = {e["field"] for e in (await response.json())["errors"]}
    assert fields == {"status", "limit", "colour"}
    bad_cursor = await api.client.get("/api/orders?cursor=%21%21")
    assert bad_cursor.status == 422
    assert (await bad_cursor.json())["code"] == "INVALID_PARAMETERS"
