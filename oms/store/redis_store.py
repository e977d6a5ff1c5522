"""Redis: idempotency keys of order entry, the hot order cache, and the order-book cache.

Keys: ``idempotency:{key}`` (the API scopes ``key`` by account), ``order:{order_id}``,
``orderbook:{symbol}``, ``ws-ticket:{ticket}``. Values are JSON (orjson) with decimal strings (``oms.codec``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
import orjson
import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from oms.codec import CodecError, order_from_dict, order_to_dict
from oms.config import Settings
from oms.domain.orders import Order
from oms.engine.ports import Claim, IdempotencyStore, OrderCache
from oms.marketdata import Tick

# Claims in one script: per claim i, KEYS[i] is the idempotency key and ARGV[2i-1..2i] the value
# and TTL. SET NX EX and, on a taken key, reading the holder happen in one atomic step: a key
# that expires between a refused SET and a separate GET would otherwise answer "taken by nobody".
# Each claim answers 1 (won) or the holder's value (0 if, impossibly, there is none).
_CLAIMS = """
local out = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'NX', 'EX', ARGV[2 * i]) then
    out[i] = 1
  else
    out[i] = redis.call('GET', KEYS[i]) or 0
  end
end
return out
"""
# Cache writes in one script: KEYS[i] gets ARGV[2i-1] for ARGV[2i] seconds. One command on the
# wire instead of a pipeline of SETs: redis-py encodes and parses one, not one per order.
_PUTS = """
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'EX', ARGV[2 * i])
end
return #KEYS
"""
# Values of many keys in one script call (the cache's reads of one loop turn).
_GETS = """
return redis.call('MGET', unpack(KEYS))
"""
MAX_PER_CALL = 500
_POOL_CONNECTIONS = 100
# redis-py's reply parsers, by the setting's name (README "Speed levers"). hiredis is one of
# oms's dependencies, so redis-py would take it by default; "python" is for measuring it.
REDIS_PARSERS: dict[str, type[Any]] = {"hiredis": _AsyncHiredisParser, "python": _AsyncRESP2Parser}

_Item = tuple[str, tuple[bytes | int, ...]]  # a key and its script arguments


class HiredisPackingConnection(Connection):
    """redis-py's asyncio connection, packing commands with hiredis's C packer.

    redis-py's sync connection packs with hiredis when it is installed; its asyncio one always
    packs in Python, and a py-spy of a door under load put that at 4.7% of the door's CPU (issue
    19): 14.4 µs for a placement's claim script against hiredis's 3.6. The bytes on the wire
    are the same. What hiredis does not take (a command name with a space in it, such as
    ``SCRIPT LOAD``; a memoryview) goes to redis-py's own packer, which also raises its
    ``DataError`` for a value of a type Redis has no encoding for.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " not in name:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass  # redis-py's packer encodes what hiredis does not, or raises DataError
        return super().pack_command(*args)


# And their packers: the "python" setting measures redis-py without hiredis, both ways.
REDIS_CONNECTIONS: dict[str, type[Connection]] = {
    "hiredis": HiredisPackingConnection,
    "python": Connection,
}


def redis_client(settings: Settings) -> aioredis.Redis:
    """The client of the door's stores: every wait bounded, one quick retry.

    redis-py's defaults wait 5 s per connect or reply and retry 10 times with back-off, so a
    stopped Redis held a request for most of a minute. Here each wait is
    ``redis_timeout_s`` and a failure is retried ``redis_retries`` times after 10-50 ms: enough
    to replace a pooled connection that died with a Redis restart, short of hanging a request.
    The pool makes a caller beyond its 100 connections wait (as long) for one to come back,
    where the default pool refuses it at once ("Too many connections").
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=_POOL_CONNECTIONS,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), settings.redis_retries),
        parser_class=REDIS_PARSERS[settings.redis_parser],
        connection_class=REDIS_CONNECTIONS[settings.redis_parser],
    )
    return aioredis.Redis.from_pool(pool)


def claim_value(order_id: str, fingerprint: bytes) -> bytes:
    """What a claim holds: the order it names and the body it was made for (``Claim``)."""
    return orjson.dumps({"order_id": order_id, "fingerprint": fingerprint.hex()})


def _encode_order(order: Order) -> bytes:
    return orjson.dumps(order_to_dict(order))


class _ScriptBatcher:
    """Sends the keys asked for in one turn of the event loop to one script call.

    Concurrent requests each calling on their own would each take a pooled connection and pay
    a round trip; batched, a burst costs one call on one connection. A call waits at most until
    the loop's next turn. Each key's future gets the script's answer for it (a script answering
    one number answers it for every key), or the error of the call.
    """

    def __init__(self, client: aioredis.Redis, script: str) -> None:
        self._script = client.register_script(script)
        self._queue: list[tuple[_Item, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: str, *args: bytes | int) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(((key, args), future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        for start in range(0, len(queue), MAX_PER_CALL):
            task = asyncio.create_task(self._send(queue[start : start + MAX_PER_CALL]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[_Item, asyncio.Future[Any]]]) -> None:
        keys: list[str] = []
        args: list[bytes | int] = []
        for (key, more), _ in batch:
            keys.append(key)
            args += more
        try:
            answers = await self._script(keys=keys, args=args)
        except BaseException as exc:  # every waiting caller learns why (cancelled included)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RedisError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        if not isinstance(answers, list):  # the puts' script answers a count
            answers = [answers] * len(batch)
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)


class RedisIdempotencyStore(IdempotencyStore):
    """``idempotency:{key}`` set once with ``SET NX EX`` to the order id and request fingerprint.

    Claims made together (concurrent requests) go to Redis together, in one script call.
    """

    def __init__(self, client: aioredis.Redis, prefix: str = "idempotency:") -> None:
        """Use ``client`` (owned by the caller)."""
        self._client = client
        self._prefix = prefix
        self._batcher = _ScriptBatcher(client, _CLAIMS)

    @property
    def client(self) -> aioredis.Redis:
        """The client claims go through."""
        return self._client

    async def claim(self, key: str, order_id: str, fingerprint: bytes, ttl_s: int) -> Claim:
        """First caller wins; a later one learns the holder's order id and fingerprint."""
        value = claim_value(order_id, fingerprint)
        held = await self._batcher.submit(self._prefix + key, value, ttl_s)
        return self.claimed(key, order_id, fingerprint, held)

    def redis_key(self, key: str) -> str:
        """The Redis key a claim of ``key`` sets."""
        return self._prefix + key

    @staticmethod
    def claimed(key: str, order_id: str, fingerprint: bytes, held: Any) -> Claim:
        """A claim script's answer for ``key``: 1 (taken for ``order_id``) or its holder's value."""
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
        self._puts = _ScriptBatcher(client, _PUTS)
        self._gets = _ScriptBatcher(client, _GETS)

    @property
    def client(self) -> aioredis.Redis:
        """The client the cache uses."""
        return self._client

    @property
    def prefix(self) -> str:
        """The prefix of its keys (``order:``)."""
        return self._prefix

    async def put(self, order: Order, ttl_s: int) -> None:
        """Cache the order (overwrites an older state); puts of one loop turn share a call."""
        await self._puts.submit(self._prefix + order.order_id, _encode_order(order), ttl_s)

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
        """The cached order, or None (expired, never cached); gets of one loop turn share a
        call."""
        raw = await self._gets.submit(self._prefix + order_id)
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


class RedisTicketStore:
    """``ws-ticket:{ticket}``: a WebSocket ticket's caller, taken once (``GETDEL``), so any
    replica honours it and none twice (``oms.api.credentials.TicketStore``)."""

    def __init__(self, client: aioredis.Redis, prefix: str = "ws-ticket:") -> None:
        """Use ``client`` (owned by the caller)."""
        self._client = client
        self._prefix = prefix

    async def put_ticket(self, ticket: str, payload: bytes, ttl_s: int) -> None:
        """Hold the ticket for ``ttl_s`` seconds."""
        await self._client.set(self._prefix + ticket, payload, ex=ttl_s)

    async def take_ticket(self, ticket: str) -> bytes | None:
        """The ticket's payload, deleted in the same step."""
        raw = await self._client.getdel(self._prefix + ticket)
        return raw.encode() if isinstance(raw, str) else raw
