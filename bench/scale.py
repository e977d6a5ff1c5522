"""Several replicas: throughput with 1, 2 and 3 of them, and the hand-offs under load.

    python bench/scale.py --seconds 20

Every replica is a real ``oms serve`` (``bench/e2e.py``'s ``Server``) on the real local servers,
in a consumer group, topics and database of the run's own (removed afterwards); ``orders`` has
the default six partitions. Prints ``name: value`` lines only and asserts nothing.

- ``orders_per_s_<k>_replicas``: marketable orders produced straight onto ``orders`` for
  ``--seconds`` (Kafka is the path more replicas share: each consumes its partitions; REST
  would first measure whichever replica a client picks), over the time until every one of them
  had its terminal event on ``order-events``; with the CPU each process spent per order and the
  cores the whole run kept busy (``cpu_cores_busy``) and the load average. On a 2-core machine
  the ratio between the rows is bounded by the cores, not by the replicas: read it beside them.
- The hand-offs, with two replicas under a paced load (``--rate`` orders/s onto ``orders``):
  the second replica SIGTERMed (a rolling deploy), started again (a join), then SIGKILLed (a
  lost node, never restarted). Each is measured on the events: from the fault to the first
  event of the partitions that moved published after the old owner's process had exited (only
  the new owner can have published it: ``handoff_term_s``, ``handoff_kill_s``); for the join,
  the longest pause of any partition (``handoff_join_s``). The replicas' own figures (``/metrics``:
  ``oms_rebalance_pause_seconds``, ``oms_rebuild_seconds``) are printed beside them.
- ``lost``: orders Kafka acknowledged that never had a terminal event; ``duplicated``: orders
  with more than one terminal event (both counted once every order ended, or after a bound).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from e2e import (  # bench/e2e.py
    HOST,
    ROOT,
    CpuMeter,
    EventWatch,
    Placer,
    Server,
    _open_accounts,
    _orders,
    _poll,
    _wait_prices,
)

from oms.config import Settings
from oms.store.mongo_connection import store_databases
from oms.stream.names import topic_names
from oms.stream.partitioner import partition_of
from oms.stream.security import aiokafka_security
from oms.stream.topics import delete_topics
from tests.ports import free_port

PARTITIONS = 6  # Settings' default for orders: what a replica's share is counted in
SPLIT_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 120.0
TERMINAL = (b'"OrderSettled"', b'"OrderCancelled"', b'"OrderRejected"')
PACED_BATCH_S = 0.05  # the paced load produces one batch this often


class Replica(Server):
    """One replica of the run: the first runs the simulated feed, the others read ``prices``."""

    def __init__(self, settings: Settings, feed: bool) -> None:
        super().__init__(settings)
        self.feed = feed

    def environ(self) -> dict[str, str]:
        return {**super().environ(), "OMS_SIMULATED_FEED": "true" if self.feed else "false"}

    def kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)


class Run:
    """The replicas of one run (topics, group and database of its own)."""

    def __init__(self, tag: str) -> None:
        run = f"{tag}-{uuid.uuid4().hex[:6]}"
        self.settings = Settings.from_env().replace(
            http_host=HOST,
            topic_suffix=f"scale-{run}",
            kafka_group_id=f"oms-scale-{run}",
            mongo_database=f"oms_scale_{run.replace('-', '_')}",
        )
        self.replicas: list[Replica] = []
        self.logs = Path(f"/tmp/oms-scale-{run}")

    async def add(self) -> Replica:
        n = len(self.replicas)
        replica = Replica(self.settings.replace(http_port=free_port()), feed=not n)
        self.replicas.append(replica)
        await replica.start(Path(f"{self.logs}-{n}.log"))
        return replica

    async def restart(self, n: int) -> None:
        replica = self.replicas[n]
        await replica.start(Path(f"{self.logs}-{n}.log"))

    def stop(self) -> None:
        for replica in reversed(self.replicas):
            replica.stop()

    async def remove(self) -> None:
        from pymongo import AsyncMongoClient  # noqa: PLC0415

        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.settings.mongo_url)
        with contextlib.suppress(Exception):
            for dropped in store_databases(self.settings.mongo_database):
                await mongo.drop_database(dropped)
        await mongo.close()
        with contextlib.suppress(Exception):
            names = topic_names(self.settings)
            await delete_topics(self.settings, [s.name for s in names.specs(self.settings)])


async def metrics(http: aiohttp.ClientSession, replica: Server) -> dict[str, float]:
    """``/metrics`` of a replica: unlabelled figures by name, and its partitions of orders."""
    async with http.get(f"{replica.base}/metrics", headers=replica.headers) as response:
        text = await response.text()
    orders = f'topic="{topic_names(replica.settings).orders}"'
    figures: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("oms_consumer_lag{") and orders in line:
            partition = line.split('partition="')[1].split('"')[0]
            figures[f"owns_{partition}"] = 1.0
        elif line.startswith("oms_") and "{" not in line:
            name, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                figures[name] = float(value)
    return figures


def owned(figures: dict[str, float]) -> set[int]:
    return {int(k.removeprefix("owns_")) for k in figures if k.startswith("owns_")}


async def split(http: aiohttp.ClientSession, replicas: list[Replica]) -> list[set[int]]:
    """Wait until every replica owns partitions and together all of them, once each."""
    deadline = time.monotonic() + SPLIT_TIMEOUT_S
    while True:
        shares = [owned(await metrics(http, r)) for r in replicas]
        together = sorted(p for share in shares for p in share)
        if together == list(range(PARTITIONS)) and all(shares):
            return shares
        if time.monotonic() > deadline:
            raise RuntimeError(f"partitions never split between the replicas: {shares}")
        await asyncio.sleep(0.3)


def _cpu_meter(replicas: list[Replica], devenv: Path) -> CpuMeter:
    meter = CpuMeter.of_run(replicas[0].pid, devenv)
    pids = {k: v for k, v in meter.pids.items() if k != "service"}
    pids |= {f"service_{n}": r.pid for n, r in enumerate(replicas)}
    return CpuMeter(pids)


async def throughput(k: int, args: argparse.Namespace) -> None:
    """``orders_per_s_<k>_replicas`` and where the CPU went."""
    run = Run(f"t{k}")
    try:
        for _ in range(k):
            await run.add()
        first = run.replicas[0]
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), headers=first.headers
        ) as http:
            await _wait_prices(http, first.base)
            await split(http, run.replicas)
            accounts = [f"scale-{n}-{uuid.uuid4().hex[:6]}" for n in range(args.accounts)]
            await _open_accounts(http, first.base, accounts)
            meter = _cpu_meter(run.replicas, Path(args.devenv))
            topic = topic_names(run.settings).order_events
            async with (
                Placer("kafka", first, http) as placer,
                EventWatch(run.settings, topic, TERMINAL) as watch,
            ):
                load_before = os.getloadavg()[0]
                before = meter.sample()
                started = time.monotonic()
                placed, offset = 0, 0
                while time.monotonic() - started < args.seconds:
                    if placed - len(watch.seen) >= args.window:
                        await asyncio.sleep(0.05)
                        continue
                    placed += len(await placer.place(_orders(accounts, 500, offset)))
                    offset += 500
                await _poll(lambda: len(watch.seen) >= placed, DRAIN_TIMEOUT_S, 0.05)
                elapsed = time.monotonic() - started
                cpu = CpuMeter.per_order(before, meter.sample(), placed, elapsed)
                ended = len(watch.seen)
        print(f"orders_per_s_{k}_replicas: {min(placed, ended) / elapsed:.0f}")
        print(f"orders_placed_{k}_replicas: {placed} (terminal: {ended})")
        print(f"cpu_cores_busy_{k}_replicas: {cpu.pop('cpu_cores_busy'):.2f}")
        cpu.pop("engine_bound_orders_per_s")  # one engine's bound: each replica here is one
        for name, figure in sorted(cpu.items()):
            print(f"{name}_{k}_replicas: {figure:.0f}")
        print(
            f"load_average_1m_{k}_replicas: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
        )
    finally:
        run.stop()
        await run.remove()


class PacedLoad:
    """Marketable orders onto ``orders`` at ``rate`` a second, in small batches, until stopped;
    every order id Kafka acknowledged."""

    def __init__(self, placer: Placer, accounts: list[str], rate: float) -> None:
        self.placer = placer
        self.accounts = accounts
        self.rate = rate
        self.acked: list[str] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        started, offset = time.monotonic(), 0
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self.rate) - offset
            if due > 0:
                self.acked += await self.placer.place(_orders(self.accounts, due, offset))
                offset += due
            await asyncio.sleep(PACED_BATCH_S)

    def stop(self) -> None:
        self._stop.set()


async def order_events(settings: Settings) -> tuple[list[tuple[float, int]], Counter[str]]:
    """Every record on ``order-events``: (timestamp s, its account's partition); and terminal
    events per order id."""
    consumer = AIOKafkaConsumer(
        topic_names(settings).order_events,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **aiokafka_security(settings),
    )
    await consumer.start()
    try:
        await _poll(lambda: bool(consumer.assignment()), 30, 0.05)
        assigned = list(consumer.assignment())
        ends = await consumer.end_offsets(assigned)
        times: list[tuple[float, int]] = []
        terminal: Counter[str] = Counter()
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batches.values():
                for record in records:
                    account = (record.key or b"").decode()
                    times.append((record.timestamp / 1000, partition_of(account, PARTITIONS)))
                    value = record.value or b""
                    if any(kind in value[:40] for kind in TERMINAL):
                        terminal[orjson.loads(value)["order_id"]] += 1
        return times, terminal
    finally:
        await consumer.stop()


def resumed_after(
    times: list[tuple[float, int]], moved: set[int], at: float, gone: float, until: float
) -> float:
    """From the fault at ``at`` to the first event of ``moved`` published after ``gone`` (the old
    owner's exit: only the new owner can have published it). Not the end of the longest pause
    after ``at``: once a hand-off is quicker than the partitions' ordinary gaps between events,
    that is any later gap (``tests/faults/cluster.py`` measures it the same way)."""
    after = [t for t, p in times if p in moved and gone < t <= until]
    return min(after, default=float("nan")) - at


def longest_pause(times: list[tuple[float, int]], at: float, until: float) -> float:
    """The longest pause in any one partition's events between ``at`` and ``until``."""
    longest = 0.0
    for partition in range(PARTITIONS):
        previous = at
        for t in sorted(t for t, p in times if p == partition and at < t <= until):
            longest = max(longest, t - previous)
            previous = t
    return longest


async def _fault(
    http: aiohttp.ClientSession, victim: Replica, fault: Callable[[], None]
) -> tuple[set[int], float, float]:
    """Apply ``fault`` (a stop or a kill, each returning once the process has exited) to
    ``victim``: the partitions it owned, when the fault began and when it was gone."""
    moved = owned(await metrics(http, victim))
    at = time.time()
    await asyncio.to_thread(fault)  # the paced load goes on meanwhile
    return moved, at, time.time()


async def handoffs(args: argparse.Namespace) -> None:
    """SIGTERM, join and SIGKILL of the second of two replicas under a paced load."""
    run = Run("h")
    try:
        first, second = await run.add(), await run.add()
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), headers=first.headers
        ) as http:
            await _wait_prices(http, first.base)
            await split(http, run.replicas)
            accounts = [f"scale-h{n}-{uuid.uuid4().hex[:6]}" for n in range(args.accounts)]
            await _open_accounts(http, first.base, accounts)
            async with Placer("kafka", first, http) as placer:
                load = PacedLoad(placer, accounts, args.rate)
                running = asyncio.create_task(load.run())
                await asyncio.sleep(args.phase_s)
                term_moved, term_at, term_gone = await _fault(http, second, second.stop)
                await asyncio.sleep(args.phase_s)
                term_figures = await metrics(http, first)
                join_at = time.time()
                await run.restart(1)
                await split(http, run.replicas)
                await asyncio.sleep(args.phase_s)
                join_figures = await metrics(http, first)
                kill_moved, kill_at, kill_gone = await _fault(http, second, second.kill)
                await asyncio.sleep(max(args.phase_s, 12.0))  # the session timeout, and more
                kill_figures = await metrics(http, first)
                load.stop()
                await running
            acked = set(load.acked)
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while True:
                times, terminal = await order_events(run.settings)
                if acked <= set(terminal) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(1.0)
        print(f"handoff_orders: {len(acked)} at {args.rate:g}/s")
        print(f"lost: {len(acked - set(terminal))}")
        print(f"duplicated: {sum(1 for n in terminal.values() if n > 1)}")
        term_s = resumed_after(times, term_moved, term_at, term_gone, join_at)
        print(f"handoff_term_s: {term_s:.2f}")
        print(f"handoff_join_s: {longest_pause(times, join_at, kill_at):.2f}")
        kill_s = resumed_after(times, kill_moved, kill_at, kill_gone, time.time())
        print(f"handoff_kill_s: {kill_s:.2f}")
        for name, figures in (
            ("term", term_figures),
            ("join", join_figures),
            ("kill", kill_figures),
        ):
            pause = figures.get("oms_rebalance_pause_seconds", float("nan"))
            rebuild = figures.get("oms_rebuild_seconds", float("nan"))
            print(f"survivor_{name}_pause_s: {pause:.2f} (rebuild {rebuild:.2f})")
    finally:
        run.stop()
        await run.remove()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="placing, per replica count")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--window", type=int, default=20_000, help="orders placed, not terminal")
    parser.add_argument("--accounts", type=int, default=24)
    parser.add_argument("--rate", type=float, default=200.0, help="paced load of the hand-offs")
    parser.add_argument("--phase-s", type=float, default=5.0, help="load between hand-offs")
    parser.add_argument("--skip-handoffs", action="store_true")
    parser.add_argument(
        "--devenv", default=str(ROOT / ".devenv"), help="where make up keeps the servers' pids"
    )
    return parser.parse_args()


async def main() -> None:
    args = _arguments()
    print(f"machine_cores: {os.cpu_count()}")
    for k in args.replicas:
        await throughput(k, args)
    if not args.skip_handoffs:
        await handoffs(args)


if __name__ == "__main__":
    asyncio.run(main())
