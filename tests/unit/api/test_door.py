"""The door's middlewares, folded (oms.api.door) or layered: the same answers either way."""

from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from oms.api.app import build_app
from oms.config import Settings
from oms.logs import ACCESS_LOGGER

STACKS = ("folded", "layered")


async def _up() -> dict[str, bool]:
    return {"kafka": True}


@pytest.mark.parametrize("stack", STACKS)
async def test_request_when_guarded_without_a_key_then_401_named_logged_and_timed(
    stack: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(Settings(http_middleware=stack), ready_probe=_up)
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/orders", headers={"X-Request-ID": f"door-{stack}"})
        body = await response.json()
        text = await (await client.get("/metrics")).text()

    assert response.status == 401
    assert body["code"] == "INVALID_CREDENTIAL"
    assert response.headers["X-Request-ID"] == f"door-{stack}"
    (line,) = [
        r for r in caplog.records if r.name == ACCESS_LOGGER and "/api/orders" in r.msg % r.args
    ]
    assert getattr(line, "status", None) == 401
    assert 'route="unmatched",status="401"' in text


@pytest.mark.parametrize("stack", STACKS)
async def test_request_when_open_then_200_timed_by_route(stack: str) -> None:
    app = build_app(Settings(http_middleware=stack), ready_probe=_up)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/health")
        text = await (await client.get("/metrics")).text()

    assert response.status == 200
    assert "X-Request-ID" in response.headers
    assert (
        'oms_http_request_duration_seconds_count{method="GET",route="/health",status="200"} 1.0'
        in text
    )
