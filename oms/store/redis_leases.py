"""Leases in Redis: one holder per name at a time, for as long as it keeps renewing.

``SET name owner NX PX ttl`` takes a free lease; renewing and releasing are scripts that act
only when the lease still names this owner, so a holder that paused past its expiry (and lost
the lease to another) can neither extend nor drop the new holder's. Redis expires an abandoned
lease by itself: a replica that dies loses its leases ``ttl`` after its last renewal.

Each call answers True (done), False (another owner holds it, or it was not held), or None:
Redis did not answer, so this replica cannot know (its caller decides what that means: see
``oms.stream.feed_leases``).
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLeases:
    """``LeaseStore`` (``oms.stream.feed_leases``) on Redis, shared by every replica."""

    def __init__(self, client: aioredis.Redis, deployment: str = "") -> None:
        """Use ``client`` (owned by the caller); ``deployment`` keeps the leases of deployments
        (or test runs) sharing one Redis apart."""
        self._client = client
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._prefix = f"lease:{deployment}:"

    def key(self, name: str) -> str:
        """The Redis key of lease ``name``."""
        return f"{self._prefix}{name}"

    async def acquire(self, name: str, owner: str, ttl_ms: int) -> bool | None:
        """Take lease ``name`` for ``ttl_ms`` if nobody holds it."""
        try:
            taken = await self._client.set(self.key(name), owner, nx=True, px=ttl_ms)
        except (RedisError, OSError) as error:
            logger.debug("lease %s: acquire unanswered: %r", name, error)
            return None
        return bool(taken)

    async def renew(self, name: str, owner: str, ttl_ms: int) -> bool | None:
        """Extend lease ``name`` to ``ttl_ms`` from now if ``owner`` still holds it."""
        try:
            renewed = await self._renew(keys=[self.key(name)], args=[owner, ttl_ms])
        except (RedisError, OSError) as error:
            logger.debug("lease %s: renew unanswered: %r", name, error)
            return None
        return bool(renewed)

    async def release(self, name: str, owner: str) -> bool | None:
        """Drop lease ``name`` if ``owner`` holds it, so another replica may take it at once."""
        try:
            released = await self._release(keys=[self.key(name)], args=[owner])
        except (RedisError, OSError) as error:
            logger.debug("lease %s: release unanswered: %r", name, error)
            return None
        return bool(released)

    async def holder(self, name: str) -> str | None:
        """Who holds lease ``name`` now (None: nobody); for ``/metrics`` and tests."""
        value = await self._client.get(self.key(name))
        return None if value is None else value.decode() if isinstance(value, bytes) else str(value)
