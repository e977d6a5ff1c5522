"""Private Kafka, Redis and FerretDB for the fault-injection suite: stopped and started at will.

The suite must stop a server in the middle of a load; the shared local servers (``make up``) are
used by every other test, so this suite runs its own instances on free ports under a temporary
directory, with the binaries and the configuration ``devenv/devenv.py`` uses (one home for how a
server is run). Every server binds to 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devenv import devenv
from tests.ports import free_port

HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0


@dataclass
class Process:
    """One server process: started, stopped (SIGTERM) or killed, and waited for."""

    name: str
    command: Callable[[], list[str]]
    ready: Callable[[], bool]
    log: Path
    prepare: Callable[[], None] = lambda: None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start it and wait until it answers a real request."""
        if self.process is not None and self.process.poll() is None:
            return
        self.prepare()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited while starting; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer in {START_TIMEOUT_S}s")
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it (``sig``, then SIGKILL after 30 s) and wait until it is gone."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    @property
    def running(self) -> bool:
        """True while its process lives."""
        return self.process is not None and self.process.poll() is None


class PrivateServers:
    """Kafka (KRaft, one node), Redis and FerretDB of the suite's own, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        kafka_port = free_port(pair=True)
        redis_port = free_port()
        mongo_port = free_port()
        self.kafka_bootstrap = f"{HOST}:{kafka_port}"
        self.redis_url = f"redis://{HOST}:{redis_port}/0"
        self.mongo_url = f"mongodb://{HOST}:{mongo_port}/"
        kafka_dir = root / "kafka"
        kafka_dir.mkdir(parents=True, exist_ok=True)
        self.kafka = Process(
            "kafka",
            command=lambda: devenv._kafka_command(kafka_dir),
            ready=lambda: devenv._kafka_ready(self.kafka_bootstrap),
            log=root / "kafka.log",
            prepare=lambda: devenv._kafka_prepare(HOST, kafka_port, kafka_dir),
        )
        self.redis = Process(
            "redis",
            command=lambda: devenv._redis_command(HOST, redis_port, root / "redis"),
            ready=lambda: devenv._redis_ready(HOST, redis_port),
            log=root / "redis.log",
        )
        self.ferretdb = Process(
            "ferretdb",
            command=lambda: devenv._ferret_command(HOST, mongo_port, root / "ferretdb"),
            ready=lambda: devenv._ferret_ready(self.mongo_url),
            log=root / "ferretdb.log",
        )

    @property
    def all(self) -> tuple[Process, ...]:
        """Every server, in start order."""
        return (self.kafka, self.redis, self.ferretdb)

    def start(self) -> None:
        """Start whatever is not running."""
        for server in self.all:
            server.start()

    def stop(self) -> None:
        """Stop every server."""
        for server in reversed(self.all):
            server.stop()

    def env(self) -> dict[str, str]:
        """The ``OMS_*`` variables that point oms at these servers."""
        return {
            "OMS_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "OMS_REDIS_URL": self.redis_url,
            "OMS_MONGO_URL": self.mongo_url,
        }
