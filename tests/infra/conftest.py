"""Synthesize every environment once per session (see ``synthesis``) for the infra tests."""

from __future__ import annotations

import shutil

import pytest

from tests.infra.synthesis import ENVIRONMENTS, Synth, profile_of, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    """dev, prod and cost, each synthesized once for the whole session."""
    if shutil.which("node") is None:
        pytest.fail("CDKTF synthesizes through jsii, which needs Node.js on PATH", pytrace=False)
    root = tmp_path_factory.mktemp("cdktf")
    return {env: synthesize(profile_of(env), root / env) for env in ENVIRONMENTS}


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest, synthesized: dict[str, Synth]) -> Synth:
    """Each environment in turn."""
    return synthesized[request.param]
