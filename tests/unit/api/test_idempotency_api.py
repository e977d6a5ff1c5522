"""Idempotent order entry: a repeated key answers the first order; another body is refused."""

from __future__ import annotations

import asyncio

from oms.api.order_request import parse_order_request
from oms.api.services import SERVICES_KEY
from oms.engine.aio import reply
from oms.engine.ports import OrderQuery
from tests.malformed_orders import GOOD
from tests.unit.api.conftest import Api

ORDER = {**GOOD, "account_id": "a1", "price": "95.00", "client_order_id": "idem-1"}


async def _orders_of_a1(api: Api) -> int:
    await api.settle()
    return len(await reply(api.engine.list_orders(OrderQuery("a1"))))


async def test_place_when_the_same_key_and_body_repeat_then_answers_the_same_order(
    api: Api,
) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = await api.client.post("/api/orders", json=ORDER, headers=headers)
    second = await api.client.post("/api/orders", json=ORDER, headers=headers)

    assert first.status == second.status == 202
    assert (await first.json())["order_id"] == (await second.json())["order_id"]
    assert api.bus.sent_count == 1
    assert await _orders_of_a1(api) == 1


async def test_place_when_the_same_body_is_written_differently_then_is_the_same_order(
    api: Api,
) -> None:
    first = await api.client.post("/api/orders", json=ORDER)
    second = await api.client.post("/api/orders", json={**ORDER, "quantity": "0.5000"})

    assert (await first.json())["order_id"] == (await second.json())["order_id"]


async def test_place_when_a_client_order_id_repeats_without_a_key_then_deduplicates_per_account(
    api: Api,
) -> None:
    first = await api.client.post("/api/orders", json=ORDER)
    again = await api.client.post("/api/orders", json=ORDER)
    other_account = await api.client.post("/api/orders", json={**ORDER, "account_id": "a2"})

    assert (await first.json())["order_id"] == (await again.json())["order_id"]
    assert (await other_account.json())["order_id"] != (await first.json())["order_id"]


async def test_place_when_a_key_comes_with_another_body_then_422_and_sends_nothing(
    api: Api,
) -> None:
    headers = {"Idempotency-Key": "k-2"}
    await api.client.post("/api/orders", json=ORDER, headers=headers)

    response = await api.client.post(
        "/api/orders", json={**ORDER, "quantity": "0.6"}, headers=headers
    )

    assert response.status == 422
    assert (await response.json())["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert api.bus.sent_count == 1


async def test_place_when_twenty_duplicates_arrive_at_once_then_makes_exactly_one_order(
    api: Api,
) -> None:
    headers = {"Idempotency-Key": "k-burst"}

    responses = await asyncio.gather(
        *(api.client.post("/api/orders", json=ORDER, headers=headers) for _ in range(20))
    )

    assert {r.status for r in responses} == {202}
    assert len({(await r.json())["order_id"] for r in responses}) == 1
    assert await _orders_of_a1(api) == 1


async def test_place_when_a_key_repeats_after_the_order_moved_then_answers_it_as_it_stands(
    api: Api,
) -> None:
    crossing = {**ORDER, "price": "100.10", "client_order_id": "idem-cross"}
    first = await api.client.post("/api/orders", json=crossing)
    await api.settle()

    again = await api.client.post("/api/orders", json=crossing)

    assert again.status == 202
    body = await again.json()
    assert body["order_id"] == (await first.json())["order_id"]
    assert body["status"] == "SETTLED"


async def test_place_when_a_keys_order_never_arrived_then_sends_it_again_with_the_same_id(
    api: Api,
) -> None:
    # A first request that claimed the key and died before sending: the retry must not answer
    # an order that exists nowhere, so it sends the same order id again (harmless if it had).
    services = api.client.app[SERVICES_KEY]  # type: ignore[index]
    request = parse_order_request(ORDER, services.engine.instruments)
    await services.idempotency.claim("a1:key:lost", "LOST-ORDER", request.fingerprint(), 60)

    response = await api.client.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "lost"})
    await api.settle()

    assert response.status == 202
    assert (await response.json())["order_id"] == "LOST-ORDER"
    order = await (await api.client.get("/api/orders/LOST-ORDER")).json()
    assert order["status"] == "ACCEPTED"
