"""The OpenAPI document and the application list the same routes with the same methods."""

from __future__ import annotations

from aiohttp import web

from oms.api.openapi import openapi_document
from tests.unit.api.conftest import Api


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if route.method == "*" or route.resource is None:
            continue
        routes.add((route.resource.canonical, route.method.lower()))
    return routes


def _document_routes(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {(path, method) for path, item in paths.items() for method in item}


async def test_openapi_when_served_then_documents_exactly_the_apps_routes(api: Api) -> None:
    response = await api.client.get("/api/openapi.json")
    document = await response.json()

    assert response.status == 200
    assert document["openapi"].startswith("3.1")
    assert _app_routes(api.client.app) == _document_routes(document)  # type: ignore[arg-type]


def test_openapi_when_built_then_carries_the_problem_and_order_schemas() -> None:
    schemas = openapi_document()["components"]["schemas"]

    assert {"type", "title", "status", "detail"} <= set(schemas["Problem"]["properties"])
    assert set(schemas["Order"]["properties"]) == {
        "order_id", "client_order_id", "account_id", "symbol", "side", "type", "quantity",
        "price", "time_in_force", "status", "filled_quantity", "average_fill_price",
        "reject_reason", "created_at", "updated_at", "version",
        "stop_price", "expire_at", "post_only", "triggered_at",
    }  # fmt: skip


def test_openapi_when_built_then_every_reference_resolves() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs
    assert {ref.rsplit("/", 1)[-1] for ref in refs} <= set(schemas)


def test_openapi_when_built_then_order_entry_documents_its_503_with_retry_after_and_409() -> None:
    paths = openapi_document()["paths"]

    place = paths["/api/orders"]["post"]["responses"]
    get = paths["/api/orders/{order_id}"]["get"]["responses"]

    assert {"202", "409", "422", "503"} <= set(place)
    assert "Retry-After" in place["503"]["headers"]
    assert "unknown" in place["503"]["description"]
    assert "503" in get
    assert "dependency" in openapi_document()["components"]["schemas"]["Problem"]["properties"]
