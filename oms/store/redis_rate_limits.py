"""Redis rate limits: GCRA buckets every replica shares, checked in one Lua script.

One key per bucket (``ratelimit:{deployment}:{scope}:{who}``) holding its theoretical arrival
time in microseconds of Redis's own clock (``TIME``), so replicas whose clocks disagree still
agree on every bucket. The script checks and moves a request's buckets in one atomic step:
two replicas counting the same key at once cannot both take its last slot. The requests of one
loop turn go to Redis in one script call (as the idempotency claims do): a burst of requests
costs one round trip, not one each. The sums are those of ``oms.domain.rate_limits.admit``.

A placement's idempotency claims may ride in the same call (``RedisAdmission``): the script takes
them only once the buckets let the request through, so a 429 still claims nothing, and the
placement waits on Redis once before its produce, not twice (issue 19: each wait on a busy
machine is a turn at the scheduler, several milliseconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oms.domain.rate_limits import ALLOWED, Bucket, LimitScope, Verdict
from oms.engine.ports import Claim
from oms.store.redis_store import RedisIdempotencyStore, claim_value

__all__ = ["RedisAdmission", "RedisRateLimits"]

# ARGV[1]: how many requests; then per request its bucket count n and n pairs (interval in
# microseconds, burst), then its claim count m and m pairs (the claim's value, its TTL in
# seconds). KEYS: per request its n buckets, then its m idempotency keys, in the same order.
# Each request answers {wait_us, index of the bucket that refused it (1-based) or 0 when let
# through, then per claim 1 (taken) or its holder's value}; a refused request takes no claim. A
# bucket's key expires once its TAT is past: an idle bucket costs Redis nothing. Numbers are
# written with %.0f: Lua's own tostring keeps 14 digits, too few for microseconds since 1970.
# The claims are ``oms.store.redis_store``'s: SET NX EX, else the holder, in one atomic step.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
local k, a = 1, 2
for r = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  a = a + 1
  local wait, which = 0, 0
  local moved = {}
  for b = 0, n - 1 do
    local interval = tonumber(ARGV[a + 2 * b])
    local burst = tonumber(ARGV[a + 2 * b + 1])
    local tat = tonumber(redis.call('GET', KEYS[k + b]) or now)
    if tat < now then tat = now end
    local allow_at = tat + interval - burst * interval
    if allow_at > now and allow_at - now > wait then
      wait = allow_at - now
      which = b + 1
    end
    moved[b + 1] = tat + interval
  end
  local answer = {wait, which}
  local m = tonumber(ARGV[a + 2 * n])
  local c, v = k + n, a + 2 * n + 1
  if which == 0 then
    for b = 0, n - 1 do
      local ttl_ms = math.ceil((moved[b + 1] - now) / 1000) + 1
      redis.call('SET', KEYS[k + b], string.format('%.0f', moved[b + 1]), 'PX', ttl_ms)
    end
    for i = 0, m - 1 do
      if redis.call('SET', KEYS[c + i], ARGV[v + 2 * i], 'NX', 'EX', ARGV[v + 2 * i + 1]) then
        answer[3 + i] = 1
      else
        answer[3 + i] = redis.call('GET', KEYS[c + i]) or 0
      end
    end
  end
  out[r] = answer
  k = c + m
  a = v + 2 * m
end
return out
"""
MAX_PER_CALL = 250  # requests per script call: a long script holds Redis up for everyone

ClaimItem = tuple[str, bytes, int]  # an idempotency claim: its Redis key, value and TTL (s)
_Admitted = tuple[Verdict, list[Any]]  # the verdict, and each claim's raw answer (none: refused)
_Request = tuple[Sequence[Bucket], Sequence[ClaimItem], asyncio.Future[_Admitted]]


class RedisRateLimits:
    """``RateLimitStore`` on Redis (``oms.api.rate_limits``): shared by every replica."""

    def __init__(self, client: aioredis.Redis, deployment: str = "") -> None:
        """Use ``client`` (owned by the caller); ``deployment`` keeps the buckets of
        deployments (or test runs) sharing one Redis apart."""
        self._script = client.register_script(_ADMIT)
        self._prefix = f"ratelimit:{deployment}:"
        self._queue: list[_Request] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def key(self, bucket: Bucket) -> str:
        """The Redis key of ``bucket``."""
        return f"{self._prefix}{bucket.scope}:{bucket.key}"

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        """Count one request against every bucket, or refuse it saying for how long."""
        if not buckets:
            return ALLOWED
        verdict, _ = await self.acquire_claiming(buckets, ())
        return verdict

    async def acquire_claiming(
        self, buckets: Sequence[Bucket], claims: Sequence[ClaimItem]
    ) -> _Admitted:
        """``acquire``, then, only if every bucket let the request through, the claims: per
        claim 1 (taken by this call) or its holder's value, as ``RedisIdempotencyStore`` reads
        them."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Admitted] = loop.create_future()
        self._queue.append((buckets, claims, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        for start in range(0, len(queue), MAX_PER_CALL):
            task = asyncio.create_task(self._send(queue[start : start + MAX_PER_CALL]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Request]) -> None:
        keys: list[str] = []
        args: list[bytes | int] = [len(batch)]
        for buckets, claims, _ in batch:
            args.append(len(buckets))
            for bucket in buckets:
                keys.append(self.key(bucket))
                args += (bucket.rate.interval_us, bucket.rate.burst)
            args.append(len(claims))
            for key, value, ttl_s in claims:
                keys.append(key)
                args += (value, ttl_s)
        try:
            answers: list[Any] = await self._script(keys=keys, args=args)
        except BaseException as exc:  # every waiting request learns why (cancelled included)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RedisError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for (buckets, _, future), answer in zip(batch, answers, strict=True):
            if future.done():
                continue
            wait_us, which, *claimed = answer
            if which == 0:
                future.set_result((ALLOWED, claimed))
            else:
                scope: LimitScope = buckets[int(which) - 1].scope
                future.set_result((Verdict(int(wait_us), scope), []))


class RedisAdmission:
    """``ClaimingRateLimits`` on Redis (``oms.api.rate_limits``): a placement's buckets and its
    idempotency claims in one script call, the claims taken only if the buckets pass."""

    def __init__(self, limits: RedisRateLimits, idempotency: RedisIdempotencyStore) -> None:
        """The buckets of ``limits``, the claims of ``idempotency`` (their keys and values)."""
        self._limits = limits
        self._idempotency = idempotency

    async def acquire_and_claim(
        self,
        buckets: Sequence[Bucket],
        keys: Sequence[str],
        order_id: str,
        fingerprint: bytes,
        ttl_s: int,
    ) -> tuple[Verdict, list[Claim]]:
        """The verdict; when it lets the request through, who holds each key (as ``claim``)."""
        idempotency = self._idempotency
        value = claim_value(order_id, fingerprint)
        items = [(idempotency.redis_key(key), value, ttl_s) for key in keys]
        verdict, answers = await self._limits.acquire_claiming(buckets, items)
        if not verdict.allowed:
            return verdict, []
        return verdict, [
            idempotency.claimed(key, order_id, fingerprint, held)
            for key, held in zip(keys, answers, strict=True)
        ]
