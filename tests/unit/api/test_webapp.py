"""``oms serve`` serves the web app's build at ``/``: cache headers, CSP, never outside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from oms.api.app import build_app
from oms.api.webapp import CONTENT_SECURITY_POLICY, IMMUTABLE, REVALIDATE, dist_dir
from oms.config import Settings


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A small build: index.html, one hashed asset, one unhashed file; a secret beside it."""
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>oms</title>")
    (root / "assets" / "index-abc123.js").write_text("console.log(1)")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("not for the web")
    return root


def _client(dist: Path) -> TestClient:  # type: ignore[type-arg]
    return TestClient(TestServer(build_app(Settings(web_dist_dir=str(dist)))))


async def test_get_root_when_built_then_serves_index_revalidated_with_csp(dist: Path) -> None:
    async with _client(dist) as client:
        response = await client.get("/")

        assert response.status == 200
        assert response.content_type == "text/html"
        assert response.headers["Cache-Control"] == REVALIDATE
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_get_asset_when_hashed_then_cached_immutable_as_javascript(dist: Path) -> None:
    async with _client(dist) as client:
        response = await client.get("/assets/index-abc123.js")

        assert response.status == 200
        assert response.content_type.endswith("/javascript")  # a module as text/plain is refused
        assert response.headers["Cache-Control"] == IMMUTABLE


async def test_get_file_when_unhashed_then_revalidated(dist: Path) -> None:
    async with _client(dist) as client:
        response = await client.get("/favicon.svg")

        assert response.status == 200
        assert response.headers["Cache-Control"] == REVALIDATE


async def test_get_path_when_it_climbs_out_of_the_build_then_not_found(dist: Path) -> None:
    async with _client(dist) as client:
        response = await client.get("/assets/../../secret.txt")
        encoded = await client.get("/%2E%2E/secret.txt")

        assert response.status == 404
        assert encoded.status == 404
        assert (await encoded.json())["code"] == "NOT_FOUND"


async def test_get_api_path_when_unknown_then_problem_not_a_file(dist: Path) -> None:
    (dist / "api").mkdir()
    (dist / "api" / "x").write_text("shadow")
    async with _client(dist) as client:
        response = await client.get("/api/x")

        # the API's own answer (401 here: no key is sent), never the file
        assert response.status in (401, 404)
        assert response.content_type == "application/problem+json"
        assert "shadow" not in await response.text()


async def test_get_root_when_not_built_then_problem_says_how_to_build(tmp_path: Path) -> None:
    async with _client(tmp_path / "missing") as client:
        response = await client.get("/")
        body = await response.json()

        assert response.status == 404
        assert body["code"] == "NOT_FOUND"
        assert "make setup" in body["detail"]


async def test_api_route_when_a_file_shares_its_path_then_the_route_answers(dist: Path) -> None:
    (dist / "health").write_text("shadow")
    async with _client(dist) as client:
        response = await client.get("/health")

        assert response.status == 200
        assert await response.json() == {"status": "ok"}


def test_dist_dir_when_unset_then_the_checkouts_web_dist() -> None:
    root = dist_dir(Settings())

    assert root.parts[-2:] == ("web", "dist")
    assert (root.parent.parent / "oms").is_dir()
