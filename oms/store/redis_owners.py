"""The owner map in Redis (``oms.engine.owners``): partition -> replica, with a TTL per entry.

Keys, under ``owners:{deployment}:{group}:`` (a deployment's suffix and the consumer group, so
test runs and deployments sharing one Redis never see each other):

- ``p:{partition}``: the owner (``{"replica", "address"}``) for ``owner_ttl_s``, rewritten every
  heartbeat by the replica Kafka gave it to: one GET answers "who owns it".
- ``r:{address}``: a replica's entry (name, address, partitions, last heartbeat), same TTL.
- ``replicas``: a set of the addresses that wrote an entry (an entry that expired is dropped
  from it when the map is listed), so ``/api/cluster`` needs no SCAN of the keyspace.

A heartbeat is one script: the entry, its partitions, and the give-up of partitions this
replica no longer owns (only where the value is still its own: a partition another replica took
meanwhile keeps its new owner).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import redis.asyncio as aioredis

from oms.engine.owners import Owner, OwnerMap, ReplicaEntry

# KEYS[1] the entry's key, KEYS[2] the set of replicas, KEYS[3 .. 2+ARGV[4]] the partitions
# owned, the rest the partitions given up. ARGV: the entry, the TTL (ms), the address, how many
# are owned, the owner's value.
_PUBLISH = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
local owned = tonumber(ARGV[4])
for i = 3, 2 + owned do
  redis.call('SET', KEYS[i], ARGV[5], 'PX', ARGV[2])
end
for i = 3 + owned, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[5] then
    redis.call('DEL', KEYS[i])
  end
end
return owned
"""
# KEYS[1] the entry's key, KEYS[2] the set, the rest partitions; ARGV the address, the value.
_WITHDRAW = """
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2] then
    redis.call('DEL', KEYS[i])
  end
end
return 1
"""


def _owner_value(owner: Owner) -> bytes:
    return orjson.dumps({"replica": owner.replica, "address": owner.address})


class RedisOwnerMap(OwnerMap):
    """``OwnerMap`` in the shared Redis."""

    def __init__(
        self, client: aioredis.Redis, *, deployment: str, group: str, ttl_s: float
    ) -> None:
        """``deployment`` and ``group`` scope the keys; entries live ``ttl_s`` unless refreshed."""
        self._client = client
        self._prefix = f"owners:{deployment}:{group}:"
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._publish = client.register_script(_PUBLISH)
        self._withdraw = client.register_script(_WITHDRAW)

    def _partition(self, partition: int) -> str:
        return f"{self._prefix}p:{partition}"

    def _entry(self, address: str) -> str:
        return f"{self._prefix}r:{address}"

    async def publish(self, entry: ReplicaEntry, released: Iterable[int]) -> None:
        """Record the entry and its partitions for a TTL; give up ``released`` where still ours."""
        owned = sorted(entry.partitions)
        gone = sorted(set(released) - entry.partitions)
        keys = [
            self._entry(entry.address),
            self._prefix + "replicas",
            *(self._partition(p) for p in owned),
            *(self._partition(p) for p in gone),
        ]
        document = {
            "replica": entry.replica,
            "address": entry.address,
            "partitions": owned,
            "heartbeat": entry.heartbeat,
        }
        args: list[bytes | str | int] = [
            orjson.dumps(document),
            self._ttl_ms,
            entry.address,
            len(owned),
            _owner_value(entry.owner),
        ]
        await self._publish(keys=keys, args=args)

    async def withdraw(self, entry: ReplicaEntry) -> None:
        """Remove the entry, and its partitions where they are still its own."""
        keys = [
            self._entry(entry.address),
            self._prefix + "replicas",
            *(self._partition(p) for p in sorted(entry.partitions)),
        ]
        await self._withdraw(keys=keys, args=[entry.address, _owner_value(entry.owner)])

    async def owner(self, partition: int) -> Owner | None:
        """The partition's live owner, in one GET."""
        raw = await self._client.get(self._partition(partition))
        if raw is None:
            return None
        value = orjson.loads(raw)
        return Owner(str(value["replica"]), str(value["address"]))

    async def replicas(self) -> list[ReplicaEntry]:
        """Every replica whose entry is alive; the set forgets the expired ones."""
        held = await self._client.smembers(self._prefix + "replicas")
        members = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in held)
        if not members:
            return []
        values = await self._client.mget([self._entry(m) for m in members])
        live: list[ReplicaEntry] = []
        expired: list[str] = []
        for address, raw in zip(members, values, strict=True):
            if raw is None:
                expired.append(address)
                continue
            value = orjson.loads(raw)
            live.append(
                ReplicaEntry(
                    replica=str(value["replica"]),
                    address=str(value["address"]),
                    partitions=frozenset(int(p) for p in value["partitions"]),
                    heartbeat=float(value["heartbeat"]),
                )
            )
        if expired:
            await self._client.srem(self._prefix + "replicas", *expired)
        return live
