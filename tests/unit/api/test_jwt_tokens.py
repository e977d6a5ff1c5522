"""JWT bearer tokens: a key pair of the test's, and a JWKS document it serves on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from oms.api.credentials import Authenticator
from oms.api.jwt_tokens import JwtVerifier
from oms.config import Settings, SettingsError
from oms.domain.access import Role
from oms.store.memory import MemoryKeyDirectory, MemoryTicketStore

ISSUER = "https://idp.test/"
AUDIENCE = "oms"
PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    PRIVATE.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice@desk",
        "exp": now + 300,
        "iat": now,
        "role": "trader",
        "accounts": ["a1", "a3"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(claims: dict[str, Any], key: Any = PRIVATE, kid: str = "k1", alg: str = "RS256") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hs256_with_public_key(claims: dict[str, Any]) -> str:
    """The classic confusion attack: HS256 signed with the public key as the shared secret."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(PUBLIC_PEM.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _unsigned(claims: dict[str, Any]) -> str:
    head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{_b64(json.dumps(claims).encode())}."


def _settings(**changes: Any) -> Settings:
    return Settings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **changes)


@pytest.fixture
async def jwks() -> AsyncIterator[tuple[str, list[int]]]:
    """A JWKS document (key k1) served on 127.0.0.1; the list counts its fetches."""
    fetches = [0]
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(PRIVATE.public_key()))
    document = {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}

    async def serve(_request: web.Request) -> web.Response:
        fetches[0] += 1
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/.well-known/jwks.json")), fetches
    finally:
        await server.close()


async def test_verify_when_token_is_good_then_caller_from_its_claims() -> None:
    # Arrange
    verifier = JwtVerifier(_settings(jwt_public_key=PUBLIC_PEM))

    # Act
    who = await verifier.verify(_token(_claims()), "10.1.2.3")

    # Assert
    assert who is not None
    assert (who.role, who.accounts, who.subject, who.key_id, who.client) == (
        Role.TRADER, frozenset({"a1", "a3"}), "alice@desk", None, "10.1.2.3",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("wrong issuer", _token(_claims(iss="https://evil.test/"))),
        ("wrong audience", _token(_claims(aud="someone-else"))),
        ("expired", _token(_claims(exp=int(time.time()) - 3600))),
        ("no exp", _token(_claims(exp=None))),
        ("no sub", _token(_claims(sub=None))),
        ("alg none", _unsigned(_claims())),
        ("HS256 with the public key", _hs256_with_public_key(_claims())),
        ("signed by another key", _token(_claims(), key=OTHER)),
        ("unknown role", _token(_claims(role="superuser"))),
        ("accounts not strings", _token(_claims(accounts=[1, 2]))),
    ],
)
async def test_verify_when_token_is_wrong_then_refused(name: str, token: str) -> None:
    # Arrange
    verifier = JwtVerifier(_settings(jwt_public_key=PUBLIC_PEM))

    # Act
    who = await verifier.verify(token, None)

    # Assert
    assert who is None, name


async def test_verify_when_keys_come_from_a_jwks_url_then_good_passes_and_unknown_kid_fails(
    jwks: tuple[str, list[int]],
) -> None:
    # Arrange
    url, fetches = jwks
    verifier = JwtVerifier(_settings(jwt_jwks_url=url))

    # Act
    good = await verifier.verify(_token(_claims()), None)
    again = await verifier.verify(_token(_claims(sub="bob")), None)
    unknown = await verifier.verify(_token(_claims(), key=OTHER, kid="k9"), None)
    wrong_key = await verifier.verify(_token(_claims(), key=OTHER, kid="k1"), None)
    none = await verifier.verify(_unsigned(_claims()), None)
    await verifier.close()

    # Assert
    assert good is not None
    assert again is not None
    assert again.subject == "bob"
    assert (unknown, wrong_key, none) == (None, None, None)
    assert fetches[0] == 1  # cached; the unknown kid waits for the refetch interval


async def test_bearer_when_a_jwt_then_the_authenticator_accepts_it(
    jwks: tuple[str, list[int]],
) -> None:
    # Arrange
    url, _ = jwks
    settings = _settings(jwt_jwks_url=url)
    verifier = JwtVerifier(settings)
    authenticator = Authenticator(settings, MemoryKeyDirectory(), MemoryTicketStore(), verifier)

    # Act
    who = await authenticator.bearer(_token(_claims(role="risk", accounts="a1 a2")), None)
    await verifier.close()

    # Assert
    assert who is not None
    assert (who.role, who.accounts) == (Role.RISK, frozenset({"a1", "a2"}))


async def test_verify_when_es256_key_then_works_too() -> None:
    # Arrange
    private = ec.generate_private_key(ec.SECP256R1())
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = JwtVerifier(_settings(jwt_public_key=pem))

    # Act
    who = await verifier.verify(_token(_claims(), key=private, alg="ES256"), None)

    # Assert
    assert who is not None


@pytest.mark.parametrize("algorithms", ["HS256", "none", "RS256,HS256", ""])
def test_settings_when_a_symmetric_or_no_algorithm_then_refused_at_start(algorithms: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"OMS_JWT_ALGORITHMS": algorithms})
    assert "OMS_JWT_ALGORITHMS" in str(refused.value)


def test_settings_when_a_jwt_key_lacks_issuer_or_audience_then_refused_at_start() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"OMS_JWT_PUBLIC_KEY": PUBLIC_PEM, "OMS_JWT_ISSUER": ISSUER})
    assert "OMS_JWT_AUDIENCE" in str(refused.value)


async def test_verify_when_many_arrive_before_the_first_fetch_then_one_fetch_serves_them(
    jwks: tuple[str, list[int]],
) -> None:
    # Arrange
    url, fetches = jwks
    verifier = JwtVerifier(_settings(jwt_jwks_url=url))
    tokens = [_token(_claims(sub=f"user-{n}")) for n in range(10)]

    # Act
    callers = await asyncio.gather(*(verifier.verify(token, None) for token in tokens))
    await verifier.close()

    # Assert
    assert all(who is not None for who in callers)
    assert fetches[0] == 1
