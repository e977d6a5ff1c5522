"""Every route x every role x own/other account against a real ``oms serve`` (keys in its MongoDB).

The routes are read from the replica's own OpenAPI document; the calls and the expected answers
are the same table the unit test uses (``tests/access_matrix.py``).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from oms.api.identity import guarded
from oms.domain.access import Role
from oms.store.api_keys import create_key
from tests.access_matrix import CASES, Body, check
from tests.credentials import bearer
from tests.e2e.conftest import Replica, last_price, open_account

pytestmark = pytest.mark.e2e

FUNDS = {"USD": "1000000", "BTC": "10"}


class Real:
    """The matrix's target over a real replica; orders rest 3 % under the last price."""

    def __init__(self, http: aiohttp.ClientSession, base: str, own: str, other: str) -> None:
        self.http, self.base, self.own, self.other = http, base, own, other
        self.price = "0"
        self._n = 0

    def order(self, account: str) -> dict[str, Any]:
        self._n += 1
        return {"account_id": account, "client_order_id": f"mx-{self._n}", "symbol": "BTC-USD",
                "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": self.price,
                "time_in_force": "GTC"}  # fmt: skip

    async def resting(self, account: str) -> str:
        # Placed with the replica's admin key (the session presents it).
        async with self.http.post(f"{self.base}/api/orders", json=self.order(account)) as placed:
            assert placed.status == 202, await placed.text()
            order_id: str = (await placed.json())["order_id"]
        return order_id

    async def call(
        self, method: str, path: str, body: Body, headers: dict[str, str]
    ) -> tuple[int, str]:
        async with self.http.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            payload = await response.json() if response.status >= 400 else {}
            return response.status, payload.get("code", "")

    async def ws(self, path: str, headers: dict[str, str]) -> int:
        try:
            socket = await self.http.ws_connect(self.base + path, headers=headers)
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status
        await socket.close()
        return 101


async def _documented(http: aiohttp.ClientSession, base: str) -> set[tuple[str, str]]:
    async with http.get(f"{base}/api/openapi.json") as response:
        document = await response.json()
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if guarded(path)
    }


async def test_every_route_when_called_by_every_role_for_own_and_other_accounts_then_matrix(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    # Arrange
    own = await open_account(http, replica.base, FUNDS, prefix="own")
    other = await open_account(http, replica.base, FUNDS, prefix="other")
    target = Real(http, replica.base, own, other)
    price = await last_price(http, replica.base, "BTC-USD")
    target.price = str((price * Decimal("0.97")).quantize(Decimal("0.01")))
    routes = await _documented(http, replica.base)
    assert not routes - set(CASES), f"routes without a row: {sorted(routes - set(CASES))}"
    keys = {
        role: await asyncio.to_thread(create_key, replica.settings, role, frozenset({own}))
        for role in Role
    }

    # Act
    results = {role: await check(target, routes, role, bearer(keys[role].key)) for role in Role}

    # Assert
    wrong = [line for found, _ in results.values() for line in found]
    assert not wrong, "\n".join(wrong)
    checked = sum(count for _, count in results.values())
    assert checked == len(Role) * 2 * len(routes)
    print(f"access matrix: {len(routes)} routes x {len(Role)} roles x 2 accounts = {checked}")
