"""``oms cluster up``: K real replicas of one group on their own ports, stopped cleanly together."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from oms.config import Settings
from oms.domain.access import Role
from oms.store.api_keys import create_key
from oms.stream.names import topic_names
from tests.e2e.conftest import drop_database, require_servers, run_overrides
from tests.ports import free_port

pytestmark = pytest.mark.e2e

UP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 40.0


async def _orders_partitions(base: str, key: str, topic: str) -> set[int]:
    """The partitions of ``orders`` a replica consumes (its consumer lag's labels); empty while
    it does not answer."""
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
            http.get(f"{base}/metrics", headers=headers) as response,
        ):
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return set()
    return {
        int(line.split('partition="')[1].split('"')[0])
        for line in text.splitlines()
        if line.startswith("oms_consumer_lag{") and f'topic="{topic}"' in line
    }


def test_cluster_up_when_two_replicas_then_each_owns_a_partition_and_ctrl_c_stops_both(
    tmp_path: Path,
) -> None:
    # Arrange
    require_servers()
    overrides = run_overrides(uuid.uuid4().hex[:8])
    settings = Settings.from_env({**os.environ, **overrides})
    key = create_key(settings, Role.ADMIN, name="e2e cluster").key
    first_port = free_port()
    second_port = first_port + 1
    topic = topic_names(settings).orders
    log = tmp_path / "cluster.log"

    # Act: start two replicas, wait until they split the two partitions, then Ctrl-C
    with log.open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "oms.cli", "cluster", "up", "--replicas", "2",
             "--base-port", str(first_port)],
            env={**os.environ, **overrides}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        async def split() -> list[set[int]]:
            deadline = time.monotonic() + UP_TIMEOUT_S
            while True:
                shares = [
                    await _orders_partitions(f"http://127.0.0.1:{port}", key, topic)
                    for port in (first_port, second_port)
                ]
                if sorted(shares, key=sorted) == [{0}, {1}]:
                    return shares
                assert launcher.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, f"never split: {shares}"
                await asyncio.sleep(0.5)

        shares = asyncio.run(split())
        launcher.send_signal(signal.SIGINT)
        status = launcher.wait(STOP_TIMEOUT_S)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(10)
        drop_database(settings)

    # Assert: one partition each; both stopped cleanly, once each
    text = log.read_text()
    assert sorted(shares, key=sorted) == [{0}, {1}]
    assert status == 0, text[-2000:]
    assert text.count("oms stopping") == 2, text[-2000:]
    assert "second stop signal" not in text
    assert asyncio.run(_orders_partitions(f"http://127.0.0.1:{first_port}", key, topic)) == set()
