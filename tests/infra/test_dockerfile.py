"""The Dockerfile (no Docker engine here: read it) agrees with the app and the cluster."""

from __future__ import annotations

import re

import pytest
from oms_infra.stacks.deployment import USER_ID, WORK_DIR
from oms_infra.stacks.documentdb import RDS_CA_FILE

from tests.infra.synthesis import REPO

pytestmark = pytest.mark.infra

DOCKERFILE = (REPO / "Dockerfile").read_text()
DOCKERIGNORE = (REPO / ".dockerignore").read_text().splitlines()


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    pairs = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_dockerfile_when_read_then_is_multi_stage_on_slim_python_311() -> None:
    froms = [args for stage in _stages() for word, args in stage if word == "FROM"]
    assert len(froms) >= 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
    assert froms[-1].startswith("${PYTHON_IMAGE} AS runtime")


def test_dockerfile_when_read_then_installs_the_lock_without_test_dev_and_infra_groups() -> None:
    syncs = [args for word, args in _instructions() if word == "RUN" and "uv sync" in args]
    assert syncs
    for sync in syncs:
        assert "--frozen" in sync
        assert "--no-default-groups" in sync
        assert "--no-editable" in sync


def test_runtime_stage_when_read_then_runs_as_the_clusters_non_root_user() -> None:
    runtime = _stages()[-1]
    users = [args for word, args in runtime if word == "USER"]
    assert users == [f"{USER_ID}:{USER_ID}"]
    assert f"OMS_UID={USER_ID}" in DOCKERFILE
    assert ("WORKDIR", WORK_DIR) in runtime


def test_runtime_stage_when_read_then_checks_health_and_runs_oms_serve() -> None:
    runtime = dict(_stages()[-1])
    assert "/health" in runtime["HEALTHCHECK"]
    assert runtime["ENTRYPOINT"] == '["oms"]'
    assert runtime["CMD"] == '["serve"]'
    assert "OMS_HTTP_HOST=0.0.0.0" in runtime["ENV"]
    assert "OMS_LOG_FORMAT=json" in runtime["ENV"]  # one JSON object per log line
    assert runtime["EXPOSE"] == "8080"


def test_dockerfile_when_read_then_carries_the_ca_bundle_the_mongo_url_names() -> None:
    assert RDS_CA_FILE in DOCKERFILE


def test_build_context_when_read_then_is_an_allowlist_without_secrets_or_state() -> None:
    assert DOCKERIGNORE[[line.strip() for line in DOCKERIGNORE].index("*")] == "*"
    allowed = {line[1:] for line in DOCKERIGNORE if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "oms/",
        *(f"web/{name}" for name in WEB_SOURCES),
    }


WEB_SOURCES = ("package.json", "package-lock.json", "index.html", "vite.config.ts")
WEB_SOURCES += ("tsconfig.json", "public/", "src/")


def test_web_stage_when_read_then_builds_from_the_lock_file_into_the_runtimes_web_dir() -> None:
    web = next(stage for stage in _stages() if stage[0][1].endswith(" AS web"))
    runs = [args for word, args in web if word == "RUN"]
    runtime = dict(_stages()[-1])
    assert "ARG NODE_IMAGE=node:20" in DOCKERFILE
    assert any("npm ci" in run for run in runs)  # the committed package-lock.json, exactly
    assert any("vite build" in run for run in runs)
    assert ("COPY", "--from=web /web/dist /app/web") in _stages()[-1]
    assert "OMS_WEB_DIST_DIR=/app/web" in runtime["ENV"]
