"""The doors' supervisor: each door's environment, a dead door restarted, all stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from oms.config import Settings
from oms.doors.supervisor import DoorSupervisor, door_environment

# A door that lives until signalled (SIGTERM ends it, as it ends a real door).
SLEEPER = (sys.executable, "-c", "import time; time.sleep(60)")
# A door that ignores SIGTERM: only the SIGKILL after the bound ends it.
STUBBORN = (
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
)


def test_door_environment_when_built_then_names_its_port_index_engine_port_and_token() -> None:
    # Arrange
    settings = Settings(http_port=9000, door_token="t0k", http_workers=2)

    # Act
    environ = door_environment(settings, 1, base={"OMS_REPLICA": "r1"})

    # Assert
    assert environ["OMS_REPLICA"] == "r1"
    assert environ["OMS_HTTP_PORT"] == "9000"
    assert environ["OMS_HTTP_INTERNAL_PORT"] == "9001"
    assert environ["OMS_DOOR_METRICS_PORT"] == "9002"
    assert environ["OMS_DOOR_INDEX"] == "1"
    assert environ["OMS_DOOR_TOKEN"] == "t0k"
    assert Settings.from_env(environ).door_metrics_port_of(1) == 9003


async def test_supervisor_when_a_door_is_killed_then_restarted_and_all_stop_on_stop() -> None:
    # Arrange
    supervisor = DoorSupervisor(Settings(http_workers=2), stop_timeout_s=5.0, command=SLEEPER)
    await supervisor.start()
    first = supervisor.pids()

    # Act
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while supervisor.pids()[0] == first[0]:
        assert time.monotonic() < deadline, "the killed door was not restarted"
        await asyncio.sleep(0.05)
    restarted = supervisor.pids()
    await supervisor.stop()

    # Assert
    assert len(first) == 2
    assert restarted[0] != first[0]
    assert restarted[1] == first[1]
    assert supervisor.restarts == 1
    assert all(p.returncode is not None for p in supervisor.processes.values())


async def test_supervisor_when_a_door_ignores_sigterm_then_killed_after_the_bound() -> None:
    # Arrange
    supervisor = DoorSupervisor(Settings(http_workers=1), stop_timeout_s=0.5, command=STUBBORN)
    await supervisor.start()
    await asyncio.sleep(0.3)  # its SIGTERM handler is set

    # Act
    began = time.monotonic()
    await supervisor.stop()
    took = time.monotonic() - began

    # Assert
    assert supervisor.processes[0].returncode == -signal.SIGKILL
    assert took < 3.0
