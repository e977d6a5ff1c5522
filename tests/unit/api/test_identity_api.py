"""Who is calling: 401s, open paths, WebSocket tickets, and the key cache's revocation bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from yarl import URL

from oms.api.credentials import Authenticator
from oms.api.identity import Caller
from oms.api.problems import DependencyUnavailable
from oms.config import Settings
from oms.domain.access import ApiKey, Role, split_key
from oms.store.api_keys import mint_key
from oms.store.memory import MemoryKeyDirectory, MemoryTicketStore
from tests.unit.api.conftest import Api


@pytest.fixture
async def plain() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that sends no credential of its own."""
    async with aiohttp.ClientSession() as session:
        yield session


async def _problem(response: aiohttp.ClientResponse) -> tuple[int, str]:
    assert response.content_type == "application/problem+json"
    return response.status, (await response.json())["code"]


async def test_request_when_no_credential_then_401_missing_with_a_bearer_challenge(
    api: Api, plain: aiohttp.ClientSession
) -> None:
    # Act
    bare = await plain.get(api.client.make_url("/api/accounts/a1"))
    socket = await plain.get(api.client.make_url("/ws/orders?account_id=a1"))

    # Assert
    assert await _problem(bare) == (401, "MISSING_CREDENTIAL")
    assert bare.headers["WWW-Authenticate"].startswith("Bearer")
    assert await _problem(socket) == (401, "MISSING_CREDENTIAL")


@pytest.mark.parametrize(
    "header",
    [
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer",
        "Bearer oms_0123456789abcdef_" + "x" * 43,  # well formed, unknown
        "Bearer not-a-key-or-jwt",
        "Bearer a.b.c",  # shaped like a JWT; no JWT provider configured
    ],
)
async def test_request_when_credential_is_bad_then_401_invalid(api: Api, header: str) -> None:
    # Act
    response = await api.client.get("/api/instruments", headers={"Authorization": header})

    # Assert
    assert await _problem(response) == (401, "INVALID_CREDENTIAL")
    assert "WWW-Authenticate" in response.headers


async def test_request_when_secret_is_wrong_for_a_known_key_id_then_401(api: Api) -> None:
    # Arrange
    token = api.keys.token(Role.ADMIN)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    # Act
    response = await api.client.get(
        "/api/instruments", headers={"Authorization": f"Bearer {forged}"}
    )

    # Assert
    assert await _problem(response) == (401, "INVALID_CREDENTIAL")


@pytest.mark.parametrize("path", ["/health", "/ready", "/api/openapi.json", "/metrics"])
async def test_open_path_when_called_without_credential_then_answers(
    api: Api, plain: aiohttp.ClientSession, path: str
) -> None:
    # Act
    response = await plain.get(api.client.make_url(path))

    # Assert
    assert response.status == 200


async def test_ws_ticket_when_used_then_opens_one_socket_once(
    api: Api, plain: aiohttp.ClientSession
) -> None:
    # Arrange
    headers = api.keys.headers(Role.VIEWER, ("a1",))
    issued = await api.client.post("/api/ws-ticket", headers=headers)
    ticket = (await issued.json())["ticket"]

    # Act
    ws = await plain.ws_connect(api.client.make_url(f"/ws/orders?ticket={ticket}"))
    first = await ws.receive_json(timeout=5)
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as again:
        await plain.ws_connect(api.client.make_url(f"/ws/orders?ticket={ticket}"))

    # Assert
    assert issued.status == 200
    assert (await issued.json())["expires_in_s"] == 30
    assert first == {"type": "subscribed", "account_id": "a1"}  # its one account
    assert again.value.status == 401


async def test_ws_ticket_when_naming_another_account_then_403(
    api: Api, plain: aiohttp.ClientSession
) -> None:
    # Arrange
    headers = api.keys.headers(Role.TRADER, ("a1",))
    ticket = (await (await api.client.post("/api/ws-ticket", headers=headers)).json())["ticket"]

    # Act
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await plain.ws_connect(api.client.make_url(f"/ws/orders?account_id=a2&ticket={ticket}"))

    # Assert
    assert refused.value.status == 403


async def test_ws_ticket_when_expired_then_refused() -> None:
    # Arrange
    now = [100.0]
    tickets = MemoryTicketStore(clock=lambda: now[0])
    authenticator = Authenticator(Settings(), MemoryKeyDirectory(), tickets, None)
    ticket = await authenticator.issue_ticket(Caller(Role.VIEWER, frozenset({"a1"}), key_id="k"))

    # Act
    now[0] += 31
    who = await authenticator.ticket(ticket, "127.0.0.1")

    # Assert
    assert who is None


def _keys_with(clock: list[float], ttl_s: float) -> tuple[Authenticator, MemoryKeyDirectory, str]:
    directory = MemoryKeyDirectory()
    issued = mint_key(Role.TRADER, frozenset({"a1"}), "t", 0.0)
    directory.add(issued.record)
    settings = Settings(api_key_cache_ttl_s=ttl_s)
    authenticator = Authenticator(
        settings, directory, MemoryTicketStore(), None, clock=lambda: clock[0]
    )
    return authenticator, directory, issued.key


async def test_revoked_key_when_cache_ttl_passes_then_refused() -> None:
    # Arrange
    clock = [0.0]
    authenticator, directory, token = _keys_with(clock, ttl_s=5.0)
    before = await authenticator.bearer(token, "10.0.0.1")
    key_id = before.key_id if before is not None else ""
    directory.revoke(key_id, at=1.0)

    # Act
    clock[0] = 4.9
    within = await authenticator.bearer(token, "10.0.0.1")
    clock[0] = 5.1
    after = await authenticator.bearer(token, "10.0.0.1")

    # Assert
    assert before is not None
    assert (before.role, before.accounts, before.client) == (
        Role.TRADER,
        frozenset({"a1"}),
        "10.0.0.1",
    )
    assert within is not None  # still cached: the bound is the TTL
    assert after is None


class _Hung(MemoryKeyDirectory):
    async def find_key(self, key_id: str) -> ApiKey | None:
        await asyncio.sleep(60)
        return None


async def test_key_lookup_when_mongodb_hangs_then_503_within_the_dependency_bound() -> None:
    # Arrange
    settings = Settings(dependency_timeout_s=0.2)
    authenticator = Authenticator(settings, _Hung(), MemoryTicketStore(), None)
    token = mint_key(Role.ADMIN, frozenset(), "", 0.0).key

    # Act
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as refused:
        await authenticator.bearer(token, None)

    # Assert
    assert refused.value.dependency == "mongodb"
    assert time.monotonic() - started < 1.0


async def test_me_when_asked_then_names_the_callers_role_and_accounts_never_the_secret(
    api: Api,
) -> None:
    # Arrange
    token = api.keys.token(Role.TRADER, ("a1", "a2"))

    # Act
    response = await api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    body = await response.json()

    # Assert
    assert response.status == 200
    assert body["role"] == "trader"
    assert body["accounts"] == ["a1", "a2"]
    assert body["subject"] is None
    assert token.startswith(f"oms_{body['key_id']}_")
    parts = split_key(token)
    assert parts is not None
    assert parts[1] not in await response.text()


@pytest.mark.parametrize(
    "path", ["/%61pi/orders?account_id=a1", "/api/./orders?account_id=a1", "/api/orders/"]
)
async def test_request_when_path_is_spelt_oddly_then_still_needs_a_credential(
    api: Api, plain: aiohttp.ClientSession, path: str
) -> None:
    # Arrange
    url = URL(str(api.client.make_url("/")).rstrip("/") + path, encoded=True)

    # Act
    response = await plain.get(url)

    # Assert
    assert response.status in {401, 404}, await response.text()
    assert response.status != 200
