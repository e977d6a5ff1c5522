"""``GET /api/venue/reconciliation``: the last run's report and the discrepancies by kind."""

from __future__ import annotations

from decimal import Decimal

from oms.api.openapi import openapi_document
from oms.domain.access import Role
from oms.domain.enums import OrderType, Side
from oms.engine import Engine
from oms.engine.reconciliation import Reconciler, Resolver
from oms.venue.faulty import FaultyVenue
from oms.venue.port import PlaceRequest
from oms.venue.reconcile import Resolve
from tests.unit.api.conftest import Api
from tests.unit.api.schema_check import problems

DOCUMENT = openapi_document()


class NoResolutions(Resolver):
    """Nothing is in doubt here."""

    async def resolve(self, resolve: Resolve) -> None:
        raise AssertionError(resolve)


async def test_get_when_nothing_reconciles_then_no_run_and_no_discrepancies(api: Api) -> None:
    response = await api.client.get("/api/venue/reconciliation")

    assert response.status == 200
    assert await response.json() == {
        "reconciling": False,
        "last": None,
        "discrepancies_total": {},
    }


async def test_get_when_a_run_found_a_stranger_then_reports_it_by_kind(api: Api) -> None:
    # Arrange: the venue holds an order nobody here placed; a run finds it
    venue = FaultyVenue()
    await venue.place(
        PlaceRequest("stranger", "BTC-USD", Side.SELL, OrderType.LIMIT, Decimal(1), Decimal(99))
    )
    api.reconciliation.reconciler = Reconciler(
        engine=Engine(api.engine),
        venue=venue,
        resolver=NoResolutions(),
        discrepancies=api.reconciliation.discrepancies,
        in_doubt=lambda _order, _events: None,
        symbols=("BTC-USD",),
        owns=lambda _account: True,
        submit_window_s=30.0,
        lookback_s=60.0,
    )
    await api.reconciliation.reconciler.run("start")

    # Act
    response = await api.client.get("/api/venue/reconciliation")
    body = await response.json()
    viewer = await api.client.get(
        "/api/venue/reconciliation", headers=api.keys.headers(Role.TRADER, ("a1",))
    )

    # Assert
    assert response.status == 200
    assert body["reconciling"] is True
    assert body["last"]["trigger"] == "start"
    (found,) = body["last"]["discrepancies"]
    assert (found["kind"], found["account_id"], found["order_id"]) == (
        "UNKNOWN_VENUE_ORDER", None, "stranger",
    )  # fmt: skip
    assert body["discrepancies_total"] == {"UNKNOWN_VENUE_ORDER": 1}
    schema = DOCUMENT["paths"]["/api/venue/reconciliation"]["get"]["responses"]["200"]
    assert problems(body, schema["content"]["application/json"]["schema"], DOCUMENT) == []
    assert viewer.status == 403
    assert (await viewer.json())["code"] == "ROLE_FORBIDS_ACTION"
