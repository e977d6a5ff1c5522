"""``oms cluster up --replicas K``: K local replicas of ``oms serve`` in one consumer group.

Each replica is a real ``oms serve`` process with the settings of this one (the same topics,
group and database), its own HTTP port (``--base-port`` + i) and its own name (``OMS_REPLICA``,
on every log line and in ``/metrics``). Every replica runs the price publisher: the per-symbol
lease in Redis lets one of them publish each symbol, and another takes it over when that one
dies. They share one ``OMS_INTERNAL_TOKEN`` (a fresh one unless this process has one), so a read
that lands on a replica that does not own the account is forwarded to its owner.

It behaves as a small orchestrator would: a replica that exits on its own (a crash, or a
``kill -9`` to watch a hand-off) is started again; SIGINT or SIGTERM stops every replica with
SIGTERM (each hands its partitions off and exits within ``OMS_SHUTDOWN_TIMEOUT_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field

import aiohttp

from oms.config import Settings

READY_TIMEOUT_S = 90.0
SUPERVISE_EVERY_S = 0.5
STOP_GRACE_S = 5.0  # beyond a replica's own bounded stop, before it is killed


@dataclass
class LocalReplica:
    """One ``oms serve`` of the cluster: its name, port and environment, and its process."""

    name: str
    port: int
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = field(default=0)

    @property
    def base(self) -> str:
        """Where it answers."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start its process (its output goes to this one's) in a session of its own: a
        terminal's Ctrl-C reaches only this process, which stops the replica with one SIGTERM
        (a second signal would make it exit at once, unclean)."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "oms.cli", "serve", env=self.env, start_new_session=True
        )


def plan(settings: Settings, replicas: int, base_port: int) -> list[LocalReplica]:
    """The replicas to run: names, ports and environments (this process's, with each one's own
    port and name, and one internal token for the hop between them)."""
    if replicas < 1:
        raise ValueError("a cluster has at least one replica")
    prefix = settings.replica or "oms"
    token = settings.internal_token or secrets.token_hex(16)
    planned = []
    for n in range(replicas):
        name = f"{prefix}-{n}"
        port = base_port + n
        env = {
            **os.environ,
            "OMS_HTTP_PORT": str(port),
            "OMS_REPLICA": name,
            "OMS_INTERNAL_TOKEN": token,
        }
        if settings.http_workers:  # door processes: each engine's port and doors' metrics apart
            env["OMS_HTTP_INTERNAL_PORT"] = str(base_port + replicas + n)
            metrics = base_port + 2 * replicas + n * settings.http_workers
            env["OMS_DOOR_METRICS_PORT"] = str(metrics)
        planned.append(LocalReplica(name, port, env))
    return planned


async def _ready(replica: LocalReplica, deadline: float) -> bool:
    """Wait until it answers ``/ready`` 200 (False if it exited or the deadline passed)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            process = replica.process
            if process is None or process.returncode is not None:
                return False
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"{replica.base}/ready") as response:
                    if response.status == 200:
                        return True
            await asyncio.sleep(0.3)
    return False


async def _stop(replicas: list[LocalReplica], settings: Settings) -> None:
    """SIGTERM every replica at once, then wait for each (killing one that overruns)."""
    running = [r.process for r in replicas if r.process and r.process.returncode is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            await asyncio.wait_for(process.wait(), settings.shutdown_timeout_s + STOP_GRACE_S)
        except TimeoutError:
            process.kill()
            await process.wait()


async def run_cluster(settings: Settings, replicas: int, base_port: int) -> int:
    """Run the cluster until SIGINT or SIGTERM; 0 once every replica stopped, 1 if one never
    became ready."""
    cluster = plan(settings, replicas, base_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        for replica in cluster:
            await replica.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        for replica in cluster:
            if not await _ready(replica, deadline):
                print(f"oms cluster: {replica.name} never became ready", file=sys.stderr)
                return 1
            print(f"{replica.name}: {replica.base} ready", flush=True)
        print(f"oms cluster: {len(cluster)} replicas in group {settings.kafka_group_id!r}; "
              "Ctrl-C stops them", flush=True)  # fmt: skip
        while not stop.is_set():
            for replica in cluster:
                process = replica.process
                if process is not None and process.returncode is not None:
                    print(f"oms cluster: {replica.name} exited with {process.returncode}; "
                          "starting it again", flush=True)  # fmt: skip
                    replica.restarts += 1
                    await replica.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SUPERVISE_EVERY_S)
        return 0
    finally:
        await _stop(cluster, settings)
