"""Every route x every role x own/other account on an in-memory app (``tests/access_matrix.py``).

The routes are read from the app's router: one under /api or /ws without a row in ``CASES`` (or
without an action in ``ROUTE_ACTIONS``) fails, so a new route cannot go unchecked.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from oms.api.identity import ROUTE_ACTIONS, guarded
from oms.domain.access import Role
from tests.access_matrix import CASES, Body, check
from tests.malformed_orders import GOOD
from tests.unit.api.conftest import Api


class InMemory:
    """The matrix's target over the unit app (accounts a1 and a2, a book around 100)."""

    own, other = "a1", "a2"

    def __init__(self, api: Api) -> None:
        self.api = api
        self._n = 0

    def order(self, account: str) -> dict[str, Any]:
        self._n += 1
        return {**GOOD, "account_id": account, "price": "95.00", "client_order_id": f"r-{self._n}"}

    async def resting(self, account: str) -> str:
        response = await self.api.client.post("/api/orders", json=self.order(account))
        assert response.status == 202, await response.text()
        await self.api.settle()
        order_id: str = (await response.json())["order_id"]
        return order_id

    async def call(
        self, method: str, path: str, body: Body, headers: dict[str, str]
    ) -> tuple[int, str]:
        response = await self.api.client.request(method, path, json=body, headers=headers)
        payload = await response.json() if response.status >= 400 else {}
        return response.status, payload.get("code", "")

    async def ws(self, path: str, headers: dict[str, str]) -> int:
        try:
            socket = await self.api.client.ws_connect(path, headers=headers)
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status
        await socket.close()
        return 101


def mounted(api: Api) -> set[tuple[str, str]]:
    """(method, path) of every guarded route the app mounts."""
    routes = set()
    for route in api.client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if guarded(path) and route.method != "HEAD":
            routes.add((route.method, path))
    return routes


async def test_every_guarded_route_when_listed_then_has_a_case_and_an_action(api: Api) -> None:
    # Arrange
    routes = mounted(api)

    # Act
    missing_case = sorted(routes - set(CASES))
    missing_rule = sorted(routes - set(ROUTE_ACTIONS))

    # Assert
    assert not missing_case, f"routes without a row in CASES: {missing_case}"
    assert not missing_rule, f"routes without an action in ROUTE_ACTIONS: {missing_rule}"


@pytest.mark.parametrize("role", list(Role))
async def test_route_when_called_by_a_role_for_own_and_other_accounts_then_answers_the_matrix(
    api: Api, role: Role
) -> None:
    # Arrange
    target = InMemory(api)
    routes = mounted(api)

    # Act
    wrong, checked = await check(target, routes, role, api.keys.headers(role, (target.own,)))

    # Assert
    assert not wrong, "\n".join(wrong)
    assert checked == 2 * len(routes)


@pytest.mark.parametrize(("role", "status"), [(Role.ADMIN, 200), (Role.RISK, 403)])
async def test_global_kill_switch_when_set_then_only_admin_may(
    api: Api, role: Role, status: int
) -> None:
    # Arrange
    headers = api.keys.headers(role, ("a1",))

    # Act
    response = await api.client.post(
        "/api/risk/kill-switch", json={"state": "ACTIVE"}, headers=headers
    )

    # Assert
    assert response.status == status
    if status == 403:
        assert (await response.json())["code"] == "ROLE_FORBIDS_ACTION"
