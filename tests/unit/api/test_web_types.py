"""The web app's types are generated from the committed ``web/openapi.json``: it must be the
document the server serves, so a route or schema change fails here until ``make web-types``
regenerates both (``make test-web`` also regenerates the TypeScript and diffs it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

WEB = Path(__file__).resolve().parents[3] / "web"


def _document_text() -> bytes:
    spec = importlib.util.spec_from_file_location(
        "openapi_json", WEB / "scripts" / "openapi_json.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text: bytes = module.document_text()
    return text


def test_web_openapi_when_compared_with_the_servers_then_identical() -> None:
    committed = (WEB / "openapi.json").read_bytes()

    served = _document_text()

    assert committed == served, "web/openapi.json is stale: run `make web-types` and commit"
