"""The doors of one ``oms serve``: started, restarted when one dies, stopped together.

Each door is ``python -m oms.cli door`` in a child process, given the public address, its
number and the pod's door token in its environment (``OMS_*``, read by its own ``Settings``).
A door that exits while the doors run (a crash, a SIGKILL) is started again after
``RESTART_PAUSE_S``, its number kept; meanwhile the other doors take the port's connections.
``stop`` sends SIGTERM to every door and SIGKILL to any still running after the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from oms.config import Settings, variable_name

logger = logging.getLogger(__name__)

DOOR_COMMAND = (sys.executable, "-m", "oms.cli", "door")
RESTART_PAUSE_S = 0.5  # between a door's death and its restart: no spin on a door that cannot run


def door_environment(
    settings: Settings, index: int, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of door ``index``: ``base`` (this process's) and what makes it that
    door: the public address (a command line's ``--host``/``--port`` included), the engine's
    port, its number and the door token."""

    def name(field: str) -> str:
        return variable_name(Settings, field)

    environ = dict(os.environ if base is None else base)
    environ.update(
        {
            name("http_host"): settings.http_host,
            name("http_port"): str(settings.http_port),
            name("http_internal_port"): str(settings.engine_port()),
            name("door_metrics_port"): str(settings.door_metrics_port_of(0)),
            name("door_index"): str(index),
            name("door_token"): settings.door_token,
        }
    )
    return environ


class DoorSupervisor:
    """Runs ``settings.http_workers`` doors until ``stop``."""

    def __init__(
        self, settings: Settings, stop_timeout_s: float, command: Sequence[str] = DOOR_COMMAND
    ) -> None:
        """``stop_timeout_s``: how long ``stop`` waits for the doors before killing them;
        ``command``: what a door runs (``oms door`` on this interpreter)."""
        self.settings = settings
        self.command = tuple(command)
        self.stop_timeout_s = stop_timeout_s
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.restarts = 0
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *self.command, env=door_environment(self.settings, index)
        )
        self.processes[index] = process
        logger.info("door %d started (pid %d)", index, process.pid)
        return process

    async def start(self) -> None:
        """Start every door (each then kept running by a task of its own)."""
        for index in range(self.settings.http_workers):
            started = asyncio.Event()
            task = asyncio.create_task(self._keep(index, started), name=f"oms-door-{index}")
            self._tasks.append(task)
            await started.wait()
            if task.done():  # it could not even start: say why here
                task.result()

    async def _keep(self, index: int, started: asyncio.Event) -> None:
        """Run door ``index``, again whenever it exits, until ``stop``."""
        try:
            process = await self._spawn(index)
        finally:
            started.set()
        while True:
            status = await process.wait()
            if self._stopping:
                return
            logger.warning(
                "door %d (pid %d) exited with %s; restarting", index, process.pid, status
            )
            self.restarts += 1
            await asyncio.sleep(RESTART_PAUSE_S)
            if self._stopping:
                return
            process = await self._spawn(index)

    def pids(self) -> list[int]:
        """The running doors' process ids, by number."""
        return [self.processes[i].pid for i in sorted(self.processes)]

    async def stop(self) -> None:
        """SIGTERM every door, wait up to the bound, SIGKILL what is left."""
        self._stopping = True
        running = [p for p in self.processes.values() if p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(p.wait()) for p in running]
        if waits:
            _done, late = await asyncio.wait(waits, timeout=self.stop_timeout_s)
            if late:
                logger.error(
                    "%d door(s) did not stop within %.1fs: killed", len(late), self.stop_timeout_s
                )
                for process in running:
                    if process.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            process.kill()
                await asyncio.wait(waits)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
