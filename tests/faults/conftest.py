"""Fixtures of the fault-injection suite: private servers for the session, a replica per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from oms.config import Settings
from oms.store.mongo_connection import store_databases
from tests.faults.harness import Replica, replica_env
from tests.faults.servers import PrivateServers


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServers]:
    """Kafka, Redis and FerretDB of the suite's own (a test may stop and start any of them)."""
    private = PrivateServers(tmp_path_factory.mktemp("fault-servers"))
    try:
        private.start()
        yield private
    finally:
        private.stop()


@pytest.fixture
def replica(servers: PrivateServers, tmp_path: Path) -> Iterator[Replica]:
    """A replica on the private servers with its own topics and database; every server is
    running again before it starts (a test may have left one stopped after a failure)."""
    servers.start()
    env = replica_env(servers, uuid.uuid4().hex[:8])
    replica = Replica(env, tmp_path / "serve.log")
    yield replica
    # A scenario that failed part-way leaves its process running (its supervision died with its
    # event loop): never let it outlive the test.
    process = replica.process
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(10)
    servers.start()
    settings = Settings.from_env(env)
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    for name in store_databases(settings.mongo_database):
        client.drop_database(name)
    client.close()
