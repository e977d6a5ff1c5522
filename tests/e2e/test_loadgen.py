"""``oms loadgen`` against a real ``oms serve`` that is SIGKILLed mid-run: the load generator
exits non-zero within a bound, with a summary of what it saw and no traceback; when the server
comes back in time, it cancels what it left resting."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from oms.config import Settings
from tests.e2e.conftest import (
    drop_database,
    require_servers,
    run_overrides,
)
from tests.e2e.crash_flow import Serve
from tests.ports import free_port

pytestmark = pytest.mark.e2e

ORDERS = 3000
GIVE_UP_S = 3.0
EXIT_BOUND_S = 45.0  # from the kill: placing gives up, then the clean-up waits, then it reports


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """A replica of its own (it is killed), its database dropped afterwards."""
    require_servers()
    env = {**os.environ, **run_overrides(uuid.uuid4().hex[:8]),
           "OMS_HTTP_PORT": str(free_port())}  # fmt: skip
    server = Serve(env, tmp_path / "serve.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        drop_database(Settings.from_env(env))


class Loadgen:
    """``oms loadgen`` in a subprocess; its progress lines (standard error) read as they come."""

    def __init__(self, serve: Serve, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "oms.cli", "loadgen", "--orders", str(ORDERS), "--via", "rest",
             "--give-up-after", str(GIVE_UP_S), "--request-timeout", "5", *extra],
            env=serve.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.errors: list[str] = []
        self.placing = threading.Event()  # a quarter of the orders answered
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,))
        self._reader.start()

    def _read(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        for raw in stream:
            line = raw.decode(errors="replace")
            self.errors.append(line)
            progress = re.match(r"placing\s+\[#*\s*\]\s+(\d+)/(\d+)", line)
            if progress and int(progress[1]) * 4 >= int(progress[2]):
                self.placing.set()

    def finish(self, within_s: float) -> tuple[int, str, str, float]:
        """Exit code, standard output and error, and how long it took to exit."""
        started = time.monotonic()
        assert self.process.stdout is not None
        try:
            out, _ = self.process.communicate(timeout=within_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self._reader.join(5)
        return (
            self.process.returncode,
            out.decode(),
            "".join(self.errors),
            (time.monotonic() - started),
        )


def _figure(summary: str, name: str) -> str:
    found = re.search(rf"^{name}: (.*)$", summary, re.MULTILINE)
    assert found, f"no {name} in the summary:\n{summary}"
    return found[1]


def test_loadgen_when_the_server_is_killed_mid_run_then_exits_non_zero_with_a_summary(
    serve: Serve,
) -> None:
    # Arrange: a run well under way
    loadgen = Loadgen(serve, "--cleanup-wait", "3")
    assert loadgen.placing.wait(60), "".join(loadgen.errors)

    # Act
    serve.kill()
    code, out, err, took = loadgen.finish(EXIT_BOUND_S)

    # Assert: non-zero, in time, a summary of what it saw, no traceback
    assert code == 1, out + err
    assert took < EXIT_BOUND_S
    assert "Traceback" not in out + err
    assert _figure(out, "server_lost") == "yes"
    assert _figure(out, "result").startswith("FAILED")
    assert 0 < int(_figure(out, "orders_placed")) < ORDERS
    assert int(_figure(out, "orders_sent")) + int(_figure(out, "orders_not_sent")) == ORDERS
    assert int(_figure(out, "unaccounted")) > 0
    assert re.search(r"^errors_(connect_refused|disconnected|timeout|connection_error): \d+$",
                     out, re.MULTILINE), out  # fmt: skip


def test_loadgen_when_the_server_comes_back_then_cancels_what_it_left_resting(
    serve: Serve,
) -> None:
    # Arrange: a run well under way, and the server killed
    # The server stays away twice as long as the load generator waits before it gives up, so
    # the run is lost whatever the machine's speed, and the clean-up is what is tested.
    loadgen = Loadgen(serve, "--cleanup-wait", "30")
    assert loadgen.placing.wait(60), "".join(loadgen.errors)
    serve.kill()
    time.sleep(2 * GIVE_UP_S)

    # Act: back while the load generator waits to clean up
    serve.start()
    code, out, err, _ = loadgen.finish(EXIT_BOUND_S)

    # Assert: still a failed run (the server died), but what rested is cancelled
    assert code == 1, out + err
    assert "Traceback" not in out + err
    assert _figure(out, "server_lost") == "yes"
    assert int(_figure(out, "cancelled_at_cleanup")) > 0
    assert int(_figure(out, "final_cancelled")) > 0
