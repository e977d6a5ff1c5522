"""API keys on the real MongoDB: ``oms keys`` prints the key once and stores only its digest."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient

from oms.config import Settings
from oms.domain.access import Role, key_digest, split_key
from oms.store.api_keys import COLLECTION, MongoKeyDirectory, create_key, list_keys, revoke_key
from oms.store.mongo_connection import store_databases

pytestmark = pytest.mark.integration


@pytest.fixture
def mine(settings: Settings, unique: str) -> Iterator[Settings]:
    """The settings with a database of this test's own, dropped after."""
    own = settings.replace(mongo_database=f"oms_keys_{unique}")
    yield own
    client: MongoClient[dict[str, Any]] = MongoClient(own.mongo_url)
    for name in store_databases(own.mongo_database):
        client.drop_database(name)
    client.close()


def _oms(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "OMS_MONGO_URL": settings.mongo_url,
               "OMS_MONGO_DATABASE": settings.mongo_database}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "oms.cli", *args],
        env=environ, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _everything(settings: Settings) -> str:
    """Every document of every collection of the database, as text."""
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    try:
        database = client[settings.mongo_database]
        return "\n".join(
            repr(document)
            for name in database.list_collection_names()
            for document in database[name].find({})
        )
    finally:
        client.close()


def test_keys_create_when_run_then_prints_id_and_key_once_and_stores_no_secret(
    mine: Settings,
) -> None:
    # Act
    created = _oms(mine, "keys", "create", "--role", "trader", "--account", "alice",
                   "--account", "bob", "--name", "alice's bot")  # fmt: skip
    listed = _oms(mine, "keys", "list")

    # Assert
    assert created.returncode == 0, created.stderr
    id_line, key_line = created.stdout.splitlines()
    key_id = id_line.removeprefix("key_id: ")
    token = key_line.removeprefix("key: ")
    parts = split_key(token)
    assert parts is not None
    assert parts[0] == key_id
    secret = parts[1]
    stored = _everything(mine)
    assert secret not in stored
    assert token not in stored
    assert key_digest(secret) in stored  # what is kept instead
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout
    assert "trader" in listed.stdout
    assert "accounts=alice,bob" in listed.stdout
    assert secret not in listed.stdout + listed.stderr


def test_keys_revoke_when_run_then_the_key_reads_back_revoked(mine: Settings) -> None:
    # Arrange
    issued = create_key(mine, Role.VIEWER, frozenset({"alice"}), "to revoke")

    # Act
    revoked = _oms(mine, "keys", "revoke", issued.key_id)
    again = _oms(mine, "keys", "revoke", issued.key_id)

    # Assert
    assert revoked.returncode == 0, revoked.stderr
    assert again.returncode == 1  # already revoked: says so, changes nothing
    (key,) = list_keys(mine)
    assert key.revoked_at is not None
    assert not revoke_key(mine, "0000000000000000")


async def test_find_key_when_stored_then_reads_back_what_create_key_made(mine: Settings) -> None:
    # Arrange
    issued = create_key(mine, Role.RISK, frozenset(), "risk desk")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mine.mongo_url)
    directory = MongoKeyDirectory(client[mine.mongo_database])

    # Act
    found = await directory.find_key(issued.key_id)
    missing = await directory.find_key("ffffffffffffffff")
    await client.close()

    # Assert
    assert found == issued.record
    assert missing is None
    secret = split_key(issued.key)
    assert secret is not None
    assert found is not None
    assert found.proves(secret[1])


def test_collection_when_keys_are_stored_then_named_api_keys(mine: Settings) -> None:
    create_key(mine, Role.ADMIN)
    client: MongoClient[dict[str, Any]] = MongoClient(mine.mongo_url)
    try:
        assert COLLECTION == "api_keys"
        assert client[mine.mongo_database][COLLECTION].count_documents({}) == 1
    finally:
        client.close()
