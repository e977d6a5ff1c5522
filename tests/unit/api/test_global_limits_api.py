"""``GET``/``PUT /api/risk/global-limits`` over the in-memory app: set, read, audited, refused."""

from __future__ import annotations

from oms.domain.access import Role
from oms.domain.audit import AuditAction
from tests.credentials import bearer
from tests.unit.api.conftest import Api

CAPS = {
    "symbols": {"BTC-USD": {"max_gross_notional": "250000", "max_net_position": "3.5"}},
    "groups": {"desk": {"accounts": ["a1", "a2"], "max_gross_notional": "100000"}},
}


async def test_put_global_limits_when_risk_sets_them_then_read_back_and_audited(api: Api) -> None:
    # Arrange
    token = api.keys.token(Role.RISK)

    # Act
    put = await api.client.put("/api/risk/global-limits", json=CAPS, headers=bearer(token))
    got = await api.client.get("/api/risk/global-limits", headers=bearer(token))

    # Assert
    assert put.status == 200, await put.text()
    body = await got.json()
    assert body["symbols"] == CAPS["symbols"]
    assert body["groups"] == CAPS["groups"]
    assert body["usage"]["BTC-USD"] == {
        "open_notional": "0", "open_buy": "0", "open_sell": "0", "net_position": "0",
    }  # fmt: skip
    [entry] = api.audit.entries
    assert (entry.action, entry.role, entry.account_id) == (
        AuditAction.GLOBAL_LIMITS_CHANGED, "risk", None,
    )  # fmt: skip
    assert entry.detail["limits"]["symbols"]["BTC-USD"]["max_net_position"] == "3.5"  # type: ignore[index]


async def test_put_global_limits_when_the_body_is_wrong_then_422_naming_each_field(
    api: Api,
) -> None:
    # Arrange: an unlisted symbol, a number for an amount, an empty group, an unknown field
    body = {
        "symbols": {"DOGE-USD": {}, "BTC-USD": {"max_gross_notional": 5}},
        "groups": {"desk": {"accounts": []}},
        "caps": {},
    }

    # Act
    response = await api.client.put("/api/risk/global-limits", json=body)

    # Assert: nothing set, nothing audited
    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "VALIDATION_FAILED"
    assert {e["field"] for e in problem["errors"]} == {
        "caps", "symbols.DOGE-USD", "symbols.BTC-USD.max_gross_notional", "groups.desk.accounts",
    }  # fmt: skip
    assert (await (await api.client.get("/api/risk/global-limits")).json())["symbols"] == {}
    assert api.audit.entries == []


async def test_put_global_limits_when_a_trader_asks_then_403_role_forbids_action(api: Api) -> None:
    # Act
    response = await api.client.put(
        "/api/risk/global-limits", json=CAPS, headers=bearer(api.keys.token(Role.TRADER, "a1"))
    )

    # Assert
    assert response.status == 403
    assert (await response.json())["code"] == "ROLE_FORBIDS_ACTION"


async def test_put_global_limits_when_a_section_is_null_then_422_naming_it(api: Api) -> None:
    # Act: the document says both sections are objects; null is not one (schemathesis found it)
    response = await api.client.put(
        "/api/risk/global-limits", json={"symbols": None, "groups": None}
    )

    # Assert
    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "VALIDATION_FAILED"
    assert {e["field"] for e in problem["errors"]} == {"symbols", "groups"}
    assert api.audit.entries == []


async def test_put_global_limits_when_a_group_name_is_not_a_key_then_422_invalid_group_name(
    api: Api,
) -> None:
    # Arrange: "" means "no group" to the script; a dot or a leading "$" is refused as a key of
    # the audit entry by MongoDB and FerretDB; "|" joins an open order's fields in Redis
    # (schemathesis found the first two: the caps were set, then the audit write failed, 503)
    names = ["", "-script.pyw", "a.b", "$set", "a|b"]
    body = {"groups": {name: {"accounts": ["a1"]} for name in names}}

    # Act
    response = await api.client.put("/api/risk/global-limits", json=body)

    # Assert: each name refused with the code, nothing set, nothing audited
    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "VALIDATION_FAILED"
    assert {(e["field"], e["code"]) for e in problem["errors"]} == {
        (f"groups.{name}", "INVALID_GROUP_NAME") for name in names
    }
    assert (await (await api.client.get("/api/risk/global-limits")).json())["groups"] == {}
    assert api.audit.entries == []
