"""Real answers of every GET route validate against the OpenAPI document's own schemas."""

from __future__ import annotations

from typing import Any

import orjson

from oms.api.openapi import openapi_document
from oms.domain.audit import AuditAction, AuditEntry
from tests.malformed_orders import GOOD
from tests.unit.api.conftest import Api
from tests.unit.api.schema_check import problems

DOCUMENT = openapi_document()


def _get_routes() -> set[str]:
    """Every documented GET route that answers HTTP (the WebSockets answer 101)."""
    return {
        path
        for path, item in DOCUMENT["paths"].items()
        if "get" in item and "101" not in item["get"]["responses"]
    }


async def _orders(api: Api) -> tuple[str, str]:
    """A settled order and a resting one of account a1."""
    settled = await api.client.post("/api/orders", json={**GOOD, "account_id": "a1",
                                                         "client_order_id": "c-settled",
                                                         "price": "100.10"})  # fmt: skip
    resting = await api.client.post("/api/orders", json={**GOOD, "account_id": "a1",
                                                         "client_order_id": "c-resting",
                                                         "price": "99.00"})  # fmt: skip
    await api.settle()
    return (await settled.json())["order_id"], (await resting.json())["order_id"]


async def _validate(api: Api, route: str, url: str) -> list[str]:
    """Fetch ``url`` (of ``route``) and check its status, content type and body."""
    response = await api.client.get(url)
    body = await response.read()
    answers = DOCUMENT["paths"][route]["get"]["responses"]
    answer = answers.get(str(response.status))
    if answer is None:
        return [f"{url}: status {response.status} is not documented ({sorted(answers)})"]
    content = answer["content"]
    if response.content_type not in content:
        return [f"{url}: {response.content_type} is not documented ({sorted(content)})"]
    schema = content[response.content_type]["schema"]
    value: Any = body.decode() if response.content_type == "text/plain" else orjson.loads(body)
    return [f"{url} {response.status}: {p}" for p in problems(value, schema, DOCUMENT)]


async def test_every_get_route_when_answering_then_its_body_validates_against_the_document(
    api: Api,
) -> None:
    # Arrange: orders settled and resting, a book with levels on both sides
    settled, resting = await _orders(api)
    detail = {"limits": {"max_order_notional": "5000"}}
    for n in range(2):
        await api.audit.record(AuditEntry(AuditAction.LIMITS_CHANGED, "key:k", 1.0 + n,
                                          "risk", "10.0.0.1", "a1", detail, "req-1"))  # fmt: skip
    caps = {"symbols": {"BTC-USD": {"max_gross_notional": "1000000"}},
            "groups": {"desk": {"accounts": ["a1"], "max_gross_notional": "5000"}}}  # fmt: skip
    assert (await api.client.put("/api/risk/global-limits", json=caps)).status == 200
    urls = {
        "/api/instruments": ["/api/instruments"],
        "/api/accounts/{account_id}": ["/api/accounts/a1", "/api/accounts/ghost"],
        "/api/orders": ["/api/orders?account_id=a1", "/api/orders?limit=1",
                        "/api/orders?limit=%C2%B2"],
        "/api/orders/{order_id}": [f"/api/orders/{settled}", f"/api/orders/{resting}",
                                   "/api/orders/ghost"],
        "/api/orders/{order_id}/events": [f"/api/orders/{settled}/events",
                                          f"/api/orders/{resting}/events"],
        "/api/risk/positions": ["/api/risk/positions?account_id=a1", "/api/risk/positions"],
        "/api/risk/limits": ["/api/risk/limits?account_id=a1"],
        "/api/market-data/prices/{symbol}": ["/api/market-data/prices/BTC-USD",
                                             "/api/market-data/prices/ETH-USD"],
        "/api/market-data/orderbook/{symbol}": ["/api/market-data/orderbook/BTC-USD",
                                                "/api/market-data/orderbook/BTC-USD?depth=1",
                                                "/api/market-data/orderbook/BTC-USD?depth=x"],
        "/health": ["/health"],
        "/ready": ["/ready"],
        "/metrics": ["/metrics"],
        "/api/openapi.json": ["/api/openapi.json"],
        "/api/audit": ["/api/audit", "/api/audit?limit=1", "/api/audit?limit=0",
                       "/api/audit?cursor=%2F"],
        "/api/me": ["/api/me"],
        "/api/cluster": ["/api/cluster"],
        "/api/risk/global-limits": ["/api/risk/global-limits"],
        "/api/venue/reconciliation": ["/api/venue/reconciliation"],
    }  # fmt: skip
    assert set(urls) == _get_routes(), "a GET route without a URL here is left unchecked"

    # Act
    found = [p for route, each in urls.items() for url in each for p in await _validate(
        api, route, url)]  # fmt: skip

    # Assert
    assert found == []


def test_the_order_book_schema_when_given_a_book_then_validates_and_refuses_extra_fields() -> None:
    book: dict[str, Any] = {
        "symbol": "BTC-USD", "last_price": "100.00", "best_bid": "100.00",
        "best_ask": "100.10", "time": "2026-01-01T00:00:00Z",
        "bids": [{"price": "100.00", "quantity": "1"}],
        "asks": [{"price": "100.10", "quantity": "1"}],
    }  # fmt: skip
    schema = {"$ref": "#/components/schemas/OrderBook"}

    assert problems(book, schema, DOCUMENT) == []
    assert problems({**book, "colour": "red"}, schema, DOCUMENT) == ["$: 'colour' is not allowed"]
