"""JWT bearer tokens from an OAuth2/OIDC provider, checked with PyJWT.

The signing key is a PEM public key (``OMS_JWT_PUBLIC_KEY``) or the provider's JWKS document
(``OMS_JWT_JWKS_URL``). The JWKS is fetched with aiohttp on the event loop and kept
``jwt_jwks_ttl_s``; not with ``PyJWKClient``, whose urllib fetch would block the loop. A token
whose ``kid`` the held document lacks fetches it again at once (keys rotate), at most once per
``jwt_jwks_min_refetch_s``, so a flood of made-up key ids cannot hammer the provider.

Refused: a token signed with an algorithm outside ``jwt_algorithms`` (asymmetric only: never
``none``, never HS256, which would take the public key as a shared secret); a wrong issuer or
audience; one without ``exp``, ``iss``, ``aud`` or ``sub``; an expired one; a role claim that is
not one of the roles.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.exceptions import PyJWKError, PyJWTError

from oms.api.identity import Caller
from oms.config import Settings
from oms.domain.access import Role

logger = logging.getLogger(__name__)

_FETCH_TIMEOUT_S = 5.0


class JwtVerifier:
    """Checks a JWT and turns its claims into a ``Caller``."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        """Verify with the settings' public key or JWKS URL (one of them must be set)."""
        if not (settings.jwt_public_key or settings.jwt_jwks_url):
            raise ValueError("JWTs need OMS_JWT_PUBLIC_KEY or OMS_JWT_JWKS_URL")
        if not (settings.jwt_issuer and settings.jwt_audience):
            raise ValueError("JWTs need OMS_JWT_ISSUER and OMS_JWT_AUDIENCE")
        self._settings = settings
        self._clock = clock
        self._algorithms = list(settings.jwt_algorithms)
        self._public_key: Any = None
        if settings.jwt_public_key:
            # Parsed once, at start: a key that does not read stops the process there.
            pem = settings.jwt_public_key.replace("\\n", "\n").encode()
            self._public_key = load_pem_public_key(pem)
        self._jwks: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._session: aiohttp.ClientSession | None = None
        self._fetching = asyncio.Lock()

    async def close(self) -> None:
        """Close the JWKS client (the app's cleanup)."""
        if self._session is not None:
            await self._session.close()

    async def verify(self, token: str, client: str | None) -> Caller | None:
        """The caller the token names, or None when it proves nobody (logged at debug)."""
        settings = self._settings
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self._algorithms:
                return None  # "none", HS256 and anything not pinned, before any key is used
            key = self._public_key
            if key is None:
                key = await self._jwk(header.get("kid"))
                if key is None:
                    return None
            claims = jwt.decode(
                token,
                key=key,
                algorithms=self._algorithms,
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                leeway=settings.jwt_leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except PyJWTError as refused:
            logger.debug("JWT refused: %s", refused)
            return None
        return _caller(claims, settings, client)

    async def _jwk(self, kid: object) -> Any:
        if self._due(kid):
            # One fetch at a time: a request that finds one running waits for it and uses its
            # keys (the check is made again once it has the lock).
            async with self._fetching:
                if self._due(kid):
                    await self._fetch()
        if isinstance(kid, str):
            found = self._jwks.get(kid)
        elif len(self._jwks) == 1:  # a provider with one key may leave kid out
            found = next(iter(self._jwks.values()))
        else:
            found = None
        return None if found is None else found.key

    def _due(self, kid: object) -> bool:
        """True when the JWKS must be fetched for ``kid``: never fetched, older than its TTL,
        or lacking ``kid`` and not fetched within the last ``jwt_jwks_min_refetch_s``."""
        if self._fetched_at is None:
            return True
        since = self._clock() - self._fetched_at
        settings = self._settings
        if since >= settings.jwt_jwks_ttl_s:
            return True
        unknown = not isinstance(kid, str) or kid not in self._jwks
        return unknown and since >= settings.jwt_jwks_min_refetch_s

    async def _fetch(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=_FETCH_TIMEOUT_S)
            )
        try:
            async with self._session.get(self._settings.jwt_jwks_url) as response:
                response.raise_for_status()
                document = await response.json(content_type=None)
            keys: dict[str, jwt.PyJWK] = {}
            for entry in document.get("keys", []):
                try:
                    key = jwt.PyJWK(entry)
                except PyJWKError:
                    continue  # a key type or algorithm this build cannot use: skip it
                if key.algorithm_name in self._algorithms and entry.get("use", "sig") == "sig":
                    keys[str(entry.get("kid", ""))] = key
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError) as failed:
            # Keep the keys held: a provider's hiccup must not log everyone out.
            logger.warning("JWKS fetch from %s failed: %s", self._settings.jwt_jwks_url, failed)
        else:
            self._jwks = keys
        finally:
            self._fetched_at = self._clock()


def _caller(claims: dict[str, Any], settings: Settings, client: str | None) -> Caller | None:
    raw_role = claims.get(settings.jwt_role_claim)
    if isinstance(raw_role, list) and len(raw_role) == 1:
        raw_role = raw_role[0]
    if not isinstance(raw_role, str) or raw_role not in Role._value2member_map_:
        return None
    raw_accounts = claims.get(settings.jwt_accounts_claim, [])
    if isinstance(raw_accounts, str):
        raw_accounts = raw_accounts.replace(",", " ").split()
    if not isinstance(raw_accounts, list) or not all(isinstance(a, str) for a in raw_accounts):
        return None
    subject = claims["sub"]
    return Caller(Role(raw_role), frozenset(raw_accounts), subject=str(subject), client=client)
