"""``GET /api/cluster``: this replica, its partitions of ``orders``, and the owner map.

For operators (``read_cluster``: admin): which replica answers, what it owns now (empty while
a rebalance rebuilds its share), and every live replica of the consumer group as the map in
Redis shows it (name, internal address, partitions, last heartbeat), with the partitions no
live replica holds (a killed replica's, until the group's session timeout hands them on).
"""

from __future__ import annotations

import asyncio
import time

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from oms.api.encoding import iso_time
from oms.api.forwarding import FORWARDER_KEY
from oms.api.health import SETTINGS_KEY
from oms.api.outages import Dependency
from oms.api.problems import DependencyUnavailable


async def get_cluster(request: web.Request) -> web.Response:
    """``GET /api/cluster``."""
    forwarder = request.app.get(FORWARDER_KEY)
    if forwarder is None:
        return _alone(request)
    settings = forwarder.settings
    try:
        async with asyncio.timeout(settings.dependency_timeout_s):
            replicas = await forwarder.owners.replicas()
    except (RedisError, OSError, TimeoutError) as error:
        raise DependencyUnavailable(
            Dependency.REDIS, settings.retry_after_s, f"the owner map could not be read: {error!r}"
        ) from None
    total = settings.orders_partitions
    held = {p for entry in replicas for p in entry.partitions}
    body = {
        "replica": settings.replica_name(),
        "address": forwarder.address,
        "partitions": sorted(forwarder.owned() or ()),
        "partitions_total": total,
        "replicas": [
            {
                "replica": entry.replica,
                "address": entry.address,
                "partitions": sorted(entry.partitions),
                "heartbeat": iso_time(entry.heartbeat),
            }
            for entry in replicas
        ],
        "unowned": sorted(set(range(total)) - held),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _alone(request: web.Request) -> web.Response:
    """An app without an owner map (the unit tests'): one replica owning every partition."""
    settings = request.app[SETTINGS_KEY]
    every = list(range(settings.orders_partitions))
    here = {"replica": settings.replica_name(), "address": settings.advertised_url()}
    body = {
        **here,
        "partitions": every,
        "partitions_total": len(every),
        "replicas": [{**here, "partitions": every, "heartbeat": iso_time(time.time())}],
        "unowned": [],
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_cluster_routes(app: web.Application) -> None:
    """Mount ``/api/cluster``."""
    app.router.add_get("/api/cluster", get_cluster, allow_head=False)
