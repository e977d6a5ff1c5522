"""Redis: idempotency keys of order entry, the hot order cache, and the order-book cache.

Keys: ``idempotency:{key}`` (the API scopes ``key`` by account), ``order:{order_id}``,
``orderbook:{symbol}``. Values are JSON (orjson) with decimal strings (``oms.codec``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oms.codec import CodecError, order_from_dict, order_to_dict
from oms.domain.orders import Order
from oms.marketdata import Tick
from oms.store.ports import Claim, IdempotencyStore, OrderCache

# Claims, each with the order to cache when it wins, in one script: per claim i, KEYS[2i-1] is the
# idempotency key and KEYS[2i] the order's cache key; ARGV[4i-3..4i] the claim's value and TTL,
# then the order (empty: cache nothing) and its TTL. SET NX EX, the cache write on a won claim
# and, on a taken key, the holder's value happen in one atomic step: a key that expires between
# a refused SET and a separate GET would otherwise answer "taken by nobody", and the order is
# cached before anyone can learn its id from the claim.
# Each claim answers 1 (won) or the holder's value (0 if, impossibly, there is none).
_CLAIMS = """
local out = {}
for i = 1, #KEYS / 2 do
  local a = 4 * (i - 1)
  if redis.call('SET', KEYS[2 * i - 1], ARGV[a + 1], 'NX', 'EX', ARGV[a + 2]) then
    if ARGV[a + 3] ~= '' then
      redis.call('SET', KEYS[2 * i], ARGV[a + 3], 'EX', ARGV[a + 4])
    end
    out[i] = 1
  else
    out[i] = redis.call('GET', KEYS[2 * i - 1]) or 0
  end
end
return out
"""
MAX_CLAIMS_PER_CALL = 500

_Request = tuple[str, bytes, int, str, bytes, int]  # claim key, value, ttl; cache key, value, ttl


def _claim_value(order_id: str, fingerprint: bytes) -> bytes:
    return orjson.dumps({"order_id": order_id, "fingerprint": fingerprint.hex()})


def _encode_order(order: Order) -> bytes:
    return orjson.dumps(order_to_dict(order))


class _ClaimBatcher:
    """Sends the claims made in one turn of the event loop as one script call.

    Concurrent requests each claiming on their own would each take a pooled connection and pay
    a round trip (the pool also refuses a 101st concurrent caller); batched, a burst of claims
    costs one call on one connection. A claim waits at most until the loop's next turn.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._script = client.register_script(_CLAIMS)
        self._queue: list[tuple[_Request, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, request: _Request) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((request, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        for start in range(0, len(queue), MAX_CLAIMS_PER_CALL):
            task = asyncio.create_task(self._send(queue[start : start + MAX_CLAIMS_PER_CALL]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[_Request, asyncio.Future[Any]]]) -> None:
        keys: list[str] = []
        args: list[bytes | str | int] = []
        for (claim_key, value, ttl_s, cache_key, cached, cache_ttl_s), _ in batch:
            keys += (claim_key, cache_key)
            args += (value, ttl_s, cached, cache_ttl_s)
        try:
            answers = await self._script(keys=keys, args=args)
        except BaseException as exc:  # every waiting claim learns why (cancelled included)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RedisError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)


class RedisIdempotencyStore(IdempotencyStore):
    """``idempotency:{key}`` set once with ``SET NX EX`` to the order id and request fingerprint.

    Claims made together (concurrent requests) go to Redis together, in one script call.
    """

    def __init__(
        self, client: aioredis.Redis, prefix: str = "idempotency:", cache_prefix: str = "order:"
    ) -> None:
        """Use ``client`` (owned by the caller); ``cache_prefix`` is the order cache's."""
        self._client = client
        self._prefix = prefix
        self._cache_prefix = cache_prefix
        self._batcher = _ClaimBatcher(client)

    @property
    def client(self) -> aioredis.Redis:
        """The client claims go through."""
        return self._client

    @property
    def cache_prefix(self) -> str:
        """The prefix of the order cache keys that ``claim_and_cache`` writes."""
        return self._cache_prefix

    async def claim(self, key: str, order_id: str, fingerprint: bytes, ttl_s: int) -> Claim:
        """First caller wins; a later one learns the holder's order id and fingerprint."""
        return await self._claim(key, order_id, fingerprint, ttl_s)

    async def claim_and_cache(
        self, key: str, order: Order, fingerprint: bytes, ttl_s: int, cache_ttl_s: int
    ) -> Claim:
        """``claim`` for ``order``, and if it wins, cache the order in the same atomic step."""
        return await self._claim(
            key,
            order.order_id,
            fingerprint,
            ttl_s,
            cached=_encode_order(order),
            cache_ttl_s=cache_ttl_s,
        )

    async def _claim(
        self,
        key: str,
        order_id: str,
        fingerprint: bytes,
        ttl_s: int,
        *,
        cached: bytes = b"",
        cache_ttl_s: int = 0,
    ) -> Claim:
        value = _claim_value(order_id, fingerprint)
        request = (
            self._prefix + key,
            value,
            ttl_s,
            self._cache_prefix + order_id,
            cached,
            cache_ttl_s,
        )
        held = await self._batcher.submit(request)
        if held == 1:
            return Claim(True, order_id, fingerprint)
        if not held:  # expired in between cannot happen inside the script; be explicit
            raise CodecError(f"idempotency key {key!r} has no holder")
        data = orjson.loads(held)
        return Claim(False, data["order_id"], bytes.fromhex(data["fingerprint"]))


class RedisOrderCache(OrderCache):
    """``order:{order_id}``: the latest known state, JSON, with a TTL."""

    def __init__(self, client: aioredis.Redis, prefix: str = "order:") -> None:
        """Use ``client`` (owned by the caller)."""
        self._client = client
        self._prefix = prefix

    @property
    def client(self) -> aioredis.Redis:
        """The client the cache uses."""
        return self._client

    @property
    def prefix(self) -> str:
        """The prefix of its keys (``order:``)."""
        return self._prefix

    async def put(self, order: Order, ttl_s: int) -> None:
        """Cache the order (overwrites an older state)."""
        await self._client.set(self._prefix + order.order_id, _encode_order(order), ex=ttl_s)

    async def put_many(self, orders: list[Order], ttl_s: int) -> None:
        """Cache many orders in one round trip (e.g. a batch of order events)."""
        if not orders:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for order in orders:
                pipe.set(
                    self._prefix + order.order_id, orjson.dumps(order_to_dict(order)), ex=ttl_s
                )
            await pipe.execute()

    async def get(self, order_id: str) -> Order | None:
        """The cached order, or None (expired, never cached)."""
        raw = await self._client.get(self._prefix + order_id)
        return None if raw is None else order_from_dict(orjson.loads(raw))


class RedisOrderBookCache:
    """``orderbook:{symbol}``: the last book snapshot (``Tick.to_dict``), kept about a second."""

    def __init__(self, client: aioredis.Redis, ttl_s: int = 1, prefix: str = "orderbook:") -> None:
        """Use ``client`` (owned by the caller)."""
        self._client = client
        self._ttl_s = ttl_s
        self._prefix = prefix

    async def put(self, tick: Tick) -> None:
        """Cache the book of ``tick.symbol``."""
        await self._client.set(
            self._prefix + tick.symbol, orjson.dumps(tick.to_dict()), ex=self._ttl_s
        )

    async def get(self, symbol: str) -> dict[str, Any] | None:
        """The cached book as JSON-ready data (decimal strings), or None."""
        raw = await self._client.get(self._prefix + symbol)
        if raw is None:
            return None
        book: dict[str, Any] = orjson.loads(raw)
        return book


ClaimAndCache = Callable[[str, Order, bytes, int, int], Awaitable[Claim]]


def claim_and_cache(idempotency: IdempotencyStore, cache: OrderCache) -> ClaimAndCache | None:
    """One call that claims a key and caches the order when the claim wins, or None.

    Possible when both are the Redis stores of one client writing the same cache keys; then
    order entry pays one Redis round trip (shared with concurrent requests) instead of two.
    """
    if (
        isinstance(idempotency, RedisIdempotencyStore)
        and isinstance(cache, RedisOrderCache)
        and idempotency.client is cache.client
        and idempotency.cache_prefix == cache.prefix
    ):
        return idempotency.claim_and_cache
    return None
