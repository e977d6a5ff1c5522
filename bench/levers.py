"""The speed levers' A/B matrix: ``bench/e2e.py`` with each lever on and off, interleaved.

    python bench/levers.py                 # all, event_loop, middleware, ferretdb: ~13 minutes
    python bench/levers.py --levers gil_switch,linger,redis_parser --runs 3
    python bench/levers.py --levers all --runs 4 --seconds 20 --latency-seconds 10

Each lever is a setting (``oms/config.py``; README "Speed levers"); *on* is the default the code
ships, *off* the value before issue 19 (``all``: every lever off at once against every one on).
The tunings (``store_linger``, ``store_concurrency``, ``store_max_batch``, ``drain_every``,
``ingest_batch``) kept their defaults: their *off* is the other value worth trying.
A run starts ``bench/e2e.py`` (``--skip-ceilings``) with the lever's setting in its environment
(``oms serve`` and the benchmark's own Kafka producer read it), on a private FerretDB of its own:
a fresh SQLite directory on a free loopback port, started with the run's ``synchronous``
pragma (the ``ferretdb`` lever), stopped and removed afterwards. Kafka and Redis are the shared
local servers (``make up``). So that a drift of the machine hits both sides alike, the runs
interleave: run 1 of every lever and via, then run 2, each pair's order alternating.

One line per run (``name=value`` fields), then a summary line per lever, via and side (means).
Nothing is asserted. Run it on a quiet machine: nothing else running (no tests, no other
benchmark); every line carries the load average at its start to show it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "devenv"))

import devenv  # noqa: E402  (devenv/devenv.py: how the local servers are built and run)
from tests.ports import free_port  # noqa: E402

HOST = "127.0.0.1"
FIGURES = (
    "orders_per_s",
    "p50_ms",
    "p99_ms",
    "cpu_us_per_order_service",
    "cpu_cores_busy",
    "leg_post_p50_ms",
    "leg_entry_p50_ms",
    "leg_durable_p50_ms",
    "machine_probe_before_ms",  # the machine's own speed: sides compare only where it agrees
)


@dataclass(frozen=True)
class Lever:
    """A setting's shipped value (on) and the one before issue 19 (off), and where it acts."""

    name: str
    on: dict[str, str]
    off: dict[str, str]
    vias: tuple[str, ...] = ("rest", "kafka")


LEVERS = (
    Lever("event_loop", {"OMS_EVENT_LOOP": "uvloop"}, {"OMS_EVENT_LOOP": "asyncio"}),
    # Only the door talks to Redis.
    Lever(
        "redis_parser", {"OMS_REDIS_PARSER": "hiredis"}, {"OMS_REDIS_PARSER": "python"}, ("rest",)
    ),
    Lever(
        "middleware",
        {"OMS_HTTP_MIDDLEWARE": "folded"},
        {"OMS_HTTP_MIDDLEWARE": "layered"},
        ("rest",),
    ),
    Lever(
        "gil_switch", {"OMS_GIL_SWITCH_INTERVAL_S": "0.001"}, {"OMS_GIL_SWITCH_INTERVAL_S": "0.005"}
    ),
    Lever(
        "linger",
        {"OMS_ORDERS_LINGER_MS": "0", "OMS_EVENTS_LINGER_MS": "0"},
        {"OMS_ORDERS_LINGER_MS": "1", "OMS_EVENTS_LINGER_MS": "2"},
    ),
    Lever(
        "ferretdb",
        {"OMS_DEVENV_SQLITE_SYNCHRONOUS": "normal"},
        {"OMS_DEVENV_SQLITE_SYNCHRONOUS": "full"},
    ),
    Lever(
        "gc",
        {"OMS_GC_YOUNG_THRESHOLD": "20000", "OMS_GC_FREEZE_SURVIVORS": "true"},
        {"OMS_GC_YOUNG_THRESHOLD": "200000", "OMS_GC_FREEZE_SURVIVORS": "false"},
    ),
    # Durable once the recovery log has a batch, ``orders`` written behind it; or only once
    # ``orders`` has it too.
    Lever("projection", {"OMS_STORE_PROJECTION": "behind"}, {"OMS_STORE_PROJECTION": "inline"}),
    # A fetch waits up to 10 ms for 64 KiB of orders; or answers at the first byte (aiokafka's).
    Lever(
        "ingest_fetch",
        {"OMS_INGEST_FETCH_MIN_BYTES": "65536", "OMS_INGEST_FETCH_MAX_WAIT_MS": "10"},
        {"OMS_INGEST_FETCH_MIN_BYTES": "1", "OMS_INGEST_FETCH_MAX_WAIT_MS": "500"},
    ),
    # Commit barriers at least 100 ms apart while nothing hurries them; or one per fetch.
    Lever(
        "commit_interval",
        {"OMS_INGEST_COMMIT_INTERVAL_MS": "100"},
        {"OMS_INGEST_COMMIT_INTERVAL_MS": "0"},
        ("kafka",),
    ),
    # The store's writer on the serving loop; or on a loop and thread of its own.
    Lever("store_loop", {"OMS_STORE_LOOP": "service"}, {"OMS_STORE_LOOP": "own"}),
    # The engine's dispatcher in turns of the serving loop; or on a thread of its own.
    Lever("engine_loop", {"OMS_ENGINE_LOOP": "service"}, {"OMS_ENGINE_LOOP": "own"}),
    # A projector gathers logged batches for 50 ms before inserting into ``orders``; or at once.
    Lever(
        "project_linger",
        {"OMS_STORE_PROJECT_LINGER_S": "0.05"},
        {"OMS_STORE_PROJECT_LINGER_S": "0"},
    ),
)
# Settings whose default did not change: "off" here is the other value worth trying, not an
# earlier one. Not in ``all``; run them by name.
TUNINGS = (
    Lever("store_linger", {"OMS_STORE_LINGER_S": "0.002"}, {"OMS_STORE_LINGER_S": "0"}),
    Lever("store_concurrency", {"OMS_STORE_CONCURRENCY": "2"}, {"OMS_STORE_CONCURRENCY": "1"}),
    Lever("store_max_batch", {"OMS_STORE_MAX_BATCH": "1000"}, {"OMS_STORE_MAX_BATCH": "250"}),
    Lever("drain_every", {"OMS_ENGINE_DRAIN_EVERY": "256"}, {"OMS_ENGINE_DRAIN_EVERY": "64"}),
    Lever("ingest_batch", {"OMS_INGEST_BATCH_SIZE": "1000"}, {"OMS_INGEST_BATCH_SIZE": "250"}),
)
ALL = Lever(
    "all",
    {k: v for lever in LEVERS for k, v in lever.on.items()},
    {k: v for lever in LEVERS for k, v in lever.off.items()},
)
BY_NAME = {lever.name: lever for lever in (ALL, *LEVERS, *TUNINGS)}
# The default matrix: 28 runs of about 28 s (a run's fixed cost, ~20 s, is starting oms serve,
# its topics and accounts, and draining): about 13 minutes. The others by name.
DEFAULT_LEVERS = ("all", "event_loop", "middleware", "ferretdb")


class PrivateFerret:
    """A FerretDB of one run: fresh directory, free port, the run's ``synchronous`` pragma."""

    def __init__(self, synchronous: str) -> None:
        self.synchronous = synchronous
        self.port = free_port()
        self.url = f"mongodb://{HOST}:{self.port}/"
        self.root = Path(tempfile.mkdtemp(prefix="oms-levers-"))
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrivateFerret:
        command = devenv._ferret_command(HOST, self.port, self.root / "data", self.synchronous)
        with (self.root / "ferretdb.log").open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not devenv._ferret_ready(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private FerretDB did not start; see {self.root}")
            time.sleep(0.2)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def devenv_dir(self) -> Path:
        """A ``--devenv`` for e2e.py's CPU meter: the shared Kafka's and Redis's pid files, and
        this FerretDB's."""
        run = self.root / "devenv" / "run"
        run.mkdir(parents=True)
        for name in ("kafka", "redis"):
            with contextlib.suppress(OSError):
                shutil.copy(devenv.STATE / "run" / f"{name}.pid", run / f"{name}.pid")
        assert self.process is not None
        (run / "ferretdb.pid").write_text(str(self.process.pid))
        return run.parent


def one_run(args: argparse.Namespace, via: str, settings: dict[str, str]) -> dict[str, str]:
    """``bench/e2e.py`` once with ``settings`` in its environment; its ``name: value`` lines."""
    synchronous = settings.get("OMS_DEVENV_SQLITE_SYNCHRONOUS", "normal")
    with PrivateFerret(synchronous) as ferret:
        env = {**os.environ, **settings, "OMS_MONGO_URL": ferret.url}
        command = [
            sys.executable,
            str(ROOT / "bench" / "e2e.py"),
            f"--via={via}",
            f"--seconds={args.seconds:g}",
            f"--latency-seconds={args.latency_seconds:g}",
            f"--rate={args.rate:g}",
            f"--devenv={ferret.devenv_dir()}",
            "--skip-ceilings",
        ]
        done = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=args.run_timeout_s,
            check=False,
        )
    figures = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    if done.returncode != 0:
        figures["error"] = f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"
    return figures


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--levers",
        default=",".join(DEFAULT_LEVERS),
        help=f"comma-separated, of: {', '.join(BY_NAME)} (default: %(default)s)",
    )
    parser.add_argument("--vias", default="rest,kafka")
    parser.add_argument("--runs", type=int, default=2, help="runs of each lever, via and side")
    parser.add_argument("--seconds", type=float, default=5.0, help="e2e.py --seconds")
    parser.add_argument("--latency-seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="e2e.py --rate (latency)")
    parser.add_argument("--run-timeout-s", type=float, default=300.0)
    parser.add_argument(
        "--estimate-s", type=float, default=20.0, help="fixed cost of one run, for the estimate"
    )
    return parser.parse_args()


def main() -> int:
    """Run the matrix; print a line per run and the means."""
    args = _arguments()
    levers = [BY_NAME[name.strip()] for name in args.levers.split(",") if name.strip()]
    vias = [via.strip() for via in args.vias.split(",") if via.strip()]
    if not devenv._ferret_installed():  # the -sqlite-pragmas flag is newer than the build
        print("building ferretdb-oms (devenv/ferretdb changed)", flush=True)
        devenv._ferret_install()
    plan = [
        (n, lever, via, side)
        for n in range(args.runs)
        for lever in levers
        for via in vias
        if via in lever.vias
        for side in (("on", "off") if n % 2 == 0 else ("off", "on"))
    ]
    each_s = args.estimate_s + args.seconds + args.latency_seconds
    print(f"runs: {len(plan)}  estimated_minutes: {len(plan) * each_s / 60:.0f}", flush=True)
    means: dict[tuple[str, str, str], list[dict[str, float]]] = defaultdict(list)
    for number, (n, lever, via, side) in enumerate(plan, 1):
        settings = lever.on if side == "on" else lever.off
        load1 = os.getloadavg()[0]
        figures = one_run(args, via, settings)
        fields = [f"run={number}", f"round={n + 1}", f"lever={lever.name}", f"via={via}"]
        fields += [f"side={side}", *(f"{k}={v}" for k, v in sorted(settings.items()))]
        fields += [f"{name}={figures.get(name, 'nan')}" for name in FIGURES]
        fields.append(f"load1={load1:.2f}")
        if "error" in figures:
            fields.append(f"error={figures['error']!r}")
        print(" ".join(fields), flush=True)
        with contextlib.suppress(ValueError):
            means[lever.name, via, side].append({k: float(figures[k]) for k in FIGURES})
    for (lever_name, via, side), runs in sorted(means.items()):
        mean = {k: sum(r[k] for r in runs) / len(runs) for k in FIGURES}
        print(
            f"mean lever={lever_name} via={via} side={side} runs={len(runs)} "
            + " ".join(f"{k}={v:.1f}" for k, v in mean.items()),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
