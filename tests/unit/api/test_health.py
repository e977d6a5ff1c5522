"""/health answers while the process runs, whatever the servers do."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from oms.api.app import build_app
from oms.config import Settings


async def test_health_when_the_process_runs_then_answers_ok() -> None:
    async with TestClient(TestServer(build_app(Settings()))) as client:
        response = await client.get("/health")

        assert response.status == 200
        assert await response.json() == {"status": "ok"}
