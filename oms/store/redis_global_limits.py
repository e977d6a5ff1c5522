"""Firm-wide caps counted in Redis: one Lua script checks and reserves, every replica shares it.

Keys (``globallimit:{deployment}:``, so runs sharing one Redis stay apart):

- ``limits``: the caps as set (JSON, what ``GET`` answers), and ``caps``: a hash of the same in
  units, the script's view (``n:{symbol}``, ``p:{symbol}``, ``g:{group}``); both written in one
  transaction.
- Per partition ``p`` of ``orders`` (the unit one replica owns): ``agg:{p}``, a hash of what the
  partition's accounts hold (``n:{symbol}`` and ``g:{group}`` open notional, ``b:{symbol}`` and
  ``s:{symbol}`` open quantity per side, ``q:{symbol}`` net position), and ``open:{p}``, a hash
  order id -> ``symbol|group|notional|side|open quantity``.

Why per partition: a replica that takes a partition over rebuilds exactly that partition's two
hashes from the open orders and positions it recovered (``rebuild``: delete and write again, one
script, idempotent), and never touches what the other partitions' owners hold, so nothing is
counted twice and what a dead replica held is not lost. The check sums a field over the
partitions (6 by default: a handful of ``HGET``s per order).

Why keyed per order id: a reservation made twice (a record fetched again after a rebalance)
finds its order already there and changes nothing. The caps and what they count are
``oms.domain.global_limits``; ``breach`` there is the script's rule in Python.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from oms.codec import global_limits_from_dict, global_limits_to_dict
from oms.domain.enums import Side
from oms.domain.global_limits import (
    GlobalLimits,
    GlobalLimitsUnavailable,
    GlobalReservation,
    Reserved,
    Usage,
    caps_for,
)
from oms.domain.reasons import RejectReason
from oms.engine.ports import GlobalLimitStore

__all__ = ["RedisGlobalLimits"]

# KEYS[1] the caps hash, KEYS[2..n+1] agg:{p}, KEYS[n+2..2n+1] open:{p}. ARGV[1] n, ARGV[2] how
# many orders, then 7 per order: partition (0-based), order id, symbol, group ("" none),
# notional, side (b/s), quantity. Answers one verdict per order: OK (reserved now), HELD (it
# was already: a record fetched again), or the reason code. The
# amounts are written from ARGV's strings: Lua's own tostring of a large number is 1e+15.
_RESERVE = """
local n = tonumber(ARGV[1])
local function total(field)
  local sum = 0
  for i = 2, n + 1 do
    sum = sum + tonumber(redis.call('HGET', KEYS[i], field) or '0')
  end
  return sum
end
local function cap(field)
  local v = redis.call('HGET', KEYS[1], field)
  if v then return tonumber(v) end
  return nil
end
local out = {}
local a = 3
for r = 1, tonumber(ARGV[2]) do
  local p, id, sym, grp = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local notional, side, qty = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
  a = a + 7
  local agg, open = KEYS[2 + p], KEYS[2 + n + p]
  local verdict = 'HELD'
  if redis.call('HEXISTS', open, id) == 0 then
    verdict = 'OK'
    local amount, q = tonumber(notional), tonumber(qty)
    local limit = cap('n:' .. sym)
    if limit and total('n:' .. sym) + amount > limit then verdict = 'GLOBAL_NOTIONAL_LIMIT' end
    if verdict == 'OK' and grp ~= '' then
      limit = cap('g:' .. grp)
      if limit and total('g:' .. grp) + amount > limit then verdict = 'GLOBAL_NOTIONAL_LIMIT' end
    end
    if verdict == 'OK' then
      limit = cap('p:' .. sym)
      if limit then
        local position = total('q:' .. sym)
        if side == 'b' then
          if position + total('b:' .. sym) + q > limit then verdict = 'GLOBAL_POSITION_LIMIT' end
        elseif position - total('s:' .. sym) - q < -limit then
          verdict = 'GLOBAL_POSITION_LIMIT'
        end
      end
    end
    if verdict == 'OK' then
      redis.call('HINCRBY', agg, 'n:' .. sym, notional)
      if grp ~= '' then redis.call('HINCRBY', agg, 'g:' .. grp, notional) end
      redis.call('HINCRBY', agg, side .. ':' .. sym, qty)
      redis.call('HSET', open, id, sym .. '|' .. grp .. '|' .. notional .. '|' .. side .. '|' .. qty)
    end
  end
  out[r] = verdict
end
return out
"""

# KEYS[1] agg:{p}, KEYS[2] open:{p}; ARGV order id, filled quantity, "1" if the order ended.
# A fill moves its quantity from the open side into the net position; the end gives back the
# notional and what is still open. An unknown order (released already) changes nothing.
_RELEASE = """
local held = redis.call('HGET', KEYS[2], ARGV[1])
if not held then return 0 end
local sym, grp, notional, side, qty = string.match(held, '^(.-)|(.-)|(.-)|(.-)|(.-)$')
local function minus(units)  -- "-" and the digits: HINCRBY refuses "-0"
  if units == '0' then return '0' end
  return '-' .. units
end
local open, filled = tonumber(qty), tonumber(ARGV[2])
if filled > open then filled = open end
if filled > 0 then
  local moved = string.format('%d', filled)
  redis.call('HINCRBY', KEYS[1], side .. ':' .. sym, minus(moved))
  if side == 'b' then
    redis.call('HINCRBY', KEYS[1], 'q:' .. sym, moved)
  else
    redis.call('HINCRBY', KEYS[1], 'q:' .. sym, minus(moved))
  end
  open = open - filled
end
local left = string.format('%d', open)
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], 'n:' .. sym, minus(notional))
  if grp ~= '' then redis.call('HINCRBY', KEYS[1], 'g:' .. grp, minus(notional)) end
  redis.call('HINCRBY', KEYS[1], side .. ':' .. sym, minus(left))
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], sym .. '|' .. grp .. '|' .. notional .. '|' .. side .. '|' .. left)
end
return 1
"""

# KEYS[1] agg:{p}, KEYS[2] open:{p}; ARGV[1] how many orders, 6 each (id, symbol, group,
# notional, side, quantity), then pairs (symbol, net position) to the end.
_REBUILD = """
redis.call('DEL', KEYS[1], KEYS[2])
local m = tonumber(ARGV[1])
local a = 2
for r = 1, m do
  local id, sym, grp, notional, side, qty = ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4], ARGV[a+5]
  a = a + 6
  redis.call('HINCRBY', KEYS[1], 'n:' .. sym, notional)
  if grp ~= '' then redis.call('HINCRBY', KEYS[1], 'g:' .. grp, notional) end
  redis.call('HINCRBY', KEYS[1], side .. ':' .. sym, qty)
  redis.call('HSET', KEYS[2], id, sym .. '|' .. grp .. '|' .. notional .. '|' .. side .. '|' .. qty)
end
while a <= #ARGV do
  redis.call('HINCRBY', KEYS[1], 'q:' .. ARGV[a], ARGV[a + 1])
  a = a + 2
end
return m
"""

_SIDES = {Side.BUY: "b", Side.SELL: "s"}


class RedisGlobalLimits(GlobalLimitStore):
    """The firm-wide caps and what every replica's accounts hold against them, in Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        partitions: int,
        timeout_s: float,
        deployment: str = "",
    ) -> None:
        """Use ``client`` (owned by the caller) for ``partitions`` partitions of ``orders``;
        a call Redis does not answer within ``timeout_s`` raises ``GlobalLimitsUnavailable``."""
        self._client = client
        self._partitions = partitions
        self._timeout_s = timeout_s
        self._prefix = f"globallimit:{deployment}:"
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)
        self._rebuild = client.register_script(_REBUILD)

    def _agg(self, partition: int) -> str:
        return f"{self._prefix}agg:{partition}"

    def _open(self, partition: int) -> str:
        return f"{self._prefix}open:{partition}"

    async def _call(self, call: Any) -> Any:
        """Await ``call`` within the timeout; Redis down or slow is ``GlobalLimitsUnavailable``
        (a script error is not: it propagates as Redis's ``ResponseError``, a bug to see)."""
        try:
            return await asyncio.wait_for(call, self._timeout_s)
        except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
            raise GlobalLimitsUnavailable(f"redis did not answer: {exc!r}") from exc

    # -- the caps ----------------------------------------------------------------------------

    async def set_limits(self, limits: GlobalLimits) -> None:
        """Replace every cap (the JSON and the script's hash in one transaction)."""
        fields: dict[str, str] = {}
        for symbol in limits.symbols:
            caps = caps_for(limits, symbol, "")
            if caps.notional is not None:
                fields[f"n:{symbol}"] = str(caps.notional)
            if caps.position is not None:
                fields[f"p:{symbol}"] = str(caps.position)
        for group in limits.groups:
            cap = caps_for(limits, "", group).group_notional
            if cap is not None:
                fields[f"g:{group}"] = str(cap)
        pipe = self._client.pipeline(transaction=True)
        pipe.set(f"{self._prefix}limits", orjson.dumps(global_limits_to_dict(limits)))
        pipe.delete(f"{self._prefix}caps")
        if fields:
            pipe.hset(f"{self._prefix}caps", mapping=fields)  # type: ignore[arg-type]
        await self._call(pipe.execute())

    async def limits(self) -> GlobalLimits:
        """The caps as last set (none: every cap off)."""
        raw = await self._call(self._client.get(f"{self._prefix}limits"))
        return GlobalLimits() if raw is None else global_limits_from_dict(orjson.loads(raw))

    # -- reservations ------------------------------------------------------------------------

    async def reserve(self, orders: Sequence[GlobalReservation]) -> list[Reserved]:
        """Check and reserve each order in turn, atomically: per order, reserved now (fresh),
        reserved already (a record fetched again), or the cap it would pass. Raises
        ``GlobalLimitsUnavailable``."""
        if not orders:
            return []
        n = self._partitions
        keys = [f"{self._prefix}caps"]
        keys += [self._agg(p) for p in range(n)] + [self._open(p) for p in range(n)]
        args: list[str | int] = [n, len(orders)]
        for order in orders:
            args += (
                order.partition, order.order_id, order.symbol, order.group,
                str(order.notional), _SIDES[order.side], str(order.quantity),
            )  # fmt: skip
        answers = await self._call(self._reserve(keys=keys, args=args))
        return [_reserved(_text(answer)) for answer in answers]

    async def release(
        self, partition: int, order_id: str, *, filled: int = 0, ended: bool = False
    ) -> bool:
        """A fill (``filled`` units into the position) and/or the order's end (its notional and
        open quantity given back). False when the order holds nothing (already released)."""
        keys = [self._agg(partition), self._open(partition)]
        args = [order_id, str(filled), "1" if ended else "0"]
        return bool(await self._call(self._release(keys=keys, args=args)))

    async def rebuild(
        self,
        partition: int,
        open_orders: Sequence[GlobalReservation],
        positions: Mapping[str, int],
    ) -> None:
        """What ``partition``'s accounts hold, written again from what its owner recovered:
        their open orders and net positions (units) by symbol. Other partitions are untouched."""
        args: list[str | int] = [len(open_orders)]
        for order in open_orders:
            args += (
                order.order_id, order.symbol, order.group, str(order.notional),
                _SIDES[order.side], str(order.quantity),
            )  # fmt: skip
        for symbol, quantity in positions.items():
            if quantity:
                args += (symbol, str(quantity))
        keys = [self._agg(partition), self._open(partition)]
        await self._call(self._rebuild(keys=keys, args=args))

    async def usage(self, symbol: str, group: str = "") -> Usage:
        """What every partition holds in ``symbol`` (and ``group``), summed (for reads)."""
        fields = [f"n:{symbol}", f"b:{symbol}", f"s:{symbol}", f"q:{symbol}", f"g:{group}"]
        pipe = self._client.pipeline(transaction=False)
        for p in range(self._partitions):
            pipe.hmget(self._agg(p), fields)
        rows = await self._call(pipe.execute())
        sums = [sum(int(row[i] or 0) for row in rows) for i in range(len(fields))]
        return Usage(*sums)


def _reserved(answer: str) -> Reserved:
    if answer == "OK":
        return Reserved(None, fresh=True)
    if answer == "HELD":
        return Reserved(None, fresh=False)
    return Reserved(RejectReason(answer), fresh=False)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
