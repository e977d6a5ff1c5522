"""The access matrix as a table of calls: every /api and /ws route, for any role, own or other account.

Shared by the unit test (an in-memory app, ``tests/unit/api/test_access_matrix.py``) and the e2e
test (a real ``oms serve``, ``tests/e2e/test_access_matrix.py``): each hands in a ``Target``.
A route without a row in ``CASES`` fails both (they read the routes from the app's router or its
OpenAPI document). The expected answer comes from ``ROLE_ACTIONS`` (itself checked against the
README's matrix): no action -> 403 ROLE_FORBIDS_ACTION; reach OWN on another account -> 403
ACCOUNT_NOT_PERMITTED, or 404 for a route that names an order (ids do not leak); else the
route's own answer.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from oms.api.identity import ROUTE_ACTIONS
from oms.domain.access import Reach, Role, reach

Body = dict[str, Any] | None


class Target(Protocol):
    """Where the calls go: an in-memory app or a real replica."""

    own: str  # the account the caller holds
    other: str  # one it does not

    async def call(
        self, method: str, path: str, body: Body, headers: dict[str, str]
    ) -> tuple[int, str]:
        """Status and problem ``code`` ("" for a success)."""

    async def ws(self, path: str, headers: dict[str, str]) -> int:
        """101 when the socket opened, else the handshake's status."""

    async def resting(self, account: str) -> str:
        """A fresh resting order of ``account`` (placed with an admin key); its id."""

    def order(self, account: str) -> dict[str, Any]:
        """A valid LIMIT order body for ``account`` that rests (does not cross)."""


_counter = itertools.count()


def _unique() -> str:
    return f"m-{uuid.uuid4().hex[:6]}-{next(_counter)}"


Call = Callable[[Target, str], Awaitable[tuple[str, str, Body]]]


@dataclass(frozen=True)
class Case:
    """How to call a route for an account, and what it answers when the caller may."""

    call: Call
    allowed: int
    names_an_order: bool = False  # another account's order answers 404, not 403
    websocket: bool = False


def _fixed(method: str, path: str, body: Callable[[Target, str], Body] | None = None) -> Call:
    async def call(target: Target, account: str) -> tuple[str, str, Body]:
        return method, path.format(account=account), None if body is None else body(target, account)

    return call


def _case(method: str, path: str, allowed: int, body: dict[str, Any] | None = None) -> Case:
    filled = None if body is None else (lambda _t, a: _fill(body, a))
    return Case(_fixed(method, path, filled), allowed)


def _fill(body: dict[str, Any], account: str) -> dict[str, Any]:
    return {k: (v.format(account=account) if isinstance(v, str) else v) for k, v in body.items()}


def _order_case(method: str, suffix: str, allowed: int, body: Body = None) -> Case:
    async def call(target: Target, account: str) -> tuple[str, str, Body]:
        order_id = await target.resting(account)
        return method, f"/api/orders/{order_id}{suffix}", body

    return Case(call, allowed, names_an_order=True)


def _new_order(target: Target, account: str) -> Body:
    return {**target.order(account), "client_order_id": _unique()}


def _new_account(_target: Target, account: str) -> Body:
    return {"account_id": f"{account}-{_unique()}", "balances": {"USD": "10"}}


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/me"): _case("GET", "/api/me", 200),
    ("GET", "/api/instruments"): _case("GET", "/api/instruments", 200),
    ("GET", "/api/market-data/prices/{symbol}"): _case(
        "GET", "/api/market-data/prices/BTC-USD", 200
    ),
    ("GET", "/api/market-data/orderbook/{symbol}"): _case(
        "GET", "/api/market-data/orderbook/BTC-USD", 200
    ),
    ("GET", "/ws/market-data"): Case(_fixed("GET", "/ws/market-data"), 101, websocket=True),
    ("POST", "/api/ws-ticket"): _case("POST", "/api/ws-ticket", 200),
    ("POST", "/api/accounts"): Case(_fixed("POST", "/api/accounts", _new_account), 201),
    ("GET", "/api/accounts/{account_id}"): _case("GET", "/api/accounts/{account}", 200),
    ("GET", "/api/risk/positions"): _case("GET", "/api/risk/positions?account_id={account}", 200),
    ("GET", "/api/risk/limits"): _case("GET", "/api/risk/limits?account_id={account}", 200),
    ("GET", "/api/orders"): _case("GET", "/api/orders?account_id={account}", 200),
    ("GET", "/api/orders/{order_id}"): _order_case("GET", "", 200),
    ("GET", "/api/orders/{order_id}/events"): _order_case("GET", "/events", 200),
    ("GET", "/ws/orders"): Case(
        _fixed("GET", "/ws/orders?account_id={account}"), 101, websocket=True
    ),
    ("POST", "/api/risk/validate"): Case(
        _fixed("POST", "/api/risk/validate", lambda t, a: t.order(a)), 200
    ),
    ("POST", "/api/orders"): Case(_fixed("POST", "/api/orders", _new_order), 202),
    ("PATCH", "/api/orders/{order_id}"): _order_case("PATCH", "", 202, {"quantity": "0.5"}),
    ("DELETE", "/api/orders/{order_id}"): _order_case("DELETE", "", 202),
    ("DELETE", "/api/orders"): _case("DELETE", "/api/orders?account_id={account}", 202),
    ("PUT", "/api/risk/limits/{account_id}"): _case("PUT", "/api/risk/limits/{account}", 200, {}),
    ("GET", "/api/risk/global-limits"): _case("GET", "/api/risk/global-limits", 200),
    ("PUT", "/api/risk/global-limits"): _case("PUT", "/api/risk/global-limits", 200, {}),
    ("POST", "/api/risk/kill-switch"): _case(
        "POST", "/api/risk/kill-switch", 200, {"state": "ACTIVE", "account_id": "{account}"}
    ),
    ("GET", "/api/audit"): _case("GET", "/api/audit", 200),
    ("GET", "/api/cluster"): _case("GET", "/api/cluster", 200),
    ("GET", "/api/venue/reconciliation"): _case("GET", "/api/venue/reconciliation", 200),
}


def expected(role: Role, route: tuple[str, str], account_is_own: bool) -> tuple[int, str]:
    """What the route answers ``role`` for its own account or another's: (status, code)."""
    case = CASES[route]
    allowed = reach(role, ROUTE_ACTIONS[route])
    if allowed is None:
        return 403, "ROLE_FORBIDS_ACTION"
    if allowed is Reach.OWN and not account_is_own:
        return (404, "NOT_FOUND") if case.names_an_order else (403, "ACCOUNT_NOT_PERMITTED")
    return case.allowed, ""


async def answer(
    target: Target, route: tuple[str, str], account: str, headers: dict[str, str]
) -> tuple[int, str]:
    """Call ``route`` for ``account`` with ``headers``: (status, problem code)."""
    case = CASES[route]
    method, path, body = await case.call(target, account)
    if case.websocket:
        return await target.ws(path, headers), ""  # a refused handshake shows no body
    return await target.call(method, path, body, headers)


async def check(
    target: Target, routes: set[tuple[str, str]], role: Role, headers: dict[str, str]
) -> tuple[list[str], int]:
    """Every route for the caller's own account and another's; what differs from the matrix,
    and how many calls were checked."""
    wrong = []
    checked = 0
    for route in sorted(routes):
        for account in (target.own, target.other):
            want = expected(role, route, account == target.own)
            status, code = await answer(target, route, account, headers)
            checked += 1
            code_wrong = bool(want[1]) and not CASES[route].websocket and code != want[1]
            if status != want[0] or code_wrong:
                wrong.append(f"{route} {role.value} {account}: {status} {code}, wanted {want}")
    return wrong, checked
