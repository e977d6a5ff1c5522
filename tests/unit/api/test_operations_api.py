"""Readiness, metrics and the problem answers of routes that do not exist."""

from __future__ import annotations

import gc

import pytest
from aiohttp.test_utils import TestClient, TestServer

from oms.api.app import build_app
from oms.api.metrics import Labelled, LabelledDurations
from oms.api.problems import PROBLEM_CONTENT_TYPE
from oms.api.services import SERVICES_KEY
from oms.config import Settings
from oms.durations import Durations
from oms.gc_pauses import record_gc_pauses
from tests.malformed_orders import GOOD
from tests.unit.api.conftest import Api


async def test_ready_when_every_check_passes_then_200_with_each_check(api: Api) -> None:
    response = await api.client.get("/ready")

    assert response.status == 200
    assert (await response.json())["checks"] == {
        "kafka": True, "mongodb": True, "redis": True, "partitions": True, "engine": True,
    }  # fmt: skip


async def test_health_when_an_actor_failed_then_503_with_the_reason(api: Api) -> None:
    api.engine.dispatcher.report_failure("OrderDirectory (tell)", RuntimeError("boom"))

    health = await api.client.get("/health")
    ready = await api.client.get("/ready")

    assert health.status == 503
    assert "OrderDirectory" in (await health.json())["reason"]
    assert ready.status == 503
    assert (await ready.json())["checks"]["engine"] is False


async def test_ready_when_partitions_are_not_assigned_then_503_naming_the_failed_check() -> None:
    async def up() -> dict[str, bool]:
        return {"kafka": True}

    app = build_app(Settings(), ready_probe=up, partitions_assigned=lambda: False)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/ready")

        assert response.status == 503
        assert (await response.json())["checks"] == {"kafka": True, "partitions": False}


async def test_metrics_when_an_order_settled_then_count_it_by_status_latency_and_lag(
    api: Api,
) -> None:
    await api.client.post("/api/orders", json={**GOOD, "account_id": "a1", "price": "100.10"})
    await api.settle()
    await api.client.get("/api/instruments")

    response = await api.client.get("/metrics")
    text = await response.text()

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'oms_orders{status="SETTLED"} 1.0' in text
    assert 'oms_orders{status="NEW"} 0.0' in text
    assert (
        'oms_http_request_duration_seconds_count{method="POST",route="/api/orders",status="202"} 1.0'
        in text
    )
    assert 'oms_consumer_lag{partition="0",topic="orders"} 3.0' in text
    assert "oms_store_backlog_orders 2.0" in text
    assert "oms_dead_letters_total 5.0" in text
    assert 'oms_store_write_duration_seconds_bucket{le="0.01"} 1.0' in text
    assert 'oms_store_write_duration_seconds_bucket{le="0.05"} 3.0' in text
    assert 'oms_store_write_duration_seconds_bucket{le="+Inf"} 4.0' in text
    assert "oms_store_write_duration_seconds_count 4.0" in text


async def test_metrics_when_orders_are_decided_then_transitions_rejects_and_latency_legs(
    api: Api,
) -> None:
    crossing = {**GOOD, "account_id": "a1", "price": "100.10"}
    too_big = {**crossing, "client_order_id": "big", "quantity": "100000"}
    await api.client.post("/api/orders", json=crossing)
    await api.client.post("/api/orders", json=too_big)
    await api.settle()

    text = await (await api.client.get("/metrics")).text()

    assert 'oms_order_transitions_total{status="NEW"} 2.0' in text
    assert 'oms_order_transitions_total{status="SETTLED"} 1.0' in text
    assert 'oms_order_transitions_total{status="REJECTED"} 1.0' in text
    assert 'oms_order_transitions_total{status="CANCELLED"} 0.0' in text
    assert 'oms_order_rejects_total{reason="INSUFFICIENT_BUYING_POWER"} 1.0' in text
    assert 'oms_order_rejects_total{reason="KILL_SWITCH_GLOBAL"} 0.0' in text
    for leg in ("entry", "durable", "accept"):
        assert f'oms_order_latency_seconds_count{{leg="{leg}"}} 2.0' in text
        assert f'oms_order_latency_seconds_bucket{{le="0.05",leg="{leg}"}}' in text


async def test_metrics_when_a_kill_switch_is_pulled_then_the_switches_show_it(api: Api) -> None:
    await api.client.post("/api/risk/kill-switch", json={"state": "HALTED", "account_id": "a1"})
    await api.client.post("/api/risk/kill-switch", json={"state": "REDUCING"})

    text = await (await api.client.get("/metrics")).text()

    assert 'oms_kill_switch{state="REDUCING"} 1.0' in text
    assert 'oms_kill_switch{state="ACTIVE"} 0.0' in text
    assert 'oms_kill_switch_accounts{state="HALTED"} 1.0' in text
    assert 'oms_kill_switch_accounts{state="REDUCING"} 0.0' in text


async def test_metrics_show_readiness_check_by_check_and_who_answers(api: Api) -> None:
    text = await (await api.client.get("/metrics")).text()

    assert "oms_ready 1.0" in text
    assert 'oms_ready_check{check="partitions"} 1.0' in text
    assert 'oms_ready_check{check="engine"} 1.0' in text
    assert f'oms_info{{replica="{api.engine.settings.replica_name()}",version="0.1.0"}} 1.0' in text


async def test_metrics_when_readiness_fails_then_oms_ready_is_0() -> None:
    async def kafka_down() -> dict[str, bool]:
        return {"kafka": False, "mongodb": True, "redis": True}

    app = build_app(Settings(replica="r-7"), ready_probe=kafka_down)
    async with TestClient(TestServer(app)) as client:
        text = await (await client.get("/metrics")).text()

    assert "oms_ready 0.0" in text
    assert 'oms_ready_check{check="kafka"} 0.0' in text
    assert 'oms_info{replica="r-7",version="0.1.0"} 1.0' in text


async def test_metrics_when_a_pipeline_figure_is_labelled_then_one_series_per_label() -> None:
    async def up() -> dict[str, bool]:
        return {"kafka": True}

    figures = {
        "ticks_total": Labelled("symbol", {"BTC-USD": 12, "SOL-USD": 0}),
        "dead_letters_by_reason_total": Labelled("reason", {"MALFORMED_JSON": 2}),
        "store_backlog_orders": 3,
    }
    app = build_app(Settings(), ready_probe=up, pipeline=lambda: figures)
    async with TestClient(TestServer(app)) as client:
        text = await (await client.get("/metrics")).text()

    assert 'oms_ticks_total{symbol="BTC-USD"} 12.0' in text
    assert 'oms_ticks_total{symbol="SOL-USD"} 0.0' in text
    assert 'oms_dead_letters_by_reason_total{reason="MALFORMED_JSON"} 2.0' in text
    assert "# TYPE oms_ticks_total counter" in text
    assert "oms_store_backlog_orders 3.0" in text


async def test_place_when_answered_202_then_the_door_counts_its_post_leg_and_its_parts(
    api: Api,
) -> None:
    legs = api.client.server.app[SERVICES_KEY].legs

    response = await api.client.post("/api/orders", json={**GOOD, "account_id": "a1"})

    assert response.status == 202
    assert [legs.durations[leg].count for leg in ("post", "claim", "produce", "cache")] == [1] * 4


async def test_place_when_refused_then_the_door_counts_no_post_leg(api: Api) -> None:
    legs = api.client.server.app[SERVICES_KEY].legs

    response = await api.client.post("/api/orders", json={**GOOD, "quantity": 1})

    assert response.status == 422
    assert legs.durations["post"].count == 0


async def test_metrics_when_a_pipeline_figure_is_a_histogram_per_label_then_one_per_label() -> None:
    async def up() -> dict[str, bool]:
        return {"kafka": True}

    engine, write = Durations((0.01,)), Durations((0.01,))
    engine.observe(0.004)
    figures = {"order_leg_seconds": LabelledDurations("leg", {"engine": engine, "write": write})}
    app = build_app(Settings(), ready_probe=up, pipeline=lambda: figures)
    async with TestClient(TestServer(app)) as client:
        text = await (await client.get("/metrics")).text()

    assert "# TYPE oms_order_leg_seconds histogram" in text
    assert 'oms_order_leg_seconds_bucket{le="0.01",leg="engine"} 1.0' in text
    assert 'oms_order_leg_seconds_count{leg="write"} 0.0' in text


async def test_request_when_the_route_is_unknown_then_404_problem(api: Api) -> None:
    response = await api.client.get("/api/nothing-here")

    assert response.status == 404
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert (await response.json())["status"] == 404
    assert (await response.json())["code"] == "NOT_FOUND"


async def test_request_when_the_method_is_wrong_then_405_problem_naming_the_allowed_ones(
    api: Api,
) -> None:
    response = await api.client.patch("/api/orders")

    assert response.status == 405
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert set(response.headers["Allow"].split(",")) == {"GET", "POST", "DELETE"}
    assert (await response.json())["code"] == "METHOD_NOT_ALLOWED"


async def test_request_when_the_handler_has_a_bug_then_500_problem_without_its_inside(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_account_id: str) -> None:
        raise RuntimeError("secret inside")

    monkeypatch.setattr(api.engine, "account", broken)

    response = await api.client.get("/api/accounts/a1")

    assert response.status == 500
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert "secret" not in await response.text()
    assert (await response.json())["code"] == "INTERNAL_ERROR"


async def test_order_websocket_when_no_account_is_given_then_422_problem(api: Api) -> None:
    response = await api.client.get("/ws/orders")

    assert response.status == 422
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert (await response.json())["code"] == "INVALID_PARAMETERS"


async def test_metrics_when_collections_are_timed_then_pauses_show_by_generation() -> None:
    # Arrange: the process times its collections, and one full collection happens
    async def up() -> dict[str, bool]:
        return {"kafka": True}

    record_gc_pauses()
    gc.collect()
    app = build_app(Settings(), ready_probe=up)

    # Act
    async with TestClient(TestServer(app)) as client:
        text = await (await client.get("/metrics")).text()

    # Assert: a histogram per generation, the full collection counted
    assert 'oms_gc_pause_seconds_bucket{generation="0",le="0.001"}' in text
    (full,) = [
        line
        for line in text.splitlines()
        if line.startswith('oms_gc_pause_seconds_count{generation="2"}')
    ]
    assert float(full.split()[-1]) >= 1
