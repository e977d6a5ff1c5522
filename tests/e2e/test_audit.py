"""The audit trail on a real ``oms serve``: keys made and revoked with ``oms keys``, an account
opened, its limits and kill switch changed, each recorded with who, when, what and from where;
and a key's secret nowhere in the service's log, the audit or the database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import MongoClient

from oms.stream.codecs import RiskEventType, decode_risk_event
from oms.stream.names import topic_names
from tests.credentials import bearer
from tests.e2e.conftest import (
    Replica,
    drop_database,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
)
from tests.integration.stream.records import read_all

pytestmark = pytest.mark.e2e

BOGUS = "not-a-secret-but-never-logged-either-7f3a"  # a wrong credential is not logged either


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Replica, dict[str, str], Path]]:
    """A replica, the environment that points ``oms keys`` at its database, and its log."""
    require_servers()
    overrides = run_overrides(uuid.uuid4().hex[:8])
    log = tmp_path_factory.mktemp("audit") / "serve.log"
    replica = start_replica(overrides, log)
    try:
        yield replica, overrides, log
    finally:
        stop_replica(replica)
        drop_database(replica.settings)


def _oms_keys(overrides: Mapping[str, str], *args: str) -> str:
    """Run ``oms keys ...`` against the run's database; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "oms.cli", "keys", *args],
        env={**os.environ, **overrides},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _created(output: str) -> tuple[str, str]:
    lines = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    return lines["key_id"], lines["key"]


def _everything(replica: Replica) -> str:
    """Every document of every collection of the run's database, as text."""
    client: MongoClient[dict[str, Any]] = MongoClient(replica.settings.mongo_url)
    try:
        database = client[replica.settings.mongo_database]
        return "\n".join(
            repr(document)
            for name in database.list_collection_names()
            for document in database[name].find({})
        )
    finally:
        client.close()


async def test_changes_when_made_with_keys_then_audited_with_who_what_where_and_no_secret(
    served: tuple[Replica, dict[str, str], Path],
) -> None:
    # Arrange: an admin key and a risk key, made with the CLI
    replica, overrides, log = served
    admin_id, admin = _created(_oms_keys(overrides, "create", "--role", "admin", "--name", "ops"))
    risk_id, risk = _created(_oms_keys(overrides, "create", "--role", "risk", "--name", "desk"))
    account = f"audit-{uuid.uuid4().hex[:6]}"

    # Act
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        base = replica.base
        opened = await http.post(f"{base}/api/accounts", headers=bearer(admin),
                                 json={"account_id": account, "balances": {"USD": "5000"}})  # fmt: skip
        limits = await http.put(f"{base}/api/risk/limits/{account}", headers=bearer(risk),
                                json={"max_order_quantity": "2"})  # fmt: skip
        halted = await http.post(f"{base}/api/risk/kill-switch", headers=bearer(risk),
                                 json={"state": "HALTED", "account_id": account})  # fmt: skip
        by_risk = await http.get(f"{base}/api/audit", headers=bearer(risk))
        _oms_keys(overrides, "revoke", risk_id)
        page = await (await http.get(f"{base}/api/audit?limit=100", headers=bearer(admin))).json()
        wrong = await http.get(f"{base}/api/audit", headers=bearer(f"oms_{admin_id}_{BOGUS}"))
    events = await read_all(
        replica.settings,
        topic_names(replica.settings).risk_events,
        lambda records: sum(decode_risk_event(r.value).account_id == account for r in records) >= 2,
    )

    # Assert
    assert (opened.status, limits.status, halted.status) == (201, 200, 200)
    assert by_risk.status == 403  # the audit is the admin's
    assert wrong.status == 401
    # Oldest first; before them, the key the test harness made for the replica
    entries = list(reversed(page["items"]))[-6:]
    assert len(page["items"]) == 7
    assert [e["action"] for e in entries] == [
        "KEY_CREATED", "KEY_CREATED", "ACCOUNT_OPENED", "LIMITS_CHANGED", "KILL_SWITCH_CHANGED",
        "KEY_REVOKED",
    ]  # fmt: skip
    made_admin, made_risk, open_entry, limit_entry, switch_entry, revoked = entries
    assert made_admin["detail"] == {"key_id": admin_id, "role": "admin", "accounts": [],
                                    "name": "ops"}  # fmt: skip
    assert made_risk["who"].startswith("cli:")
    assert (open_entry["who"], open_entry["role"]) == (f"key:{admin_id}", "admin")
    assert (limit_entry["who"], limit_entry["role"]) == (f"key:{risk_id}", "risk")
    assert switch_entry["detail"] == {"state": "HALTED", "scope": "account"}
    assert revoked["detail"]["key_id"] == risk_id
    for entry in (open_entry, limit_entry, switch_entry):
        assert entry["source"] == "127.0.0.1"
        assert entry["account_id"] == account
        assert entry["request_id"]
        assert entry["at"] > 0
    risk_changes = {
        e.type: e.by
        for e in map(decode_risk_event, (r.value for r in events))
        if e.account_id == account
    }
    assert risk_changes == {
        RiskEventType.LIMITS: f"key:{risk_id}",
        RiskEventType.KILL_SWITCH: f"key:{risk_id}",
    }
    # The secrets (the part after the key id) are nowhere: log, audit, any collection
    stored, served_log = _everything(replica), log.read_text()
    for token in (admin, risk, f"oms_{admin_id}_{BOGUS}"):
        secret = token.split("_", 2)[2]
        assert secret not in served_log
        assert secret not in stored
        assert "Bearer" not in served_log
