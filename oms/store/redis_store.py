"""Redis: idempotency keys of order entry, the hot order cache, and the order-book cache.

Keys: ``idempotency:{key}`` (the API scopes ``key`` by account), ``order:{order_id}``,
``orderbook:{symbol}``. Values are JSON (orjson) with decimal strings (``oms.codec``).
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from oms.codec import CodecError, order_from_dict, order_to_dict
from oms.domain.orders import Order
from oms.marketdata import Tick
from oms.store.ports import Claim, IdempotencyStore, OrderCache

# SET NX EX, and on a taken key the holder's value, in one atomic step: a key that expires
# between a refused SET and a separate GET would otherwise answer "taken by nobody".
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return {1, ARGV[1]}
end
return {0, redis.call('GET', KEYS[1])}
"""


def _claim_value(order_id: str, fingerprint: bytes) -> bytes:
    return orjson.dumps({"order_id": order_id, "fingerprint": fingerprint.hex()})


class RedisIdempotencyStore(IdempotencyStore):
    """``idempotency:{key}`` set once with ``SET NX EX`` to the order id and request fingerprint."""

    def __init__(self, client: aioredis.Redis, prefix: str = "idempotency:") -> None:
        """Use ``client`` (owned by the caller)."""
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_CLAIM)

    async def claim(self, key: str, order_id: str, fingerprint: bytes, ttl_s: int) -> Claim:
        """First caller wins; a later one learns the holder's order id and fingerprint."""
        value = _claim_value(order_id, fingerprint)
        first, held = await self._script(keys=[self._prefix + key], args=[value, ttl_s])
        if held is None:  # expired in between cannot happen inside the script; be explicit
            raise CodecError(f"idempotency key {key!r} has no holder")
        data = orjson.loads(held)
        return Claim(bool(first), data["order_id"], bytes.fromhex(data["fingerprint"]))


class RedisOrderCache(OrderCache):
    """``order:{order_id}``: the latest known state, JSON, with a TTL."""

    def __init__(self, client: aioredis.Redis, prefix: str = "order:") -> None:
        """Use ``client`` (owned by the caller)."""
        self._client = client
        self._prefix = prefix

    async def put(self, order: Order, ttl_s: int) -> None:
        """Cache the order (overwrites an older state)."""
        await self._client.set(
            self._prefix + order.order_id, orjson.dumps(order_to_dict(order)), ex=ttl_s
        )

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
