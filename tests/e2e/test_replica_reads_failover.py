"""A read of an account whose owner was killed: 503 OWNER_UNAVAILABLE until another replica has
taken the account over, then the truth; never a stale answer (a 404, the opening balances)."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import pytest

from oms.stream.partitioner import partition_of
from tests.credentials import authenticated_session
from tests.e2e.conftest import (
    last_price,
    open_account,
    require_servers,
    run_overrides,
    two_replicas,
)

pytestmark = pytest.mark.e2e

FUNDS = {"USD": "1000000", "BTC": "10"}
DEADLINE_S = 60.0


async def _cluster_split(http: aiohttp.ClientSession, bases: list[str]) -> dict[int, str]:
    """Per partition of ``orders``, the address of the replica owning it, once both own one."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        views = [await (await http.get(f"{base}/api/cluster")).json() for base in bases]
        owners = {p: v["address"] for v in views for p in v["partitions"]}
        if len(owners) == len(bases) and set(owners.values()) == set(bases):
            return owners
        assert time.monotonic() < deadline, f"never split: {views}"
        await asyncio.sleep(0.3)


def test_account_read_when_its_owner_is_killed_then_503_until_taken_over_never_stale(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    require_servers()
    overrides = run_overrides(uuid.uuid4().hex[:8])
    with two_replicas(overrides, tmp_path_factory.mktemp("failover")) as (first, second):

        async def scenario() -> tuple[dict[str, object], list[tuple[int, str]], dict[str, object]]:
            async with authenticated_session(timeout=aiohttp.ClientTimeout(total=10)) as http:
                # Arrange: an account the second owns, traded through the first
                owners = await _cluster_split(http, [first.base, second.base])
                await last_price(http, first.base, "BTC-USD")
                account = await open_account(http, first.base, FUNDS, prefix="kill")
                while owners[partition_of(account, 2)] != second.base:
                    account = await open_account(http, first.base, FUNDS, prefix="kill")
                order = {"account_id": account, "symbol": "BTC-USD", "side": "BUY",
                         "type": "MARKET", "quantity": "0.01"}  # fmt: skip
                async with http.post(f"{first.base}/api/orders", json=order) as placed:
                    order_id = (await placed.json())["order_id"]
                deadline = time.monotonic() + DEADLINE_S
                while True:
                    async with http.get(f"{first.base}/api/orders/{order_id}") as response:
                        if (await response.json())["status"] == "SETTLED":
                            break
                    assert time.monotonic() < deadline, "the order never settled"
                    await asyncio.sleep(0.1)
                url = f"{first.base}/api/accounts/{account}"
                truth = await (await http.get(url)).json()

                # Act: the owner dies without a word; the account is read on the survivor
                second.process.kill()
                second.process.wait(10)
                answers: list[tuple[int, str]] = []
                deadline = time.monotonic() + DEADLINE_S
                while True:
                    async with http.get(url) as response:
                        body = await response.json(content_type=None)
                        if response.status == 200:
                            answers.append((200, ""))
                            return truth, answers, body
                        answers.append((response.status, body.get("code", "")))
                        assert response.headers.get("Retry-After") == "2"
                    assert time.monotonic() < deadline, f"never taken over: {answers[-3:]}"
                    await asyncio.sleep(0.2)

        truth, answers, after = asyncio.run(scenario())

    # Assert: 503 OWNER_UNAVAILABLE while nobody owned it, then the same balances as before
    assert set(answers[:-1]) <= {(503, "OWNER_UNAVAILABLE")}, answers
    assert answers[0] == (503, "OWNER_UNAVAILABLE"), answers
    assert after["balances"] == truth["balances"]
