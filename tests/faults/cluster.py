"""Several replicas under the fault harness's load: hand-offs measured from ``order-events``.

The load and the checks are the harness's (``tests.faults.harness``): a paced REST and Kafka
load through the first replica, then, once every other replica has stopped (so the first owns
every account and reads their true balances), the same comparison of the client's 202s with
MongoDB and ``order-events``.

A hand-off is measured from the outside, on the events the replicas publish: from the fault at
wall-clock time ``at`` to the first event of the moved partitions published after ``gone``, the
moment their old owner could publish no more (its process had exited): only the new owner can
have published it, so its partitions were processing again by then (an event leaves once
durable, so this counts the new owner's store write too: it errs long). The longest pause after
the fault is no such measure: once the hand-off is quicker than the moved partitions' ordinary
gaps between events, the longest one is any later gap (often the one between the load's end and
the clean-up), which read as a 6-7 s hand-off on runs whose partitions had moved in 0.1 s. The
events' Kafka timestamps are the publishing process's clock, the same machine's as the test's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer

from oms.config import Settings
from oms.stream.names import topic_names
from oms.stream.partitioner import partition_of
from tests.credentials import authenticated_session
from tests.faults.harness import (
    FUNDS,
    Load,
    Replica,
    Report,
    last_prices,
    replica_env,
    report,
)
from tests.faults.servers import PrivateServers, free_port

PARTITIONS = 6  # of ``orders`` and ``executions``: 3 replicas own 2 each, 2 own 3 each
SPLIT_DEADLINE_S = 60.0
PAUSE_WINDOW_S = 30.0  # a hand-off is looked for this long after the fault


@dataclass
class Cluster:
    """Replicas of one run (one database, one consumer group, one set of topics) on the private
    servers; the first runs the simulated price feed and takes the load."""

    servers: PrivateServers
    logs: Path
    env: dict[str, str] = field(init=False)
    replicas: list[Replica] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = {
            **replica_env(self.servers, uuid.uuid4().hex[:8]),
            "OMS_ORDERS_PARTITIONS": str(PARTITIONS),
            "OMS_EXECUTIONS_PARTITIONS": str(PARTITIONS),
            "OMS_EVENTS_PARTITIONS": str(PARTITIONS),
        }

    @property
    def settings(self) -> Settings:
        """The run's settings (the first replica's)."""
        return self.replicas[0].settings

    async def add(self) -> Replica:
        """Start one more replica on its own port and wait until it is ready."""
        n = len(self.replicas)
        env = {**self.env, "OMS_HTTP_PORT": str(free_port()), "OMS_REPLICA": f"r{n}"}
        if n:
            env["OMS_SIMULATED_FEED"] = "false"
        replica = Replica(env, self.logs / f"serve-{n}.log")
        self.replicas.append(replica)
        await replica.start()
        return replica

    def kill_all(self) -> None:
        """Whatever still runs (a scenario that failed part-way) ends with the test."""
        for replica in self.replicas:
            process = replica.process
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)


async def owned(replica: Replica) -> set[int]:
    """The partitions of ``orders`` the replica consumes (its consumer lag's labels)."""
    topic = f'topic="{topic_names(replica.settings).orders}"'
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=5)) as http:
        text = await (await http.get(f"{replica.base}/metrics")).text()
    return {
        int(line.split('partition="')[1].split('"')[0])
        for line in text.splitlines()
        if line.startswith("oms_consumer_lag{") and topic in line
    }


REBALANCE_FIGURES = ("rebalances_total", "rebalance_pause_seconds", "rebuild_seconds")


async def rebalance_figures(replica: Replica) -> dict[str, float]:
    """The replica's own account of its last rebalance (``/metrics``)."""
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=5)) as http:
        text = await (await http.get(f"{replica.base}/metrics")).text()
    figures: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.removeprefix("oms_") in REBALANCE_FIGURES:
            figures[name.removeprefix("oms_")] = float(value)
    return figures


async def split(replicas: list[Replica]) -> list[set[int]]:
    """Wait until the replicas own every partition between them, none twice; their shares."""
    deadline = time.monotonic() + SPLIT_DEADLINE_S
    while True:
        shares = [await owned(replica) for replica in replicas]
        together = [p for share in shares for p in share]
        if sorted(together) == list(range(PARTITIONS)) and all(shares):
            return shares
        assert time.monotonic() < deadline, f"partitions never split: {shares}"
        await asyncio.sleep(0.3)


async def open_spread_accounts(base: str) -> list[str]:
    """Funded accounts, at least one on every partition (ids are random: open until so)."""
    accounts: list[str] = []
    covered: set[int] = set()
    async with authenticated_session(timeout=aiohttp.ClientTimeout(total=10)) as http:
        while len(covered) < PARTITIONS or len(accounts) < 2 * PARTITIONS:
            assert len(accounts) < 20 * PARTITIONS, "accounts never covered every partition"
            account = f"ha-{uuid.uuid4().hex[:8]}"
            body = {"account_id": account, "balances": FUNDS}
            async with http.post(f"{base}/api/accounts", json=body) as response:
                assert response.status == 201, await response.text()
            accounts.append(account)
            covered.add(partition_of(account, PARTITIONS))
    return accounts


async def event_times(settings: Settings) -> list[tuple[float, int]]:
    """Every record on ``order-events`` so far: its timestamp (s) and its account's partition
    of ``orders``."""
    topic = topic_names(settings).order_events
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + 10
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"no partitions of {topic}"
            await asyncio.sleep(0.1)
        assigned = list(consumer.assignment())
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        found: list[tuple[float, int]] = []
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    account = (message.key or b"").decode()
                    found.append((message.timestamp / 1000, partition_of(account, PARTITIONS)))
        return found
    finally:
        await consumer.stop()


def resumed_after(
    times: list[tuple[float, int]], partitions: set[int], at: float, gone: float
) -> float:
    """Seconds from the fault at ``at`` to the first event of ``partitions`` published after
    ``gone`` (when their old owner's process had exited): when the new owner had them going."""
    after = [t for t, p in times if p in partitions and gone < t <= at + PAUSE_WINDOW_S]
    assert after, f"no event of partitions {sorted(partitions)} after their old owner was gone"
    return min(after) - at


def longest_pause(times: list[tuple[float, int]], at: float) -> float:
    """The longest pause in any one partition's events within the window after ``at``."""
    longest = 0.0
    for partition in range(PARTITIONS):
        after = sorted(t for t, p in times if p == partition and at < t <= at + PAUSE_WINDOW_S)
        previous = at
        for t in after:
            longest = max(longest, t - previous)
            previous = t
    return longest


@dataclass
class Fault:
    """What a fault did: when (wall clock), which partitions it moved, and when their old owner
    could publish no more (its exit; the fault's time if it moved none)."""

    at: float
    moved: set[int]
    gone: float = 0.0


ClusterFault = Callable[["ClusterRun"], Awaitable[Fault]]


@dataclass
class ClusterRun:
    """What a fault may use: the cluster, the servers and the load."""

    cluster: Cluster
    load: Load


async def cluster_scenario(
    cluster: Cluster,
    fault: ClusterFault,
    *,
    replicas: int = 2,
    seconds: float = 10.0,
    fault_at_s: float = 3.0,
    kafka_per_s: float = 20.0,
) -> tuple[Report, Fault, list[tuple[float, int]]]:
    """Start ``replicas``, run the load through the first, inject ``fault`` at ``fault_at_s``;
    once the load ended, stop every other replica, settle and check through the first. The
    report, what the fault did, and the event times (for the hand-off figures)."""
    for _ in range(replicas):
        await cluster.add()
    await split(cluster.replicas)
    first = cluster.replicas[0]
    accounts = await open_spread_accounts(first.base)
    prices = await last_prices(first.base)
    load = Load(first.base, first.settings, accounts, prices, kafka_per_s=kafka_per_s)
    running = asyncio.create_task(load.run(seconds))
    await asyncio.sleep(fault_at_s)
    done = await fault(ClusterRun(cluster, load))
    await running
    # The first replica's last rebalance is the fault's (the others stop only below).
    print(f"first_replica_after_fault: {await rebalance_figures(first)}")
    for other in cluster.replicas[1:]:
        took = await other.stop()
        print(f"stopped {other.base} in {took:.2f}s")
    try:
        await first.ready()
        result = await report(first, load)
        times = await event_times(first.settings)
    finally:
        await first.stop()
    for line in result.lines():
        print(line)
    return result, done, times
