"""The audit trail: who opened an account, changed limits or a kill switch, when and from where;
``GET /api/audit`` for admins, in pages."""

from __future__ import annotations

import logging

import pytest
from pymongo.errors import AutoReconnect

from oms.domain.access import Role
from oms.domain.audit import AuditAction, AuditEntry
from oms.stream.codecs import RiskEventType
from tests.credentials import bearer
from tests.unit.api.conftest import Api


def _key_id(token: str) -> str:
    return token.split("_")[1]  # oms_<key id>_<secret>


async def test_open_account_when_an_admin_opens_one_then_the_audit_names_key_address_and_balances(
    api: Api,
) -> None:
    # Arrange
    token = api.keys.token(Role.ADMIN)

    # Act
    response = await api.client.post(
        "/api/accounts",
        json={"account_id": "new-1", "balances": {"USD": "100.5"}},
        headers={**bearer(token), "X-Request-ID": "req-open-1"},
    )

    # Assert
    assert response.status == 201
    [entry] = api.audit.entries
    assert entry.action is AuditAction.ACCOUNT_OPENED
    assert entry.who == f"key:{_key_id(token)}"
    assert entry.role == "admin"
    assert entry.source == "127.0.0.1"
    assert entry.account_id == "new-1"
    assert entry.detail == {"balances": {"USD": "100.5"}, "limits": None}
    assert entry.request_id == "req-open-1"
    assert token not in repr(entry)


async def test_put_limits_when_risk_changes_them_then_audited_and_risk_event_names_who(
    api: Api,
) -> None:
    # Arrange
    token = api.keys.token(Role.RISK)

    # Act
    response = await api.client.put(
        "/api/risk/limits/a1", json={"max_order_quantity": "0.1"}, headers=bearer(token)
    )

    # Assert
    assert response.status == 200
    [entry] = api.audit.entries
    assert (entry.action, entry.who, entry.role) == (
        AuditAction.LIMITS_CHANGED, f"key:{_key_id(token)}", "risk",
    )  # fmt: skip
    assert entry.detail["limits"]["max_order_quantity"] == "0.1"  # type: ignore[index]
    [event] = api.risk_events.events
    assert event.type is RiskEventType.LIMITS
    assert event.by == entry.who
    assert event.at == entry.at


async def test_kill_switch_when_pulled_globally_then_audited_without_an_account(api: Api) -> None:
    # Act
    response = await api.client.post("/api/risk/kill-switch", json={"state": "HALTED"})
    await api.client.post("/api/risk/kill-switch", json={"state": "ACTIVE"})

    # Assert
    assert response.status == 200
    halted, resumed = api.audit.entries
    assert halted.action is AuditAction.KILL_SWITCH_CHANGED
    assert halted.account_id is None
    assert halted.detail == {"state": "HALTED", "scope": "global"}
    assert resumed.detail == {"state": "ACTIVE", "scope": "global"}
    assert [e.by for e in api.risk_events.events] == [halted.who, resumed.who]


async def test_refused_change_when_the_account_is_unknown_then_nothing_is_audited(
    api: Api,
) -> None:
    # Act
    missing = await api.client.put("/api/risk/limits/ghost", json={})
    taken = await api.client.post("/api/accounts", json={"account_id": "a1", "balances": {}})

    # Assert
    assert (missing.status, taken.status) == (404, 409)
    assert api.audit.entries == []


async def test_get_audit_when_more_than_a_page_then_newest_first_with_a_cursor(api: Api) -> None:
    # Arrange
    for n in range(3):
        await api.client.put("/api/risk/limits/a1", json={"max_order_quantity": f"{n + 1}"})

    # Act
    first = await (await api.client.get("/api/audit?limit=2")).json()
    second = await (
        await api.client.get(f"/api/audit?limit=2&cursor={first['next_cursor']}")
    ).json()

    # Assert
    quantities = [
        i["detail"]["limits"]["max_order_quantity"] for i in first["items"] + second["items"]
    ]
    assert quantities == ["3", "2", "1"]
    assert second["next_cursor"] is None
    assert first["items"][0]["action"] == "LIMITS_CHANGED"


@pytest.mark.parametrize("role", [Role.RISK, Role.TRADER, Role.VIEWER])
async def test_get_audit_when_not_an_admin_then_403(api: Api, role: Role) -> None:
    # Act
    response = await api.client.get("/api/audit", headers=api.keys.headers(role, ("a1",)))

    # Assert
    assert response.status == 403
    assert (await response.json(content_type=None))["code"] == "ROLE_FORBIDS_ACTION"


async def test_get_audit_when_parameters_are_wrong_then_422_naming_them(api: Api) -> None:
    # Act
    response = await api.client.get("/api/audit?limit=0&cursor=%2F&colour=red")

    # Assert
    body = await response.json(content_type=None)
    assert response.status == 422
    assert body["code"] == "INVALID_PARAMETERS"
    assert sorted(e["field"] for e in body["errors"]) == ["colour", "cursor", "limit"]


async def test_open_account_when_the_audit_cannot_be_written_then_503_and_entry_logged(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange
    async def down(_entry: AuditEntry) -> AuditEntry:
        raise AutoReconnect("connection refused")

    monkeypatch.setattr(api.audit, "record", down)

    # Act
    with caplog.at_level(logging.ERROR, logger="oms.api.audit"):
        response = await api.client.post(
            "/api/accounts", json={"account_id": "new-2", "balances": {"USD": "1"}}
        )

    # Assert
    body = await response.json(content_type=None)
    assert response.status == 503
    assert body["dependency"] == "mongodb"
    assert "ACCOUNT_OPENED" in caplog.text
    assert "new-2" in caplog.text
