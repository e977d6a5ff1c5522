"""End-to-end benchmark: a real ``oms serve`` on the real servers (Kafka, Redis, FerretDB).

    python bench/e2e.py --via rest --seconds 60 --rate 1000

Starts ``oms serve`` as a subprocess on a free loopback port with topics, consumer group and
database of its own (all removed afterwards), and prints ``name: value`` lines only; it never
asserts a timing. Every phase is bounded in count and time, so the run stops by itself.

- ``orders_per_s``: orders placed and settled, sustained: marketable orders placed for
  ``--seconds`` (over REST, ``--concurrency`` POSTs in flight, or produced straight onto the
  ``orders`` topic in batches), at most ``--window`` of them not yet terminal; the rate is the
  number placed over the time from the first placement until every one of them is terminal and
  durable: its terminal event (``OrderSettled``, ``OrderCancelled``, ``OrderRejected``) is on
  ``order-events``, which the service publishes only once MongoDB has the order's last document.
  Completion is watched on that topic, not by querying MongoDB: FerretDB on SQLite answers a
  filtered count by scanning every document (~2.8 s of its CPU at 30,000 orders), so polling it
  would slow down the very writes being measured. MongoDB is counted once, after the clock
  (``terminal_count_s``: how long that took, the latency phase starting after it).
- ``p50_ms`` / ``p99_ms``: from the moment an order was due (POST sent, or produce called) to
  its ``OrderAccepted`` event read back from ``order-events`` (published once durable), with
  orders offered at a fixed ``--rate``
  for ``--latency-seconds`` (open loop: each order is due at its slot whatever the others do,
  so a stall shows in the figures rather than slowing the offer). An order not seen accepted
  within 30 s of the last one's slot counts as infinitely late (``latency_seen_accepted``
  says how many were): ``inf`` then, not the figure of those that got through.
- ``leg_entry_*``, ``leg_durable_*``, ``leg_out_*`` (p50 and p99, ms): where that latency goes,
  from the event's own times. Entry: due until the engine applied ``OrderAccepted`` (its ``at``):
  the placement into Kafka, the service's consumer and the engine. Durable: until the service
  handed the event to its producer (the record's CreateTime): the journal, the MongoDB write
  (an event leaves only once durable) and, for an order that ends at once, the rest of its life.
  Out: until this process read it back from ``order-events``.
- ``leg_post_*``: from the moment an order was due to its 202 (REST: the door's validation,
  Redis claim, produce to ``orders`` acknowledged, cache, and the HTTP round trip) or to its
  produce being acknowledged (Kafka), per order, by this process's clock.
- ``ingest_room_wait_share``, ``barrier_<step>_share``, ``ingest_commits``: during the
  throughput phase, the share of its time the service's ingestion waited for room
  (``OMS_INGEST_MAX_IN_FLIGHT`` records handed over, not committed), the share each step of the
  commit barrier took (engine idle, store durable, order events: one after another), and how
  many commits it made (``/metrics``' ``oms_ingest_*`` counters). Read together: where the Kafka
  path's throughput waits.
- ``leg_door_*``, ``leg_claim_*``, ``leg_produce_*``, ``leg_cache_*``, ``leg_consume_*``,
  ``leg_engine_*``, ``leg_to_write_*``, ``leg_write_*``, ``leg_publish_*``: the service's own
  legs during that phase (``/metrics``' ``oms_order_leg_seconds{leg}``, ``oms.legs``, read on
  the engine's port and each door process's): the door's handler time of a POST (REST), and
  within it the Redis claim, the produce to ``orders`` acknowledged and the Redis cache write;
  the ``orders`` record's timestamp to the ingestion's fetch; that fetch to risk's decision
  (the dispatcher's queue and the actors); an order's last change to the start of the write
  that holds it; that write; the durable batch reaching the event sink to its hand-over to
  the producer. Read from histogram buckets, interpolated within a bucket as Prometheus's
  ``histogram_quantile`` does (bounds 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 40, 50 ms...).
- ``store_writes``, ``store_write_mean_ms``, ``store_write_p50_le_ms``,
  ``store_write_p99_le_ms``: during that phase, the service's inserts into ``orders`` and how
  long they took (its ``/metrics`` histogram ``oms_store_write_duration_seconds``: the count,
  the mean, and the bucket bound under which half and 99% of them finished). With the default
  projection (``behind``) they follow the recovery log's write, which is the ``write`` leg:
  no event waits for them; with ``OMS_STORE_PROJECTION=inline`` they are in ``leg_durable``.
- ``latency_cpu_cores_busy``, ``latency_cpu_us_per_order_<process>``: as below, over the
  latency phase (from its first order due until the last one was seen accepted): how busy the
  machine is at the offered rate, where a queue at any process shows in the p99.
- ``--timeline FILE`` (a diagnostic, no figure printed): the latency phase as a CSV, one row per
  100 ms step of due times: the orders due in it, their latency's p50, p99 and max, each leg's
  max, and each process's CPU (ms) in that step, to see which process was busy when a step's
  orders were late.
- ``service_gc_pauses_over_10ms``, ``loadgen_gc_pauses_over_10ms``, ``loadgen_gc_pause_max_ms``:
  during that phase, the garbage collections of over 10 ms of the service's processes (engine
  and doors: ``/metrics``' ``oms_gc_pause_seconds``) and of this one, and this one's longest. A
  collection stops every thread of its process: one in this process delays its sends and its
  reads as much as one in the service would, and lands in ``p99_ms`` all the same.
- ``machine_probe_before_ms``, ``machine_probe_after_ms`` and ``cpu_steal_share``: how fast
  this machine was (CPU ms of a fixed piece of Python before and after the run; it moves by itself
  between phases) and the share of its cores' time a hypervisor gave to someone else during
  the throughput phase. Figures compare only between runs whose probes agree.
- ``cpu_us_per_order_<process>`` and ``cpu_cores_busy``: CPU time each process of the run
  (``service``, ``loadgen`` = this benchmark, and the servers ``make up`` started) spent per
  order placed during the throughput phase, and the cores all of them kept busy on average:
  on a small machine the parts share the cores, and this shows which part takes them.
  ``cpu_us_per_order_all`` is their sum and ``cpu_bound_orders_per_s`` the orders a second the
  machine's cores allow at that sum: a throughput target above it cannot be met at this CPU
  cost per order, however the work is scheduled (the latency phase prints its sum too).
  ``engine_bound_orders_per_s`` is the same for the engine's process alone: its work runs on
  one event loop, so one core is all it can use, whatever the machine has.
- ``kafka_ceiling_per_s``: aiokafka alone, the producer of the service (acks=all, idempotent)
  and a consumer, producing and consuming as many records of the size of a ``PlaceOrder`` as
  orders were placed (at most ``--ceiling-max``).
- ``store_ceiling_per_s``: ``bench/store.py``'s ``store_ceiling``, batched inserts of the same
  number of settled orders' documents.
- ``ratio_to_ceiling``: ``orders_per_s`` over the slower of the two ceilings.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from kafka_loadgen import EventReader  # bench/kafka_loadgen.py  # noqa: E402
from store import store_ceiling  # bench/store.py  # noqa: E402

from oms.config import Settings  # noqa: E402
from oms.domain.access import Role  # noqa: E402
from oms.domain.commands import PlaceOrder  # noqa: E402
from oms.domain.enums import OrderType, Side, TimeInForce  # noqa: E402
from oms.domain.order_ids import client_order_id_order  # noqa: E402
from oms.loadgen import FUNDS, order_body  # noqa: E402
from oms.store.api_keys import create_key  # noqa: E402
from oms.store.mongo_connection import store_databases  # noqa: E402
from oms.stream.codecs import encode_command  # noqa: E402
from oms.stream.command_bus import KafkaCommandBus  # noqa: E402
from oms.stream.names import topic_names  # noqa: E402
from oms.stream.partitioner import reliable_producer  # noqa: E402
from oms.stream.security import aiokafka_security  # noqa: E402
from oms.stream.topics import TopicSpec, delete_topics, ensure_topics  # noqa: E402
from tests.ports import free_port  # noqa: E402

HOST = "127.0.0.1"  # loopback only
SIZES = {"BTC-USD": Decimal("0.001"), "ETH-USD": Decimal("0.01"), "SOL-USD": Decimal("0.1")}
START_TIMEOUT_S = 90.0
DRAIN_TIMEOUT_S = 120.0
KAFKA_BATCH = 500


class CpuMeter:
    """CPU seconds used by each process of the run (Linux ``/proc``): where the machine's cores go.

    The servers are the ones ``make up`` started (their pid files under ``.devenv/run``, or
    ``--devenv``); a process that cannot be read is left out of the figures.
    """

    NAMES = ("service", "doors", "loadgen", "kafka", "ferretdb", "redis")

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    @classmethod
    def of_run(cls, service_pid: int, devenv: Path) -> CpuMeter:
        pids = {"service": service_pid, "loadgen": os.getpid()}
        for name in ("kafka", "ferretdb", "redis"):
            with contextlib.suppress(OSError, ValueError):
                pids[name] = int((devenv / "run" / f"{name}.pid").read_text().strip())
        return cls(pids)

    def sample(self) -> dict[str, float]:
        """CPU seconds (user + system) each process has used so far."""
        used = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError, ValueError, IndexError):
                # Fields after the command name (which may hold spaces): utime, stime are 14, 15.
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                used[name] = (int(fields[11]) + int(fields[12])) / self._tick
        if "service" in self.pids:  # --http-workers: the door processes oms serve runs
            used["doors"] = self._children(self.pids["service"])
        return used

    def _children(self, pid: int) -> float:
        """CPU seconds the live children of ``pid`` have used (a restarted one starts at 0)."""
        total = 0.0
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            for child in children:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    fields = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()
                    total += (int(fields[11]) + int(fields[12])) / self._tick
        return total

    @staticmethod
    def per_order(
        before: dict[str, float], after: dict[str, float], orders: int, seconds: float
    ) -> dict[str, float]:
        """``cpu_us_per_order_<name>``, their sum (``_all``), the orders a second the machine's
        cores would allow at that sum (``cpu_bound_orders_per_s``) and the engine process's one
        core at its own (``engine_bound_orders_per_s``), and ``cpu_cores_busy`` between two
        samples."""
        spent = {name: after[name] - before[name] for name in after if name in before}
        figures = {f"cpu_us_per_order_{n}": 1e6 * cpu / max(1, orders) for n, cpu in spent.items()}
        every = 1e6 * sum(spent.values()) / max(1, orders)
        figures["cpu_us_per_order_all"] = every
        cores = os.cpu_count() or 1
        figures["cpu_bound_orders_per_s"] = 1e6 * cores / every if every > 0 else float("nan")
        engine = figures.get("cpu_us_per_order_service", 0.0)
        figures["engine_bound_orders_per_s"] = 1e6 / engine if engine > 0 else float("nan")
        figures["cpu_cores_busy"] = sum(spent.values()) / seconds if seconds > 0 else float("nan")
        return figures


def machine_probe_ms() -> float:
    """CPU milliseconds a fixed piece of pure Python takes here (the best of three).

    This machine's speed moves by itself: the same commit and command did 2,065 and then 1,138
    orders/s ten minutes apart, every process's CPU per order up together (issue 19). Printed
    before and after a run, it says which phase the run's figures come from (about 25 ms when
    the machine is fast); only runs whose probes agree compare.
    """
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        sum(i * i for i in range(400_000))
        best = min(best, time.process_time() - started)
    return 1000 * best


def steal_ticks() -> tuple[int, int]:
    """``(steal, total)`` CPU ticks of the machine so far (``/proc/stat``; zeros elsewhere): the
    time a virtual machine's cores were running someone else."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return fields[7], sum(fields[:8])
    return 0, 0


async def _poll(ready: Callable[[], bool], timeout_s: float, step_s: float = 0.1) -> bool:
    """Wait until ``ready()`` or ``timeout_s``; whether it is ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return True
        await asyncio.sleep(step_s)
    return ready()


class Server:
    """``oms serve`` in a subprocess with names nobody else uses."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = f"http://{HOST}:{settings.http_port}"
        self._process: subprocess.Popen[bytes] | None = None
        # The benchmark's own admin key, made in the run's database (as `oms keys create` does).
        self.key = create_key(settings, Role.ADMIN, name="bench/e2e.py").key
        self.headers = {"Authorization": f"Bearer {self.key}"}

    def environ(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "OMS_HTTP_HOST": HOST,
            "OMS_HTTP_PORT": str(s.http_port),
            # --http-workers: that many door processes on the port, the engine behind them
            "OMS_HTTP_WORKERS": str(s.http_workers),
            "OMS_HTTP_INTERNAL_PORT": str(s.http_internal_port),
            "OMS_DOOR_METRICS_PORT": str(s.door_metrics_port),
            "OMS_TOPIC_SUFFIX": s.topic_suffix,
            "OMS_KAFKA_GROUP_ID": s.kafka_group_id,
            "OMS_MONGO_DATABASE": s.mongo_database,
            # The limiter still runs (its Redis call is part of what a request costs), but far
            # above what the benchmark offers: one key and one address send every order, and
            # the shipped per-key default (1,000/s) would measure the limit, not the service.
            **{
                name: os.environ.get(name, "1000000")
                for name in (
                    "OMS_RATE_LIMIT_KEY_PER_S",
                    "OMS_RATE_LIMIT_KEY_BURST",
                    "OMS_RATE_LIMIT_IP_PER_S",
                    "OMS_RATE_LIMIT_IP_BURST",
                )
            },
        }

    async def start(self, log: Path) -> None:
        with log.open("wb") as out:
            self._process = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
                [sys.executable, "-m", "oms.cli", "serve"],
                cwd=ROOT,
                env=self.environ(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(f"oms serve exited ({self._process.returncode}); see {log}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{self.base}/ready") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.5)
        raise RuntimeError(f"oms serve not ready after {START_TIMEOUT_S:.0f}s; see {log}")

    @property
    def metric_bases(self) -> list[str]:
        """Where its legs are read: the engine process's /metrics, then each door process's
        (a door times its own POSTs on its own port)."""
        doors = range(self.settings.http_workers)
        ports = [self.settings.door_metrics_port_of(index) for index in doors]
        return [self.base, *(f"http://{HOST}:{port}" for port in ports)]

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("oms serve is not started")
        return self._process.pid

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _orders(accounts: list[str], count: int, offset: int) -> list[PlaceOrder]:
    """Marketable orders (MARKET IOC), both sides, spread over the accounts and symbols."""
    symbols = sorted(SIZES)
    now = time.time()
    orders = []
    for n in range(offset, offset + count):
        # The id REST derives from the client order id: the same order by either path.
        account_id, client_order_id = accounts[n % len(accounts)], f"b-{uuid.uuid4().hex[:12]}"
        order_id = client_order_id_order(account_id, client_order_id)
        symbol = symbols[n % len(symbols)]
        orders.append(
            PlaceOrder(
                command_id=f"place:{order_id}", order_id=order_id,
                client_order_id=client_order_id, account_id=account_id,
                symbol=symbol, side=Side.BUY if n % 2 else Side.SELL, type=OrderType.MARKET,
                quantity=SIZES[symbol], price=None, time_in_force=TimeInForce.IOC,
                created_at=now,
            )
        )  # fmt: skip
    return orders


async def _open_accounts(http: aiohttp.ClientSession, base: str, names: list[str]) -> None:
    for name in names:
        async with http.post(
            f"{base}/api/accounts", json={"account_id": name, "balances": FUNDS}
        ) as response:
            if response.status != 201:
                raise RuntimeError(f"opening {name}: {response.status} {await response.text()}")


async def _wait_prices(http: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready = 0
        for symbol in SIZES:
            async with http.get(f"{base}/api/market-data/prices/{symbol}") as response:
                if response.status == 200 and (await response.json()).get("last_price"):
                    ready += 1
        if ready == len(SIZES):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("no prices from the simulated feed")


class PostPool:
    """Keep-alive HTTP/1.1 connections that POST JSON and read the answer: the load generator's
    side of a REST run, kept lean so that it leaves the machine's cores to the service.

    aiohttp's client spent about 500 us of CPU per POST here, a quarter of the machine at
    1,000/s; this one writes prepared bytes and reads ``Content-Length`` bytes back. It speaks
    only what ``oms serve`` answers (no chunked bodies); ``--client aiohttp`` uses aiohttp.
    """

    def __init__(self, host: str, port: int, limit: int, key: str) -> None:
        self.host, self.port, self.limit = host, port, limit
        self._authorization = f"Authorization: Bearer {key}\r\n".encode()
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._opened = 0
        self._free = asyncio.Condition()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``path``: the status and the answer's body.

        A kept-alive connection the server closed while idle (its keep-alive timeout) answers
        nothing at all: sent again once on a new one, as HTTP clients do. Safe for an order: its
        id comes from its client order id, so a second POST names the same order.
        """
        try:
            return await self._post_once(path, body)
        except (asyncio.IncompleteReadError, ConnectionResetError) as error:
            if isinstance(error, asyncio.IncompleteReadError) and error.partial:
                raise  # the server had begun to answer: not a stale connection
            return await self._post_once(path, body, fresh=True)

    async def _post_once(self, path: str, body: bytes, fresh: bool = False) -> tuple[int, bytes]:
        reader, writer = await self._acquire(fresh)
        try:
            writer.write(
                b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                b"%sContent-Length: %d\r\n\r\n%s"
                % (
                    path.encode(),
                    self.host.encode(),
                    self.port,
                    self._authorization,
                    len(body),
                    body,
                )
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            answer = await reader.readexactly(length)
        except BaseException:
            writer.close()
            self._opened -= 1
            raise
        await self._release(reader, writer)
        return status, answer

    async def _acquire(self, fresh: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self._free:
            while not self._idle and self._opened >= self.limit:
                await self._free.wait()
            if self._idle and not fresh:
                return self._idle.pop()
            self._opened += 1
        try:
            return await asyncio.open_connection(self.host, self.port)
        except BaseException:
            self._opened -= 1
            raise

    async def _release(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self._free:
            self._idle.append((reader, writer))
            self._free.notify()

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class Placer:
    """Places orders over REST (one POST each) or straight onto Kafka (batched produces)."""

    def __init__(
        self, via: str, server: Server, http: aiohttp.ClientSession, pool: PostPool | None = None
    ) -> None:
        self.via = via
        self.server = server
        self.http = http
        self.pool = pool
        self.bus: KafkaCommandBus | None = None
        self.refused: Counter[int] = Counter()

    async def __aenter__(self) -> Placer:
        if self.via == "kafka":
            self.bus = KafkaCommandBus(self.server.settings, topic_names(self.server.settings))
            await self.bus.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.bus is not None:
            await self.bus.stop()
        if self.pool is not None:
            self.pool.close()

    async def place(self, orders: list[PlaceOrder]) -> list[str]:
        """Place ``orders``; the ids of those accepted for processing (202, or acknowledged)."""
        if self.bus is not None:
            await self.bus.send(orders)
            return [order.order_id for order in orders]
        ids = []
        for order in orders:
            status, body = await self._post(orjson.dumps(order_body(order)))
            if status == 202:
                ids.append(orjson.loads(body)["order_id"])
            else:
                self.refused[status] += 1
        return ids

    async def _post(self, body: bytes) -> tuple[int, bytes]:
        if self.pool is not None:
            return await self.pool.post("/api/orders", body)
        async with self.http.post(
            f"{self.server.base}/api/orders",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as response:
            return response.status, await response.read()


async def _terminal_count(db: Any, accounts: list[str], placed: int) -> int:
    """Terminal orders in ``orders``, once it has them all or 10 s on: the store writes
    ``orders`` behind the recovery log (an event leaves once the log has its batch), so the
    last few hundred may land a moment after their events."""
    query = {"terminal": True, "account_id": {"$in": accounts}}
    deadline = time.monotonic() + 10.0
    while True:
        count = int(await db["orders"].count_documents(query))
        if count >= placed or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.2)


_TERMINAL = (b'"OrderSettled"', b'"OrderCancelled"', b'"OrderRejected"')
_ACCEPTED = (b'"OrderAccepted"',)


class EventWatch:
    """Notes when each order's first event of ``kinds`` reached ``order-events``.

    The service publishes an event only once it is durable, so this is when the outside world
    can know it. ``from_end`` starts at the topic's end (only what happens from now on). The
    records are read by librdkafka on a thread of its own (``kafka_loadgen.EventReader``) and
    stamped when it hands them over.
    """

    def __init__(
        self, settings: Settings, topic: str, kinds: tuple[bytes, ...], *, from_end: bool = False
    ) -> None:
        self.reader = EventReader(settings, topic, self._absorb, from_end=from_end)
        # an event's type is its first field: look for it in the record's first bytes only
        self.kinds = re.compile(b"|".join(re.escape(kind) for kind in kinds))
        self.seen: dict[str, float] = {}  # order id -> perf_counter when its event arrived
        # order id -> (wall time the engine applied the event, wall time the service handed it
        # to its producer: the record's CreateTime), for the latency legs
        self.stamps: dict[str, tuple[float, float]] = {}

    async def __aenter__(self) -> EventWatch:
        await self.reader.__aenter__()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.reader.__aexit__()

    def _absorb(self, now: float, records: list[tuple[bytes, int]]) -> None:
        kind, seen, stamps = self.kinds.search, self.seen, self.stamps
        for value, timestamp_ms in records:
            if kind(value, 0, 40) is not None:
                event = orjson.loads(value)
                order_id = event["order_id"]
                if order_id not in seen:
                    seen[order_id] = now
                    stamps[order_id] = (float(event["at"]), timestamp_ms / 1000)


async def throughput(
    placer: Placer, db: Any, accounts: list[str], args: argparse.Namespace
) -> dict[str, float]:
    """Place for ``args.seconds``, then wait until every placed order is terminal and durable."""
    topic = topic_names(placer.server.settings).order_events
    meter = CpuMeter.of_run(placer.server.pid, Path(args.devenv))
    base = placer.server.base
    async with EventWatch(placer.server.settings, topic, _TERMINAL) as watch:
        barrier = await _barrier_times(placer.http, base)
        before, steal_before = meter.sample(), steal_ticks()
        results = await _throughput(placer, watch, accounts, args)
        results |= CpuMeter.per_order(
            before, meter.sample(), int(results["placed"]), results["elapsed_s"]
        )
        (stolen, total), (stolen_before, total_before) = steal_ticks(), steal_before
        results["cpu_steal_share"] = (stolen - stolen_before) / max(1, total - total_before)
        after = await _barrier_times(placer.http, base)
        results |= _barrier_figures(barrier, after, results["elapsed_s"])
    # After the clock: a scan or a few (timed: at 260,000 orders one took FerretDB a core for
    # 20 s, right before the latency phase).
    counting = time.perf_counter()
    results["terminal"] = await _terminal_count(db, accounts, int(results["placed"]))
    results["terminal_count_s"] = time.perf_counter() - counting
    return results


async def _throughput(
    placer: Placer, watch: EventWatch, accounts: list[str], args: argparse.Namespace
) -> dict[str, float]:
    placed = 0
    stop_at = time.monotonic() + args.seconds
    started = time.monotonic()
    ended = watch.seen
    if placer.via == "kafka":
        offset = 0
        while time.monotonic() < stop_at:
            if placed - len(ended) >= args.window:
                await asyncio.sleep(0.05)
                continue
            ids = await placer.place(_orders(accounts, KAFKA_BATCH, offset))
            placed += len(ids)  # after the await: no lost update
            offset += KAFKA_BATCH
    else:

        async def worker(index: int) -> None:
            nonlocal placed
            n = index
            while time.monotonic() < stop_at:
                if placed - len(ended) >= args.window:
                    await asyncio.sleep(0.05)
                    continue
                ids = await placer.place(_orders(accounts, 1, n))
                placed += len(ids)  # after the await: no lost update
                n += args.concurrency

        await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    placing_s = time.monotonic() - started
    await _poll(lambda: len(ended) >= placed, DRAIN_TIMEOUT_S, 0.02)
    elapsed = time.monotonic() - started
    return {
        "placed": placed,
        "terminal_events": len(ended),
        "placing_s": placing_s,
        "elapsed_s": elapsed,
        "orders_per_s": min(placed, len(ended)) / elapsed,
    }


class Timeline:
    """``--timeline``: the latency phase in steps of ``STEP_S``, to see which process was busy
    when the orders due in a step were late. Samples each process's CPU every ``STEP_S`` while
    the phase runs; ``write`` puts one CSV row a step: the orders due in it, their latency's
    p50, p99 and max and each leg's max (ms), and each process's CPU in that step (ms)."""

    STEP_S = 0.1

    def __init__(self, meter: CpuMeter) -> None:
        self.meter = meter
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.times: list[float] = []  # the samples' times, for bisect
        self._task: asyncio.Task[None] | None = None

    async def _sampling(self) -> None:
        while True:
            at = time.perf_counter()
            self.samples.append((at, self.meter.sample()))
            self.times.append(at)
            await asyncio.sleep(self.STEP_S / 4)

    def __enter__(self) -> Timeline:
        self._task = asyncio.create_task(self._sampling())
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def _cpu_at(self, at: float) -> dict[str, float]:
        """Each process's CPU seconds at ``at``, interpolated between the two samples around it."""
        times = self.times
        after = min(len(times) - 1, bisect.bisect_left(times, at))
        before = max(0, after - 1)
        (t0, first), (t1, last) = self.samples[before], self.samples[after]
        share = 0.0 if t1 <= t0 else min(1.0, max(0.0, (at - t0) / (t1 - t0)))
        return {n: first[n] + share * (last[n] - first[n]) for n in last if n in first}

    def _cpu_ms(self, start: float, end: float) -> dict[str, float]:
        """Each process's CPU between ``start`` and ``end`` (ms)."""
        first, last = self._cpu_at(start), self._cpu_at(end)
        return {name: 1000 * (last[name] - first[name]) for name in last if name in first}

    def write(self, path: Path, due: dict[str, float], legs: dict[str, tuple[float, ...]]) -> None:
        """``legs``: order id -> (latency, entry, durable, out) in seconds (inf: never seen)."""
        if not due or not self.samples:
            return
        start = min(due.values())
        steps: dict[int, list[tuple[float, ...]]] = {}
        for order_id, at in due.items():
            steps.setdefault(int((at - start) / self.STEP_S), []).append(
                legs.get(order_id, (float("inf"),) * 4)
            )
        names = sorted(self.samples[-1][1])
        with path.open("w") as out:
            columns = ["t_s", "orders", "p50_ms", "p99_ms", "max_ms"]
            columns += ["entry_max_ms", "durable_max_ms", "out_max_ms"]
            out.write(",".join([*columns, *(f"cpu_{n}_ms" for n in names)]) + "\n")
            for step in sorted(steps):
                rows = steps[step]
                latencies = sorted(r[0] for r in rows)
                at = start + step * self.STEP_S
                cpu = self._cpu_ms(at, at + self.STEP_S)
                values = [
                    step * self.STEP_S,
                    len(rows),
                    1000 * latencies[len(rows) // 2],
                    1000 * latencies[min(len(rows) - 1, int(len(rows) * 0.99))],
                    1000 * latencies[-1],
                    *(1000 * max(r[i] for r in rows) for i in (1, 2, 3)),
                    *(cpu.get(n, float("nan")) for n in names),
                ]
                out.write(",".join(f"{v:.1f}" for v in values) + "\n")


async def latency(
    placer: Placer, accounts: list[str], args: argparse.Namespace
) -> dict[str, float]:
    """Offer ``args.rate`` orders/s for ``args.latency_seconds``; due to ``OrderAccepted`` seen on
    ``order-events`` (published once durable)."""
    topic = topic_names(placer.server.settings).order_events
    bases = placer.server.metric_bases
    gc_before = await _long_gc_pauses(placer.http, bases)
    # This process's heap so far (the throughput phase's) out of every scan during the phase:
    # a full collection of it took 48 ms, delaying this process's sends and reads, in p99.
    gc.collect()
    gc.freeze()
    meter = CpuMeter.of_run(placer.server.pid, Path(args.devenv))
    timeline = Timeline(meter)
    try:
        sampling = timeline if args.timeline else contextlib.nullcontext()
        with LoadgenPauses() as pauses, sampling:
            async with EventWatch(placer.server.settings, topic, _ACCEPTED, from_end=True) as watch:
                before, started = meter.sample(), time.perf_counter()
                results = await _latency(placer, watch, accounts, args, timeline)
                spent = CpuMeter.per_order(
                    before, meter.sample(), int(results["offered"]), time.perf_counter() - started
                )
    finally:
        gc.unfreeze()
    results |= {f"latency_{name}": figure for name, figure in spent.items()}
    gc_after = await _long_gc_pauses(placer.http, bases)
    return results | pauses.figures() | {"service_gc_pauses_over_10ms": gc_after - gc_before}


async def _latency(
    placer: Placer,
    watch: EventWatch,
    accounts: list[str],
    args: argparse.Namespace,
    timeline: Timeline,
) -> dict[str, float]:
    due: dict[str, float] = {}  # order id -> when it was due
    posted: dict[str, float] = {}  # order id -> when its 202 (or produce's ack) came back
    accepted = watch.seen  # order id -> when its OrderAccepted arrived
    wall_offset = time.time() - time.perf_counter()  # perf_counter -> wall clock, for the legs
    total = int(args.rate * args.latency_seconds)
    orders = _orders(accounts, total, 0)
    # Kafka: one produce per slot of 5 ms holding the orders due in it (as a producer would).
    per_call = max(1, int(args.rate * 0.005)) if placer.via == "kafka" else 1
    tasks: list[asyncio.Task[None]] = []

    async def send(chunk: list[PlaceOrder], at: float) -> None:
        ids = await placer.place(chunk)
        answered = time.perf_counter()
        for order_id in ids:
            due[order_id] = at
            posted[order_id] = answered

    started = time.perf_counter()
    for index in range(0, total, per_call):
        at = started + index / args.rate
        pause = at - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.create_task(send(orders[index : index + per_call], at)))
    await asyncio.gather(*tasks)
    await _poll(lambda: len(accepted.keys() & due.keys()) >= len(due), 30)
    seen = [i for i in due if i in accepted]
    results: dict[str, float] = {"offered": total, "seen_accepted": len(seen)}
    # An order never seen accepted counts as infinitely late: a stalled service must not
    # print the percentiles of the orders that got through as if they were all of them.
    unseen = [float("inf")] * (total - len(seen))
    results |= _percentiles("", [accepted[i] - due[i] for i in seen] + unseen)
    results |= _percentiles("leg_post_", [posted[i] - due[i] for i in seen])
    # Where the time goes (wall clock: the service and this process share the machine's clock).
    entry, durable, out = [], [], []
    legs: dict[str, tuple[float, ...]] = {}
    for i in seen:
        applied, published = watch.stamps[i]
        entry.append(applied - (due[i] + wall_offset))
        durable.append(published - applied)
        out.append(accepted[i] + wall_offset - published)
        legs[i] = (accepted[i] - due[i], entry[-1], durable[-1], out[-1])
    results |= _percentiles("leg_entry_", entry)
    results |= _percentiles("leg_durable_", durable)
    results |= _percentiles("leg_out_", out)
    if args.timeline:
        timeline.write(Path(args.timeline), due, legs)
    return results


def _percentiles(prefix: str, seconds: list[float]) -> dict[str, float]:
    """``<prefix>p50_ms`` and ``<prefix>p99_ms`` of durations in seconds (NaN if none)."""
    if not seconds:
        return {f"{prefix}p50_ms": float("nan"), f"{prefix}p99_ms": float("nan")}
    ordered = sorted(seconds)
    return {
        f"{prefix}p50_ms": 1000 * ordered[len(ordered) // 2],
        f"{prefix}p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


async def _scrape(http: aiohttp.ClientSession, base: str) -> list[str]:
    """The service's /metrics, a line each."""
    async with http.get(f"{base}/metrics") as response:
        return (await response.text()).splitlines()


_WRITE_BUCKET = re.compile(r'^oms_store_write_duration_seconds_bucket\{le="([^"]+)"\} (\S+)$')


async def _write_times(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The service's MongoDB write-time histogram from /metrics: cumulative count per ``le``,
    and ``sum``."""
    figures: dict[str, float] = {}
    for line in await _scrape(http, base):
        bucket = _WRITE_BUCKET.match(line)
        if bucket is not None:
            figures[bucket.group(1)] = float(bucket.group(2))
        elif line.startswith("oms_store_write_duration_seconds_sum "):
            figures["sum"] = float(line.split()[1])
    return figures


_BARRIER = re.compile(
    r"^oms_(ingest_room_wait_seconds_total|ingest_commits_total"
    r'|ingest_barrier_step_seconds_total\{step="([^"]+)"\}) (\S+)$'
)
_COUNTERS = ("ingest_room_wait_seconds_total", "ingest_commits_total")


async def _barrier_times(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The ingestion's counters from /metrics: seconds waited for room, seconds per barrier
    step (by step name), commits."""
    figures: dict[str, float] = {}
    for line in await _scrape(http, base):
        found = _BARRIER.match(line)
        if found is not None:
            figures[found.group(2) or found.group(1)] = float(found.group(3))
    return figures


def _barrier_figures(
    before: dict[str, float], after: dict[str, float], elapsed_s: float
) -> dict[str, float]:
    """Over the throughput phase: the share of its time the ingestion waited for room, the
    share each barrier step took (steps run one after another in the barrier's task), and the
    commits it made."""

    def spent(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    figures = {
        "ingest_room_wait_share": spent("ingest_room_wait_seconds_total") / elapsed_s,
        "ingest_commits": spent("ingest_commits_total"),
    }
    for step in sorted(set(after) - set(_COUNTERS)):  # the steps the service named
        figures[f"barrier_{step.replace(' ', '_')}_share"] = spent(step) / elapsed_s
    return figures


_LEG_BUCKET = re.compile(r'^oms_order_leg_seconds_bucket\{le="([^"]+)",leg="([^"]+)"\} (\S+)$')
SERVICE_LEGS = (
    "door",
    "claim",
    "produce",
    "cache",
    "consume",
    "engine",
    "to_write",
    "write",
    "publish",
)


async def _leg_times(http: aiohttp.ClientSession, bases: list[str]) -> dict[tuple[str, str], float]:
    """The service's leg histograms: (leg, le) -> cumulative count, summed over the /metrics
    of ``bases`` (the engine process's, and each door process's: a door times its own POSTs)."""
    buckets: dict[tuple[str, str], float] = {}
    for base in bases:
        for line in await _scrape(http, base):
            bucket = _LEG_BUCKET.match(line)
            if bucket is not None:
                key = bucket.group(2), bucket.group(1)
                buckets[key] = buckets.get(key, 0.0) + float(bucket.group(3))
    return buckets


_GC_BUCKET = re.compile(r'^oms_gc_pause_seconds_bucket\{generation="(\d)",le="([^"]+)"\} (\S+)$')
_LONG_GC_S = 0.01  # a bucket bound of oms.gc_pauses.PAUSE_BOUNDS_S


async def _long_gc_pauses(http: aiohttp.ClientSession, bases: list[str]) -> float:
    """Collections of over 10 ms so far, in every generation of every process of ``bases``."""
    long = 0.0
    for base in bases:
        counts: dict[tuple[str, str], float] = {}
        for line in await _scrape(http, base):
            bucket = _GC_BUCKET.match(line)
            if bucket is not None:
                counts[bucket.group(1), bucket.group(2)] = float(bucket.group(3))
        for generation in {generation for generation, _ in counts}:
            long += counts[generation, "+Inf"] - counts[generation, str(_LONG_GC_S)]
    return long


class LoadgenPauses:
    """This process's own garbage collections while it is entered: how many took over 10 ms,
    and the longest."""

    def __init__(self) -> None:
        self.long = 0
        self.longest_s = 0.0
        self._began = 0.0

    def _time(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        took = time.perf_counter() - self._began
        self.longest_s = max(self.longest_s, took)
        self.long += took > _LONG_GC_S

    def __enter__(self) -> LoadgenPauses:
        gc.callbacks.append(self._time)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._time)

    def figures(self) -> dict[str, float]:
        return {
            "loadgen_gc_pauses_over_10ms": self.long,
            "loadgen_gc_pause_max_ms": 1000 * self.longest_s,
        }


def _leg_figures(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]
) -> dict[str, float]:
    """``leg_<name>_p50_ms``/``_p99_ms`` of each service leg between two scrapes (the door's
    leg is the service's ``post``), interpolated within the bucket as ``histogram_quantile``."""
    figures: dict[str, float] = {}
    for leg in SERVICE_LEGS:
        source = "post" if leg == "door" else leg
        counts = sorted(
            (float(key[1]), after[key] - before.get(key, 0.0)) for key in after if key[0] == source
        )
        for name, share in (("p50", 0.5), ("p99", 0.99)):
            figures[f"leg_{leg}_{name}_ms"] = 1000 * _quantile(counts, share)
    return figures


def _quantile(cumulative: list[tuple[float, float]], share: float) -> float:
    """The ``share`` quantile of a histogram given as sorted (upper bound, cumulative count);
    NaN when empty, the highest finite bound when it falls in +Inf."""
    if not cumulative or cumulative[-1][1] <= 0:
        return float("nan")
    rank = share * cumulative[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            inside = count - lower_count
            return lower_bound + (bound - lower_bound) * (
                (rank - lower_count) / inside if inside else 1.0
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def _write_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the store's writes took during the latency phase: the mean, and the histogram bound
    under which half and 99% of them finished (the true value is at or below it)."""
    bounds = [le for le in after if le != "sum"]
    delta = {le: after[le] - before.get(le, 0.0) for le in bounds}
    count = delta.get("+Inf", 0.0)
    figures = {"store_writes": count, "store_write_mean_ms": float("nan")}
    figures |= {"store_write_p50_le_ms": float("nan"), "store_write_p99_le_ms": float("nan")}
    if not count:
        return figures
    figures["store_write_mean_ms"] = 1000 * (after["sum"] - before.get("sum", 0.0)) / count
    for name, share in (("store_write_p50_le_ms", 0.5), ("store_write_p99_le_ms", 0.99)):
        for le in bounds:
            if delta[le] >= share * count:
                figures[name] = 1000 * float(le)  # +Inf stays inf: slower than every bound
                break
    return figures


async def kafka_ceiling(settings: Settings, topic: str, count: int, size: int) -> float:
    """Records/s produced (acks=all, idempotent) and consumed back, ``count`` of ``size`` bytes."""
    await ensure_topics(settings, (TopicSpec(topic, settings.orders_partitions, "account_id"),))
    producer = reliable_producer(settings, linger_ms=1)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **aiokafka_security(settings),
    )
    await producer.start()
    await consumer.start()
    try:
        await _poll(lambda: bool(consumer.assignment()), 30, 0.05)
        value = b"x" * size
        keys = [f"acct-{n}".encode() for n in range(16)]
        started = time.perf_counter()

        async def produce() -> None:
            for start in range(0, count, 10_000):
                futures = [
                    await producer.send(topic, value, key=keys[n % len(keys)])
                    for n in range(start, min(count, start + 10_000))
                ]
                await asyncio.gather(*futures)

        async def consume() -> None:
            seen = 0
            while seen < count:
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                seen += sum(len(records) for records in batches.values())

        await asyncio.wait_for(asyncio.gather(produce(), consume()), timeout=300)
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


def _sample_size() -> int:
    return len(encode_command(_orders(["acct-0000000000"], 1, 0)[0]))


def _report(args: argparse.Namespace, results: dict[str, float], refused: Counter[int]) -> None:
    print(f"via: {args.via}")
    if args.via == "rest":
        print(f"client: {args.client}")
    print(f"seconds: {args.seconds:g}")
    print(f"orders_placed: {results['placed']:.0f}")
    print(f"orders_terminal_events: {results['terminal_events']:.0f}")
    print(f"orders_terminal_in_mongodb: {results['terminal']:.0f}")
    print(f"terminal_count_s: {results['terminal_count_s']:.2f}")
    print(f"orders_refused: {sum(refused.values())}")
    print(f"placing_s: {results['placing_s']:.2f}")
    print(f"all_terminal_s: {results['elapsed_s']:.2f}")
    print(f"orders_per_s: {results['orders_per_s']:.0f}")
    print(f"ingest_commits: {results['ingest_commits']:.0f}")
    print(f"ingest_room_wait_share: {results['ingest_room_wait_share']:.3f}")
    for name in sorted(key for key in results if key.startswith("barrier_")):
        print(f"{name}: {results[name]:.3f}")
    print(f"offered_rate: {args.rate:g}")
    print(f"latency_orders: {results['offered']:.0f}")
    print(f"latency_seen_accepted: {results['seen_accepted']:.0f}")
    print(f"p50_ms: {results['p50_ms']:.1f}")
    print(f"p99_ms: {results['p99_ms']:.1f}")
    print(f"store_writes: {results['store_writes']:.0f}")
    for name in ("store_write_mean_ms", "store_write_p50_le_ms", "store_write_p99_le_ms"):
        print(f"{name}: {results[name]:.1f}")
    for leg in ("entry", "durable", "out", "post", *SERVICE_LEGS):
        print(f"leg_{leg}_p50_ms: {results[f'leg_{leg}_p50_ms']:.1f}")
        print(f"leg_{leg}_p99_ms: {results[f'leg_{leg}_p99_ms']:.1f}")
    for name in (
        "service_gc_pauses_over_10ms",
        "loadgen_gc_pauses_over_10ms",
        "loadgen_gc_pause_max_ms",
    ):
        print(f"{name}: {results[name]:.1f}")
    print(f"latency_cpu_cores_busy: {results['latency_cpu_cores_busy']:.2f}")
    for name in (*CpuMeter.NAMES, "all"):
        figure = results.get(f"latency_cpu_us_per_order_{name}", float("nan"))
        print(f"latency_cpu_us_per_order_{name}: {figure:.0f}")
    print(f"machine_cores: {os.cpu_count()}")
    print(f"machine_probe_before_ms: {results['probe_before_ms']:.1f}")
    print(f"machine_probe_after_ms: {results['probe_after_ms']:.1f}")
    print(f"cpu_steal_share: {results['cpu_steal_share']:.3f}")
    print(f"cpu_cores_busy: {results['cpu_cores_busy']:.2f}")
    for name in (*CpuMeter.NAMES, "all"):
        figure = results.get(f"cpu_us_per_order_{name}", float("nan"))
        print(f"cpu_us_per_order_{name}: {figure:.0f}")
    for name in ("cpu_bound_orders_per_s", "engine_bound_orders_per_s"):
        print(f"{name}: {results.get(name, float('nan')):.0f}")
    if not args.skip_ceilings:
        kafka, store = results["kafka_ceiling_per_s"], results["store_ceiling_per_s"]
        print(f"kafka_ceiling_per_s: {kafka:.0f}")
        print(f"store_ceiling_per_s: {store:.0f}")
        print(f"ratio_to_ceiling: {results['orders_per_s'] / min(kafka, store):.3f}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--via", choices=["rest", "kafka"], default="rest")
    parser.add_argument("--seconds", type=float, default=60.0, help="placing, for orders_per_s")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered orders/s for latency")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=128, help="POSTs in flight (rest)")
    parser.add_argument("--window", type=int, default=20_000, help="orders placed, not terminal")
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--ceiling-max", type=int, default=200_000)
    parser.add_argument("--skip-ceilings", action="store_true")
    parser.add_argument(
        "--client",
        choices=["lean", "aiohttp"],
        default="lean",
        help="REST load generator: keep-alive raw HTTP/1.1 (lean) or aiohttp's client",
    )
    parser.add_argument(
        "--http-workers",
        type=int,
        default=0,
        help="OMS_HTTP_WORKERS of the service: door processes beside the engine (0: none)",
    )
    parser.add_argument(
        "--devenv", default=str(ROOT / ".devenv"), help="where make up keeps the servers' pids"
    )
    parser.add_argument(
        "--timeline",
        default="",
        help="CSV file: the latency phase a 100 ms step a row, beside each process's CPU",
    )
    return parser.parse_args()


async def main() -> None:
    """Run every phase and print the figures."""
    args = _arguments()

    run = uuid.uuid4().hex[:8]
    settings = Settings.from_env().replace(
        http_host=HOST,
        # Below the ephemeral range (``tests/ports.py``): a door's metrics port next to a port
        # the kernel picked was once a Kafka client's local port, and that door never started.
        http_port=free_port(),
        http_workers=args.http_workers,
        http_internal_port=free_port(),
        door_metrics_port=free_port(),
        topic_suffix=f"bench-{run}",
        kafka_group_id=f"oms-bench-{run}",
        mongo_database=f"oms_bench_{run}",
    )
    ceiling_topic = f"bench-ceiling-{run}"
    ceiling_db = f"bench_ceiling_{run}"
    names = topic_names(settings)
    server = Server(settings)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    results: dict[str, float] = {"probe_before_ms": machine_probe_ms()}
    refused: Counter[int] = Counter()
    try:
        await server.start(Path(f"/tmp/oms-bench-{run}.log"))
        db = mongo[settings.mongo_database]
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=max(100, args.concurrency * 2))
        async with aiohttp.ClientSession(
            timeout=timeout, connector=connector, headers=server.headers
        ) as http:
            await _wait_prices(http, server.base)
            accounts = [f"bench-{run}-{n}" for n in range(args.accounts)]
            await _open_accounts(http, server.base, accounts)
            pool = (
                PostPool(HOST, settings.http_port, max(100, args.concurrency * 2), server.key)
                if args.via == "rest" and args.client == "lean"
                else None
            )
            async with Placer(args.via, server, http, pool) as placer:
                results |= await throughput(placer, db, accounts, args)
                fresh = [f"lat-{run}-{n}" for n in range(4)]
                await _open_accounts(http, server.base, fresh)
                writes_before = await _write_times(http, server.base)
                legs_before = await _leg_times(http, server.metric_bases)
                results |= await latency(placer, fresh, args)
                results |= _write_figures(writes_before, await _write_times(http, server.base))
                results |= _leg_figures(legs_before, await _leg_times(http, server.metric_bases))
                refused = placer.refused
    finally:
        server.stop()
        results["probe_after_ms"] = machine_probe_ms()
        with contextlib.suppress(Exception):
            for dropped in store_databases(settings.mongo_database):
                await mongo.drop_database(dropped)
    try:
        count = max(1000, min(args.ceiling_max, int(results.get("placed", 0))))
        if not args.skip_ceilings:
            results["kafka_ceiling_per_s"] = await kafka_ceiling(
                settings, ceiling_topic, count, _sample_size()
            )
            results["store_ceiling_per_s"] = await store_ceiling(settings, ceiling_db, count, 2)
    finally:
        with contextlib.suppress(Exception):
            await mongo.drop_database(ceiling_db)
        await mongo.close()
        with contextlib.suppress(Exception):
            await delete_topics(settings, [ceiling_topic, *(s.name for s in names.specs(settings))])

    _report(args, results, refused)


if __name__ == "__main__":
    asyncio.run(main())
