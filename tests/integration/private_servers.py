"""Private Redis and Kafka servers that a fault test may stop, pause and restart.

The shared local servers are never stopped: a test that needs an outage starts its own instance
on free ports (127.0.0.1 only), in a temporary directory, and stops it by its own process id.
Redis is Debian's ``redis-server`` (as ``make up`` installs it); Kafka runs from the jars
``make up`` put in ``.devenv/kafka/libs``, tuned to start in a few seconds (one node, KRaft,
a small heap, the client compiler only).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import redis

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
KAFKA_LIBS = ROOT / ".devenv" / "kafka" / "libs"
_LOG4J = (
    "log4j.rootLogger=WARN, stdout\n"
    "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
    "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
    "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait(what: str, ready: object, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not ready within {within_s:.0f} s")
        time.sleep(0.1)


class _Process:
    """One child server: started, stopped (by its pid, politely then firmly), paused."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self, command: list[str], log: Path) -> None:
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        """Stop the server (SIGTERM; SIGKILL after 20 s) and wait until it is gone."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused server must run to hear the SIGTERM
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused server (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class PrivateRedis(_Process):
    """A Redis of the test's own, with nothing saved (a restart starts empty, as after a crash
    of a cache without persistence)."""

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers PING."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._spawn(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"],
            self.workdir / "redis.log",
        )  # fmt: skip
        _wait("private redis", self._answers, 15)

    def _answers(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def flushall(self) -> None:
        """Forget every key (what an eviction storm or an operator's FLUSHALL does)."""
        client = redis.Redis(port=self.port)
        try:
            client.flushall()
        finally:
            client.close()


class PrivateKafka(_Process):
    """A one-node Kafka (KRaft) of the test's own; its data survives a stop and a restart."""

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.port = free_port()
        self.controller_port = free_port()
        self.workdir = workdir
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._formatted = False

    def _java(self, heap: str = "-Xmx512m") -> list[str]:
        if not KAFKA_LIBS.is_dir():
            raise AssertionError(f"no Kafka jars in {KAFKA_LIBS}: run `make up` once")
        log4j = self.workdir / "log4j.properties"
        log4j.write_text(_LOG4J)
        return [
            "java", "-Xms128m", heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{log4j}",
            "-cp", f"{KAFKA_LIBS}/*",
        ]  # fmt: skip

    def _configure(self) -> Path:
        config = self.workdir / "server.properties"
        host = "127.0.0.1"
        config.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{host}:{self.controller_port}",
                f"listeners=PLAINTEXT://{host}:{self.port},CONTROLLER://{host}:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://{host}:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={self.workdir / 'data'}",
                "num.partitions=1",
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "",
            ])
        )  # fmt: skip
        return config

    def start(self, within_s: float = 45.0) -> None:
        """Start it (formatting its storage the first time) and wait until it listens."""
        config = self._configure()
        if not self._formatted:
            cluster_id = uuid.uuid4().bytes.hex()[:22]  # any 22 characters of base64 stand
            subprocess.run(
                [*self._java("-Xmx256m"), "kafka.tools.StorageTool", "format",
                 "-t", cluster_id, "-c", str(config)],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            self._formatted = True
        self._spawn([*self._java(), "kafka.Kafka", str(config)], self.workdir / "kafka.log")
        _wait("private kafka", lambda: _listening(self.port), within_s)
