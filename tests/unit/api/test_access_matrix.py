"""Every route x every role x own/other account, against the one table in oms.domain.access.

The routes are read from the app's router: a route under /api or /ws without a row in ``CASES``
fails ``test_every_guarded_route_when_listed_then_has_a_case``, so a new route cannot go
unchecked. Each row says how to call the route for an account (a resting order of it, where the
route names an order) and what it answers when allowed. The expected answer for a role comes
from ``ROLE_ACTIONS`` (itself checked against the README's matrix in tests/unit/domain):
no action -> 403 ROLE_FORBIDS_ACTION; reach OWN on another account -> 403 ACCOUNT_NOT_PERMITTED,
or 404 for a route that names an order (ids do not leak); else the route's own answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from oms.api.identity import ROUTE_ACTIONS, guarded
from oms.domain.access import Reach, Role, reach
from tests.malformed_orders import GOOD
from tests.unit.api.conftest import Api

OWN, OTHER = "a1", "a2"  # the caller's account, and one it does not hold

_counter = itertools.count()


async def _resting(api: Api, account: str) -> str:
    """A fresh resting order of ``account`` (placed by the fixture's admin key)."""
    body = {
        **GOOD,
        "account_id": account,
        "price": "95.00",
        "client_order_id": f"m-{next(_counter)}",
    }
    response = await api.client.post("/api/orders", json=body)
    assert response.status == 202, await response.text()
    await api.settle()
    order_id: str = (await response.json())["order_id"]
    return order_id


@dataclass(frozen=True)
class Case:
    """How to call a route for an account, and what it answers when the caller may."""

    call: Callable[[Api, str], Awaitable[tuple[str, str, dict[str, Any] | None]]]
    allowed: int
    names_an_order: bool = False  # another account's order answers 404, not 403
    websocket: bool = False


def _fixed(method: str, path: str, body: dict[str, Any] | None = None) -> Case:
    async def call(_api: Api, account: str) -> tuple[str, str, dict[str, Any] | None]:
        filled = path.format(account=account)
        return method, filled, None if body is None else _fill(body, account)

    return Case(call, 0)


def _fill(body: dict[str, Any], account: str) -> dict[str, Any]:
    return {k: (v.format(account=account) if isinstance(v, str) else v) for k, v in body.items()}


def _case(method: str, path: str, allowed: int, body: dict[str, Any] | None = None) -> Case:
    return Case(_fixed(method, path, body).call, allowed)


def _order_case(method: str, suffix: str, allowed: int, body: dict[str, Any] | None = None) -> Case:
    async def call(api: Api, account: str) -> tuple[str, str, dict[str, Any] | None]:
        order_id = await _resting(api, account)
        return method, f"/api/orders/{order_id}{suffix}", body

    return Case(call, allowed, names_an_order=True)


def _ws_case(path: str) -> Case:
    return Case(_fixed("GET", path).call, 101, websocket=True)


_ORDER = {**GOOD, "account_id": "{account}", "price": "95.00"}
_NEW_ACCOUNT = {"account_id": "new-{account}", "balances": {"USD": "10"}}

CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/instruments"): _case("GET", "/api/instruments", 200),
    ("GET", "/api/market-data/prices/{symbol}"): _case(
        "GET", "/api/market-data/prices/BTC-USD", 200
    ),
    ("GET", "/api/market-data/orderbook/{symbol}"): _case(
        "GET", "/api/market-data/orderbook/BTC-USD", 200
    ),
    ("GET", "/ws/market-data"): _ws_case("/ws/market-data"),
    ("POST", "/api/accounts"): Case(_fixed("POST", "/api/accounts", _NEW_ACCOUNT).call, 201),
    ("GET", "/api/accounts/{account_id}"): _case("GET", "/api/accounts/{account}", 200),
    ("GET", "/api/risk/positions"): _case("GET", "/api/risk/positions?account_id={account}", 200),
    ("GET", "/api/risk/limits"): _case("GET", "/api/risk/limits?account_id={account}", 200),
    ("GET", "/api/orders"): _case("GET", "/api/orders?account_id={account}", 200),
    ("GET", "/api/orders/{order_id}"): _order_case("GET", "", 200),
    ("GET", "/api/orders/{order_id}/events"): _order_case("GET", "/events", 200),
    ("GET", "/ws/orders"): _ws_case("/ws/orders?account_id={account}"),
    ("POST", "/api/risk/validate"): _case("POST", "/api/risk/validate", 200, _ORDER),
    ("POST", "/api/orders"): Case(
        _fixed("POST", "/api/orders", {**_ORDER, "client_order_id": None}).call, 202
    ),
    ("PATCH", "/api/orders/{order_id}"): _order_case("PATCH", "", 202, {"quantity": "0.5"}),
    ("DELETE", "/api/orders/{order_id}"): _order_case("DELETE", "", 202),
    ("DELETE", "/api/orders"): _case("DELETE", "/api/orders?account_id={account}", 202),
    ("PUT", "/api/risk/limits/{account_id}"): _case("PUT", "/api/risk/limits/{account}", 200, {}),
    ("POST", "/api/risk/kill-switch"): _case(
        "POST", "/api/risk/kill-switch", 200, {"state": "ACTIVE", "account_id": "{account}"}
    ),
    ("GET", "/api/audit"): _case("GET", "/api/audit", 200),
    ("POST", "/api/ws-ticket"): _case("POST", "/api/ws-ticket", 200),
    ("GET", "/api/me"): _case("GET", "/api/me", 200),
}


def _routes(api: Api) -> set[tuple[str, str]]:
    """(method, path) of every guarded route the app mounts."""
    routes = set()
    for route in api.client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if guarded(path) and route.method != "HEAD":
            routes.add((route.method, path))
    return routes


def _expected(role: Role, key: tuple[str, str], case: Case, account: str) -> tuple[int, str]:
    allowed = reach(role, ROUTE_ACTIONS[key])
    if allowed is None:
        return 403, "ROLE_FORBIDS_ACTION"
    if allowed is Reach.OWN and account != OWN:
        if case.names_an_order:
            return 404, "NOT_FOUND"
        return 403, "ACCOUNT_NOT_PERMITTED"
    return case.allowed, ""


async def _answer(api: Api, case: Case, account: str, headers: dict[str, str]) -> tuple[int, str]:
    method, path, body = await case.call(api, account)
    if body is not None and body.get("client_order_id", "") is None:
        body = {**body, "client_order_id": f"m-{next(_counter)}"}
    if case.websocket:
        try:
            ws = await api.client.ws_connect(path, headers=headers)
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status, ""
        await ws.close()
        return 101, ""
    response = await api.client.request(method, path, json=body, headers=headers)
    payload = await response.json() if response.status >= 400 else {}
    return response.status, payload.get("code", "")


async def test_every_guarded_route_when_listed_then_has_a_case(api: Api) -> None:
    # Arrange
    mounted = _routes(api)

    # Act
    missing_case = sorted(mounted - set(CASES))
    missing_rule = sorted(mounted - set(ROUTE_ACTIONS))

    # Assert
    assert not missing_case, f"routes without a row in CASES: {missing_case}"
    assert not missing_rule, f"routes without an action in ROUTE_ACTIONS: {missing_rule}"


@pytest.mark.parametrize("role", list(Role))
async def test_route_when_called_by_a_role_for_own_and_other_accounts_then_answers_the_matrix(
    api: Api, role: Role
) -> None:
    # Arrange
    headers = api.keys.headers(role, (OWN,))
    mounted = _routes(api)
    wrong = []
    checked = 0

    # Act
    for key in sorted(mounted):
        case = CASES[key]
        for account in (OWN, OTHER):
            expected = _expected(role, key, case, account)
            status, code = await _answer(api, case, account, headers)
            checked += 1
            # (a refused WebSocket handshake shows its status, not its body)
            code_differs = bool(expected[1]) and not case.websocket and code != expected[1]
            if status != expected[0] or code_differs:
                wrong.append(f"{key} {role.value} {account}: {status} {code}, wanted {expected}")

    # Assert
    assert not wrong, "\n".join(wrong)
    assert checked == 2 * len(mounted)


@pytest.mark.parametrize(("role", "status"), [(Role.ADMIN, 200), (Role.RISK, 403)])
async def test_global_kill_switch_when_set_then_only_admin_may(
    api: Api, role: Role, status: int
) -> None:
    # Arrange
    headers = api.keys.headers(role, (OWN,))

    # Act
    response = await api.client.post(
        "/api/risk/kill-switch", json={"state": "ACTIVE"}, headers=headers
    )

    # Assert
    assert response.status == status
    if status == 403:
        assert (await response.json())["code"] == "ROLE_FORBIDS_ACTION"
