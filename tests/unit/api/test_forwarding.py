"""Reads answered by the account's owner: the forwarding decision, and two in-memory replicas
(each its own engine and app on 127.0.0.1, one owner map between them) forwarding for real."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import WSMsgType, WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer

from oms.api.app import build_app
from oms.api.forwarding import Forwarder, OwnerUnavailable
from oms.api.identity import FORWARD_HEADER, Caller
from oms.api.internal_hop import HopSigner
from oms.api.rate_limits import RateLimiter
from oms.config import Settings
from oms.domain.access import Role
from oms.engine import Engine
from oms.engine.core import EngineCore
from oms.engine.owners import Owner, ReplicaEntry
from oms.store.memory import MemoryAccountRepository, MemoryIdempotencyStore, MemoryOrderCache
from oms.store.memory_audit import MemoryAuditLog
from oms.store.memory_owners import MemoryOwnerMap
from oms.store.memory_rate_limits import MemoryRateLimits
from oms.stream.engine_bus import EngineCommandBus, KeptRiskEvents
from oms.stream.partitioner import partition_of
from tests.credentials import MemoryKeys
from tests.ports import free_port
from tests.unit.engine_helpers import make_engine, tick

TOKEN = "internal-test-token"
# Of six partitions: a1 and b1 on 5, a2 on 3, b2 on 0 (the default partitioner's).
ON_FIRST = frozenset({5, 4})
ON_SECOND = frozenset({3, 0, 1, 2})


def _settings(port: int, **changes: Any) -> Settings:
    return Settings(
        simulated_feed=False,
        internal_token=TOKEN,
        http_port=port,
        replica=f"r{port}",
        **changes,
    )


def _forwarder(
    owned: frozenset[int] | None, owners: MemoryOwnerMap, token: str = TOKEN
) -> Forwarder:
    settings = Settings(simulated_feed=False, internal_token=token, http_port=9001)
    return Forwarder(settings, owners, lambda: owned, HopSigner(token))


# -- the decision --------------------------------------------------------------------------


async def test_where_when_this_replica_owns_the_partition_then_answers_here() -> None:
    # Arrange
    forwarder = _forwarder(frozenset({partition_of("a1", 6)}), MemoryOwnerMap(ttl_s=5))

    # Act
    owner = await forwarder.where("a1", forwarded=False)

    # Assert
    assert owner is None


async def test_where_when_another_replica_owns_it_then_names_that_owner() -> None:
    # Arrange
    owners = MemoryOwnerMap(ttl_s=5)
    other = ReplicaEntry("b", "http://b:8080", frozenset({partition_of("a1", 6)}), 0.0)
    await owners.publish(other, released=())
    forwarder = _forwarder(frozenset(), owners)

    # Act
    owner = await forwarder.where("a1", forwarded=False)

    # Assert
    assert owner == Owner("b", "http://b:8080")


@pytest.mark.parametrize(
    ("case", "owned", "mapped_to", "forwarded", "token"),
    [
        ("no owner in the map", frozenset(), None, False, TOKEN),
        ("forwarded here, not owned here", frozenset(), "http://b:8080", True, TOKEN),
        ("the map names this replica, mid-rebalance", None, "http://127.0.0.1:9001", False, TOKEN),
        ("no internal token", frozenset(), "http://b:8080", False, ""),
    ],
)
async def test_where_when_no_replica_can_answer_the_truth_then_owner_unavailable(
    case: str,
    owned: frozenset[int] | None,
    mapped_to: str | None,
    forwarded: bool,
    token: str,
) -> None:
    # Arrange
    owners = MemoryOwnerMap(ttl_s=5)
    if mapped_to is not None:
        entry = ReplicaEntry("x", mapped_to, frozenset({partition_of("a1", 6)}), 0.0)
        await owners.publish(entry, released=())
    forwarder = _forwarder(owned, owners, token)

    # Act
    with pytest.raises(OwnerUnavailable) as refused:
        await forwarder.where("a1", forwarded=forwarded)

    # Assert
    assert (refused.value.status, refused.value.code) == (503, "OWNER_UNAVAILABLE"), case


# -- two replicas --------------------------------------------------------------------------


@dataclass
class Replica:
    client: TestClient[Any, Any]
    engine: EngineCore
    keys: MemoryKeys


@dataclass
class Pair:
    first: Replica
    second: Replica
    owners: MemoryOwnerMap


async def _replica(
    owners: MemoryOwnerMap,
    cache: MemoryOrderCache,
    owned: frozenset[int],
    port: int,
    share: list[frozenset[int]] | None = None,
    **changes: Any,
) -> AsyncIterator[Replica]:
    engine = make_engine()
    engine.on_tick(tick())
    engine.wait_idle()
    settings = _settings(port, **changes)
    facade = Engine(engine)
    keys = MemoryKeys(settings)
    app = build_app(
        settings,
        facade,
        EngineCommandBus(facade),
        MemoryIdempotencyStore(),
        cache,
        partitions_assigned=lambda: True,
        accounts=MemoryAccountRepository(),
        risk_events=KeptRiskEvents(),
        authenticator=keys.authenticator,
        rate_limiter=RateLimiter(settings, MemoryRateLimits(), MemoryRateLimits()),
        audit_log=MemoryAuditLog(),
        owners=owners,
        owned=(lambda: owned) if share is None else (lambda: share[0]),
    )
    await owners.publish(ReplicaEntry(settings.replica, settings.advertised_url(), owned, 0.0), ())
    async with TestClient(TestServer(app, host="127.0.0.1", port=port)) as client:
        yield Replica(client, engine, keys)
    engine.stop()


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    """Two replicas sharing the owner map and the order cache (Redis in ``oms serve``); the
    second owns b2, an account the first has never heard of, and counts one request per key
    (a second one is 429)."""
    owners = MemoryOwnerMap(ttl_s=60)
    cache = MemoryOrderCache()
    first_gen = _replica(owners, cache, ON_FIRST, free_port())
    second_gen = _replica(
        owners, cache, ON_SECOND, free_port(), rate_limit_key_per_s=0.001, rate_limit_key_burst=1
    )
    first = await anext(first_gen)
    second = await anext(second_gen)
    second.engine.open_account("b2", {"USD": Decimal("777")}).get(timeout=5)
    try:
        yield Pair(first, second, owners)
    finally:
        for gen in (second_gen, first_gen):
            with pytest.raises(StopAsyncIteration):
                await anext(gen)


async def test_account_read_when_another_replica_owns_it_then_answers_the_owners_state(
    pair: Pair,
) -> None:
    # Arrange: the first replica's key; the first has never heard of b2
    headers = pair.first.keys.headers(Role.ADMIN)

    # Act
    response = await pair.first.client.get("/api/accounts/b2", headers=headers)

    # Assert
    assert response.status == 200, await response.text()
    assert (await response.json())["balances"]["USD"]["total"] == "777"


async def test_order_read_when_the_owner_settled_it_then_the_cached_new_is_not_served(
    pair: Pair,
) -> None:
    # Arrange: placed on the owner (the NEW cached at its 202), then settled there
    order = {"account_id": "b2", "symbol": "BTC-USD", "side": "BUY", "type": "MARKET",
             "quantity": "0.01"}  # fmt: skip
    placed = await pair.second.client.post(
        "/api/orders", json=order, headers=pair.second.keys.headers(Role.ADMIN)
    )
    order_id = (await placed.json())["order_id"]
    pair.second.engine.wait_idle()

    # Act: read on the replica that holds only the cached NEW
    response = await pair.first.client.get(
        f"/api/orders/{order_id}", headers=pair.first.keys.headers(Role.ADMIN)
    )

    # Assert
    assert placed.status == 202
    assert response.status == 200, await response.text()
    assert (await response.json())["status"] == "SETTLED"


async def test_forwarded_read_when_the_owner_limits_its_callers_then_it_is_not_counted_twice(
    pair: Pair,
) -> None:
    # Arrange: the owner counts one request per key
    headers = pair.first.keys.headers(Role.ADMIN)

    # Act: five reads of the owner's account through the first replica; two straight to it
    through = [(await pair.first.client.get("/api/accounts/b2", headers=headers)).status
               for _ in range(5)]  # fmt: skip
    own_key = pair.second.keys.headers(Role.ADMIN)
    direct = [(await pair.second.client.get("/api/accounts/b2", headers=own_key)).status
              for _ in range(2)]  # fmt: skip

    # Assert: counted where they arrived only
    assert through == [200] * 5
    assert direct == [200, 429]


async def test_account_read_when_the_owner_does_not_answer_then_503_owner_unavailable(
    pair: Pair,
) -> None:
    # Arrange: the map names, for b2's partition, a replica where nothing listens
    dead = ReplicaEntry("dead", f"http://127.0.0.1:{free_port()}", ON_SECOND, 0.0)
    await pair.owners.publish(dead, released=())

    # Act
    response = await pair.first.client.get(
        "/api/accounts/b2", headers=pair.first.keys.headers(Role.ADMIN)
    )

    # Assert
    assert response.status == 503
    assert (await response.json())["code"] == "OWNER_UNAVAILABLE"
    assert response.headers["Retry-After"] == "2"


async def test_request_when_it_claims_a_hop_without_the_token_then_401_untrusted_hop(
    pair: Pair,
) -> None:
    # Arrange: a valid user key beside a caller signed with another token
    forged = HopSigner("guess").sign(
        Caller(Role.ADMIN, frozenset()), "GET", "/api/accounts/b2", b""
    )
    headers = {**pair.second.keys.headers(Role.VIEWER, ("x",)), FORWARD_HEADER: forged}

    # Act
    response = await pair.second.client.get("/api/accounts/b2", headers=headers)

    # Assert
    assert response.status == 401
    assert (await response.json())["code"] == "UNTRUSTED_HOP"


async def test_cluster_when_two_replicas_share_the_map_then_lists_both_and_this_ones_share(
    pair: Pair,
) -> None:
    # Act
    response = await pair.first.client.get(
        "/api/cluster", headers=pair.first.keys.headers(Role.ADMIN)
    )

    # Assert
    body = await response.json()
    assert response.status == 200
    assert body["partitions"] == sorted(ON_FIRST)
    assert sorted(sorted(e["partitions"]) for e in body["replicas"]) == [
        sorted(ON_SECOND),
        sorted(ON_FIRST),
    ]
    assert body["unowned"] == []


async def test_cluster_when_the_caller_is_not_admin_then_403() -> None:
    # Arrange
    owners = MemoryOwnerMap(ttl_s=60)
    generator = _replica(owners, MemoryOrderCache(), ON_FIRST, free_port())
    replica = await anext(generator)
    try:
        # Act
        response = await replica.client.get("/api/cluster", headers=replica.keys.headers(Role.RISK))

        # Assert
        assert response.status == 403
        assert (await response.json())["code"] == "ROLE_FORBIDS_ACTION"
    finally:
        with pytest.raises(StopAsyncIteration):
            await anext(generator)


async def test_metrics_when_reads_were_forwarded_or_found_no_owner_then_counts_both(
    pair: Pair,
) -> None:
    # Arrange: one read the owner answers, one whose owner is gone
    headers = pair.first.keys.headers(Role.ADMIN)
    await pair.first.client.get("/api/accounts/b2", headers=headers)
    dead = ReplicaEntry("dead", f"http://127.0.0.1:{free_port()}", ON_SECOND, 0.0)
    await pair.owners.publish(dead, released=())
    await pair.first.client.get("/api/accounts/b2", headers=headers)

    # Act
    text = await (await pair.first.client.get("/metrics")).text()

    # Assert
    assert "oms_reads_forwarded_total 1.0" in text
    assert "oms_reads_owner_unavailable_total 1.0" in text


async def test_order_list_when_its_query_is_oddly_encoded_then_the_owner_still_trusts_the_hop(
    pair: Pair,
) -> None:
    # Arrange: a query the client encodes (the signature covers the path and query as sent)
    headers = pair.first.keys.headers(Role.ADMIN)

    # Act
    answers = []
    for query in ("symbol=BTC%2DUSD", "symbol=%C2%B2", "symbol=a%20b"):
        response = await pair.first.client.get(
            f"/api/orders?account_id=b2&{query}", headers=headers
        )
        answers.append((response.status, await response.json()))

    # Assert: the owner's answers (b2 has no orders there), never a 401 UNTRUSTED_HOP
    assert answers == [(200, {"items": [], "next_cursor": None})] * 3


async def test_order_feed_when_the_owner_cannot_be_reached_then_the_handshake_is_503(
    pair: Pair,
) -> None:
    # Arrange
    dead = ReplicaEntry("dead", f"http://127.0.0.1:{free_port()}", ON_SECOND, 0.0)
    await pair.owners.publish(dead, released=())

    # Act
    with pytest.raises(WSServerHandshakeError) as refused:
        await pair.first.client.ws_connect(
            "/ws/orders?account_id=b2", headers=pair.first.keys.headers(Role.ADMIN)
        )

    # Assert
    assert refused.value.status == 503


async def test_order_feed_when_the_accounts_partition_moves_away_then_the_socket_closes() -> None:
    # Arrange: a socket for a1, owned here, until a rebalance gives a1's partition away
    share = [ON_FIRST]
    generator = _replica(MemoryOwnerMap(ttl_s=60), MemoryOrderCache(), ON_FIRST, free_port(), share)
    replica = await anext(generator)
    try:
        ws = await replica.client.ws_connect(
            "/ws/orders?account_id=a1", headers=replica.keys.headers(Role.ADMIN)
        )
        hello = await ws.receive_json(timeout=5)

        # Act
        share[0] = frozenset({4})
        closing = await ws.receive(timeout=5)

        # Assert: closed, so the client reconnects to the new owner
        assert hello["type"] == "subscribed"
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    finally:
        with pytest.raises(StopAsyncIteration):
            await anext(generator)
