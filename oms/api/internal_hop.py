"""The internal hop between replicas: a forwarded request carries its caller, signed.

The replica a request reached resolves the caller (``oms.api.identity``) and, when another
replica owns the account, forwards the request with ``X-OMS-Forwarded:
<ms>.<caller>.<signature>``: the time in milliseconds, the caller as base64url JSON, and
HMAC-SHA256 under ``OMS_INTERNAL_TOKEN`` of the time, method, path and query, caller and the
body's SHA-256. The owner checks it in constant time and takes the caller as signed, without
reading the API key again. A user's key alone never passes: without the token nobody can sign.
A signature older than ``MAX_AGE_S`` (or from further in the future) is refused, which bounds
what a captured request could be replayed for; the hop is inside the cluster's network anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable

import orjson
from aiohttp import web

from oms.api.identity import FORWARD_HEADER, Caller
from oms.domain.access import Role

MAX_AGE_S = 30.0


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _caller_json(who: Caller) -> bytes:
    return orjson.dumps(
        {
            "role": who.role.value,
            "accounts": sorted(who.accounts),
            "key_id": who.key_id,
            "subject": who.subject,
            "client": who.client,
        }
    )


class HopSigner:
    """Signs forwarded requests and checks them (``identity.InternalHop``)."""

    def __init__(
        self, token: str, clock: Callable[[], float] = time.time, header: str = FORWARD_HEADER
    ) -> None:
        """``token``: the shared secret; empty signs nothing and trusts nothing. ``header``:
        where a request carries the signature (a door's hop has its own, ``DOOR_HEADER``)."""
        self._key = token.encode()
        self._clock = clock
        self.header = header

    @property
    def enabled(self) -> bool:
        """True when there is a token to sign with."""
        return bool(self._key)

    def _mac(self, at_ms: str, method: str, path_qs: str, caller: str, body: bytes) -> str:
        message = "\n".join(
            (at_ms, method.upper(), path_qs, caller, hashlib.sha256(body).hexdigest())
        )
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def sign(self, who: Caller, method: str, path_qs: str, body: bytes) -> str:
        """The header value for forwarding this request of ``who``."""
        if not self._key:
            raise ValueError("no internal token: nothing is forwarded")
        at_ms = str(int(self._clock() * 1000))
        caller = _b64(_caller_json(who))
        return f"{at_ms}.{caller}.{self._mac(at_ms, method, path_qs, caller, body)}"

    def check(self, header: str, method: str, path_qs: str, body: bytes) -> Caller | None:
        """The caller ``header`` was signed for, or None."""
        if not self._key:
            return None
        parts = header.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        at_ms, caller, mac = parts
        if abs(self._clock() - int(at_ms) / 1000) > MAX_AGE_S:
            return None
        if not hmac.compare_digest(mac, self._mac(at_ms, method, path_qs, caller, body)):
            return None
        try:
            value = orjson.loads(_unb64(caller))
            return Caller(
                role=Role(value["role"]),
                accounts=frozenset(str(a) for a in value["accounts"]),
                key_id=value["key_id"],
                subject=value["subject"],
                client=value["client"],
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None  # signed by us, so only a bug gets here: refuse, never guess

    def trusted_caller(self, request: web.Request, body: bytes) -> Caller | None:
        """The caller of a forwarded request, if its signature holds."""
        header = request.headers.get(self.header, "")
        return self.check(header, request.method, request.path_qs, body)
