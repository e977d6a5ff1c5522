"""Install, start, stop and inspect oms's local servers: Kafka (KRaft), Redis and FerretDB.

Usage: ``python devenv/devenv.py up|down|status``. Everything lives under ``.devenv/`` in the
repository (downloads, builds, data, logs, pid files), every server binds to 127.0.0.1 only,
and each step is skipped when its result is already there, so a second ``up`` takes seconds.

Ports come from ``oms.config.Settings`` (the one home of settings): the servers listen where the
application looks for them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".devenv"
HERE = ROOT / "devenv"
KAFKA_VERSION = "4.1.1"
KAFKA_JARS = 47
FERRETDB_VERSION = "v1.24.2"

sys.path.insert(0, str(ROOT))
from oms.config import Settings  # noqa: E402  (the repository root must be importable first)


class DevenvError(RuntimeError):
    """A server could not be installed or started; the message says which and where to look."""


def _say(message: str) -> None:
    print(f"devenv: {message}", flush=True)


def _run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    """Run a set-up step, echoing it; a failure names the command."""
    _say("$ " + " ".join(cmd))
    merged = {**os.environ, **(env or {})}
    result = subprocess.run(cmd, env=merged, cwd=cwd, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise DevenvError(f"command failed ({result.returncode}): {' '.join(cmd)}")


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def _loopback(host: str) -> None:
    if host not in {"127.0.0.1", "localhost"}:
        raise DevenvError(f"refusing to run a local server on {host}: devenv binds 127.0.0.1 only")


@dataclass
class Server:
    """One local server: how to install it, how to start it, how to know it answers."""

    name: str
    host: str
    port: int
    installed: Callable[[], bool]
    install: Callable[[], None]
    command: Callable[[], list[str]]
    ready: Callable[[], bool]
    prepare: Callable[[], None] = lambda: None
    version: Callable[[], str] = lambda: "?"

    @property
    def pid_file(self) -> Path:
        """Where the pid of the process devenv started is kept."""
        return STATE / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """Where the server's output goes."""
        return STATE / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our running process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except (ProcessLookupError, FileNotFoundError):
            self.pid_file.unlink(missing_ok=True)
            return None
        if state == "Z":
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def up(self, timeout_s: float = 90.0) -> None:
        """Install if missing, start if not running, wait until it answers a real request."""
        _loopback(self.host)
        if not self.installed():
            self.install()
        if self.pid() is None:
            if _port_open(self.host, self.port):
                raise DevenvError(
                    f"{self.name}: {self.host}:{self.port} is taken by a process devenv did not "
                    "start; stop it or point the OMS_* settings elsewhere"
                )
            self.prepare()
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("ab") as log:
                process = subprocess.Popen(
                    self.command(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=ROOT,
                    start_new_session=True,  # outlives make and the shell that started it
                )
            self.pid_file.write_text(str(process.pid))
            _say(f"{self.name}: started (pid {process.pid}), log {self.log_file}")
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if self.pid() is None:
                raise DevenvError(f"{self.name} exited while starting; see {self.log_file}")
            if time.monotonic() > deadline:
                raise DevenvError(
                    f"{self.name} did not answer in {timeout_s:.0f}s; see {self.log_file}"
                )
            time.sleep(0.25)
        _say(f"{self.name} {self.version()}: ready on {self.host}:{self.port}")

    def down(self) -> None:
        """Stop the process devenv started, and only that one."""
        pid = self.pid()
        if pid is None:
            _say(f"{self.name}: not running (started by devenv)")
            return
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.pid() is not None:
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        _say(f"{self.name}: stopped (pid {pid})")

    def status(self) -> bool:
        """Print whether it runs and answers; True when it does."""
        pid = self.pid()
        answering = self.ready() if pid is not None else False
        state = f"running (pid {pid})" if pid else "stopped"
        extra = ", answering" if answering else ""
        _say(f"{self.name}: {state}{extra} on {self.host}:{self.port}")
        return answering


# --- Kafka ------------------------------------------------------------------------------------

KAFKA_DIR = STATE / "kafka"
KAFKA_LIBS = KAFKA_DIR / "libs"


def _kafka_installed() -> bool:
    return (KAFKA_LIBS / f"kafka_2.13-{KAFKA_VERSION}.jar").exists() and len(
        list(KAFKA_LIBS.glob("*.jar"))
    ) >= KAFKA_JARS


def _kafka_install() -> None:
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise DevenvError("Kafka needs java (17) and mvn on PATH")
    _run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(HERE / "kafka" / "pom.xml"),
            f"-Dmaven.repo.local={STATE / 'm2'}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={KAFKA_LIBS}",
        ]
    )


def _kafka_prepare(host: str, port: int, directory: Path = KAFKA_DIR) -> None:
    """Write the broker's configuration under ``directory`` and format its storage once."""
    controller = port + 1
    data = directory / "data"
    config = directory / "server.properties"
    config.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{host}:{controller}",
                f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
                f"advertised.listeners=PLAINTEXT://{host}:{port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={data}",
                "num.partitions=1",
                # The project creates its own topics with the partition counts it wants.
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                # One node, local: start serving a new group at once instead of after 3 s.
                "group.initial.rebalance.delay.ms=0",
                "log.retention.hours=24",
                "",
            ]
        )
    )
    log4j = directory / "log4j.properties"
    log4j.write_text(
        "log4j.rootLogger=WARN, stdout\n"
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        "log4j.logger.kafka.server.KafkaServer=INFO\n"
        "log4j.logger.kafka.server.BrokerServer=INFO\n"
    )
    if not (data / "meta.properties").exists():
        data.mkdir(parents=True, exist_ok=True)
        java = ["java", f"-Dlog4j.configuration=file:{log4j}", "-cp", f"{KAFKA_LIBS}/*"]
        cluster_id = (
            subprocess.run(
                [*java, "kafka.tools.StorageTool", "random-uuid"],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        _run([*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)])


def _kafka_command(directory: Path = KAFKA_DIR) -> list[str]:
    return [
        "java",
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{directory / 'log4j.properties'}",
        "-cp",
        f"{KAFKA_LIBS}/*",
        "kafka.Kafka",
        str(directory / "server.properties"),
    ]


def _kafka_ready(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415  (venv only)
    from aiokafka.errors import KafkaError  # noqa: PLC0415

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            return bool(cluster.get("brokers"))
        except (TimeoutError, KafkaError, OSError):
            return False
        finally:
            await admin.close()

    host, port = _host_port(bootstrap)
    return _port_open(host, port) and asyncio.run(probe())


# --- Redis ------------------------------------------------------------------------------------


def _redis_install() -> None:
    if shutil.which("apt-get") is None:
        raise DevenvError("redis-server is missing and there is no apt-get to install it")
    _run(["apt-get", "update", "-qq"])
    _run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"],
        env={"DEBIAN_FRONTEND": "noninteractive"},
    )


def _redis_command(host: str, port: int, data: Path = STATE / "redis") -> list[str]:
    data.mkdir(parents=True, exist_ok=True)
    return [
        "redis-server",
        "--bind",
        host,
        "--port",
        str(port),
        "--dir",
        str(data),
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--save",
        "",
        "--appendonly",
        "no",
    ]


def _redis_ready(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False)
    return next((w.removeprefix("v=") for w in out.stdout.split() if w.startswith("v=")), "?")


# --- FerretDB -----------------------------------------------------------------------------------

FERRET_SRC = HERE / "ferretdb"
FERRET_BIN = STATE / "bin" / "ferretdb-oms"
FERRET_STAMP = STATE / "bin" / "ferretdb-oms.sha256"


def _ferret_source_hash() -> str:
    digest = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        digest.update((FERRET_SRC / name).read_bytes())
    return digest.hexdigest()


def _ferret_installed() -> bool:
    return (
        FERRET_BIN.exists()
        and FERRET_STAMP.exists()
        and (FERRET_STAMP.read_text().strip() == _ferret_source_hash())
    )


def _go_env() -> dict[str, str]:
    return {
        "GOMODCACHE": str(STATE / "go" / "mod"),
        "GOCACHE": str(STATE / "go" / "cache"),
        "GOFLAGS": "-modcacherw",
        "GOTOOLCHAIN": "local",
    }


def _ferret_install() -> None:
    if shutil.which("go") is None:
        raise DevenvError("FerretDB is built from source here and needs go on PATH")
    FERRET_BIN.parent.mkdir(parents=True, exist_ok=True)
    # Built beside it, then renamed over it: a running FerretDB keeps its old file, where
    # writing into it would fail ("text file busy").
    built = FERRET_BIN.with_suffix(".new")
    _run(["go", "build", "-o", str(built), "."], env=_go_env(), cwd=FERRET_SRC)
    built.replace(FERRET_BIN)
    FERRET_STAMP.write_text(_ferret_source_hash())


def _ferret_command(
    host: str,
    port: int,
    data: Path = STATE / "ferretdb" / "data",
    synchronous: str | None = None,
) -> list[str]:
    """FerretDB on SQLite in ``data``, its ``synchronous`` pragma the settings'
    (``OMS_DEVENV_SQLITE_SYNCHRONOUS``; README "Speed levers" says what each keeps)."""
    data.mkdir(parents=True, exist_ok=True)
    command = [str(FERRET_BIN), "-listen", f"{host}:{port}", "-dir", str(data)]
    if not _ferret_installed():  # built before -sqlite-pragmas existed
        _say("ferretdb: the binary predates devenv/ferretdb (make up rebuilds it): its own pragmas")
        return command
    mode = synchronous or Settings.from_env().devenv_sqlite_synchronous
    return [*command, "-sqlite-pragmas", f"synchronous({mode})"]


def _ferret_ready(url: str) -> bool:
    from pymongo import MongoClient  # noqa: PLC0415  (venv only)
    from pymongo.errors import PyMongoError  # noqa: PLC0415

    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=1000)
    try:
        return client.admin.command("ping").get("ok") == 1.0
    except PyMongoError:
        return False
    finally:
        client.close()


# --- Prometheus's tools (for the tests; not a server devenv runs) -----------------------------

PROMETHEUS_DIR = STATE / "prometheus"
PROMETHEUS_BIN = PROMETHEUS_DIR / "usr" / "bin"
PROMETHEUS_TOOLS = ("prometheus", "promtool")


def prometheus_tools() -> None:
    """Unpack Debian's ``prometheus`` package under ``.devenv/prometheus`` (once).

    Unpacked, not installed: installing it would also register a Prometheus service that a
    host with systemd starts at once, listening on every interface. The tests run the two
    binaries themselves: ``promtool`` checks and tests the alert rules and the dashboard's
    queries, ``prometheus`` scrapes a live ``oms serve`` on 127.0.0.1 (tests/deploy/promql.py).
    """
    if all((PROMETHEUS_BIN / tool).exists() for tool in PROMETHEUS_TOOLS):
        return
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DevenvError("prometheus's tools are missing and there is no apt-get to fetch them")
    debs = PROMETHEUS_DIR / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", "update", "-qq"])
    _run(["apt-get", "download", "-qq", "prometheus"], cwd=debs)
    packages = sorted(debs.glob("prometheus_*.deb"))
    if not packages:
        raise DevenvError(f"apt-get download left no prometheus package in {debs}")
    _run(["dpkg-deb", "-x", str(packages[-1]), str(PROMETHEUS_DIR)])


def _prometheus_version() -> str:
    out = subprocess.run(
        [str(PROMETHEUS_BIN / "promtool"), "--version"], capture_output=True, text=True, check=False
    )
    words = (out.stdout or out.stderr).split()
    return words[2] if len(words) > 2 else "?"


# --- wiring -------------------------------------------------------------------------------------


def servers(settings: Settings) -> list[Server]:
    """The three servers, at the addresses the settings name."""
    kafka_host, kafka_port = _host_port(settings.kafka_bootstrap.split(",")[0])
    redis_url = urlsplit(settings.redis_url)
    redis_host, redis_port = redis_url.hostname or "127.0.0.1", redis_url.port or 6379
    mongo_url = urlsplit(settings.mongo_url)
    mongo_host, mongo_port = mongo_url.hostname or "127.0.0.1", mongo_url.port or 27017
    return [
        Server(
            name="kafka",
            host=kafka_host,
            port=kafka_port,
            installed=_kafka_installed,
            install=_kafka_install,
            prepare=lambda: _kafka_prepare(kafka_host, kafka_port),
            command=_kafka_command,
            ready=lambda: _kafka_ready(settings.kafka_bootstrap),
            version=lambda: KAFKA_VERSION,
        ),
        Server(
            name="redis",
            host=redis_host,
            port=redis_port,
            installed=lambda: shutil.which("redis-server") is not None,
            install=_redis_install,
            command=lambda: _redis_command(redis_host, redis_port),
            ready=lambda: _redis_ready(redis_host, redis_port),
            version=_redis_version,
        ),
        Server(
            name="ferretdb",
            host=mongo_host,
            port=mongo_port,
            installed=_ferret_installed,
            install=_ferret_install,
            command=lambda: _ferret_command(
                mongo_host, mongo_port, synchronous=settings.devenv_sqlite_synchronous
            ),
            ready=lambda: _ferret_ready(settings.mongo_url),
            version=lambda: f"{FERRETDB_VERSION} (SQLite)",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``up``, ``down`` or ``status``."""
    parser = argparse.ArgumentParser(prog="devenv", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    started = time.monotonic()
    try:
        if args.action == "up":
            for server in servers(settings):
                server.up()
            prometheus_tools()
            _say(f"prometheus tools {_prometheus_version()} in {PROMETHEUS_BIN}")
            _say(f"all servers ready in {time.monotonic() - started:.1f}s")
        elif args.action == "down":
            for server in reversed(servers(settings)):
                server.down()
        else:
            answering = [server.status() for server in servers(settings)]
            return 0 if all(answering) else 1
    except DevenvError as exc:
        _say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
