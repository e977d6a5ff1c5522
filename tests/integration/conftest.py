"""Integration tests talk to the real local servers that `make up` starts; no fakes here.

When a server does not answer, the tests fail (they are never skipped): run `make up` first.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from oms.config import Settings
from oms.probes import probe_all


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The settings the servers were started with."""
    return Settings.from_env()


@pytest.fixture(scope="session", autouse=True)
def _servers_answer(settings: Settings) -> None:
    checks = asyncio.run(probe_all(settings))
    down = [name for name, ok in checks.items() if not ok]
    if down:
        pytest.fail(
            f"local servers not answering: {', '.join(down)} (run `make up`)", pytrace=False
        )


@pytest.fixture
def unique() -> str:
    """A short unique suffix, so tests never see each other's topics, keys or collections."""
    return uuid.uuid4().hex[:10]
