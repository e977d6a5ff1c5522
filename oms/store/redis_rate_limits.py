"""Redis rate limits: GCRA buckets every replica shares, checked in one Lua script.

One key per bucket (``ratelimit:{deployment}:{scope}:{who}``) holding its theoretical arrival
time in microseconds of Redis's own clock (``TIME``), so replicas whose clocks disagree still
agree on every bucket. The script checks and moves a request's buckets in one atomic step:
two replicas counting the same key at once cannot both take its last slot. The requests of one
loop turn go to Redis in one script call (as the idempotency claims do): a burst of requests
costs one round trip, not one each. The sums are those of ``oms.domain.rate_limits.admit``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oms.domain.rate_limits import ALLOWED, Bucket, LimitScope, Verdict

__all__ = ["RedisRateLimits"]

# ARGV[1]: how many requests; then per request its bucket count n, then n pairs (interval in
# microseconds, burst). KEYS: every request's buckets in the same order. Each request answers
# {wait_us, index of the bucket that refused it (1-based), or 0 when let through}. A bucket's
# key expires once its TAT is past: an idle bucket costs Redis nothing. Numbers are written
# with %.0f: Lua's own tostring keeps 14 digits, too few for microseconds since 1970.
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
  if which == 0 then
    for b = 0, n - 1 do
      local ttl_ms = math.ceil((moved[b + 1] - now) / 1000) + 1
      redis.call('SET', KEYS[k + b], string.format('%.0f', moved[b + 1]), 'PX', ttl_ms)
    end
  end
  out[r] = {wait, which}
  k = k + n
  a = a + 2 * n
end
return out
"""
MAX_PER_CALL = 250  # requests per script call: a long script holds Redis up for everyone

_Request = tuple[Sequence[Bucket], asyncio.Future[Verdict]]


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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Verdict] = loop.create_future()
        self._queue.append((buckets, future))
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
        args: list[int] = [len(batch)]
        for buckets, _ in batch:
            args.append(len(buckets))
            for bucket in buckets:
                keys.append(self.key(bucket))
                args += (bucket.rate.interval_us, bucket.rate.burst)
        try:
            answers: list[Any] = await self._script(keys=keys, args=args)
        except BaseException as exc:  # every waiting request learns why (cancelled included)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RedisError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for (buckets, future), (wait_us, which) in zip(batch, answers, strict=True):
            if future.done():
                continue
            if which == 0:
                future.set_result(ALLOWED)
            else:
                scope: LimitScope = buckets[int(which) - 1].scope
                future.set_result(Verdict(int(wait_us), scope))
