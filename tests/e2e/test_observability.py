"""What on-call sees of a real ``oms serve``: one order followed by its request id through the
answer, the events and the JSON log; every metric the dashboard and the alert rules read exposed
on ``/metrics``; and a real Prometheus scraping it, every dashboard query answering with data and
every alert rule evaluating cleanly."""

from __future__ import annotations

import asyncio
import math
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from oms.domain.order_ids import client_order_id_order
from oms.stream.names import topic_names
from tests.deploy.promql import (
    RULES,
    dashboard_queries,
    metric_names,
    rule_expressions,
    sample_names,
    tool,
)
from tests.e2e.conftest import (
    Replica,
    drop_database,
    last_price,
    open_account,
    order_until,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
)
from tests.ports import free_port

FUNDS = {"USD": "1000000", "BTC": "10", "ETH": "100", "SOL": "1000"}
TERMINAL = {"SETTLED", "CANCELLED", "REJECTED"}
SCRAPE_S = 1.0
PROMETHEUS_READY_S = 30.0


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Path]]:
    """One ``oms serve`` writing JSON logs to a file, as in its container."""
    require_servers()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    overrides = {
        **run_overrides(uuid.uuid4().hex[:8]),
        "OMS_LOG_FORMAT": "json",
        "OMS_REPLICA": "e2e-observed",
    }
    started = start_replica(overrides, log)
    try:
        yield started, log
    finally:
        stop_replica(started)
        drop_database(started.settings)


def _log(path: Path) -> list[dict[str, Any]]:
    """Every line of the replica's log, each of which must be one JSON object."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


async def _events(http: aiohttp.ClientSession, replica: Replica, order_id: str) -> list[Any]:
    history = await (await http.get(f"{replica.base}/api/orders/{order_id}/events")).json()
    events: list[Any] = history["events"]
    return events


async def _produce(replica: Replica, value: bytes, key: bytes, headers: list[Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=replica.settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        topic = topic_names(replica.settings).orders
        await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def _traffic(http: aiohttp.ClientSession, replica: Replica) -> None:
    """What the dashboard shows: an order filled, one rejected, a record dead-lettered."""
    account = await open_account(http, replica.base, FUNDS, prefix="obs")
    await last_price(http, replica.base, "BTC-USD")
    market = {"account_id": account, "symbol": "BTC-USD", "side": "BUY", "type": "MARKET"}
    filled = await http.post(f"{replica.base}/api/orders", json={**market, "quantity": "0.01"})
    refused = await http.post(f"{replica.base}/api/orders", json={**market, "quantity": "9000"})
    await _produce(replica, b"{not json", account.encode(), [])
    for answer in (filled, refused):
        assert answer.status == 202, await answer.text()
        await order_until(http, replica, (await answer.json())["order_id"], TERMINAL)


async def test_order_when_placed_with_a_request_id_then_its_events_and_log_lines_name_it(
    observed: tuple[Replica, Path], http: aiohttp.ClientSession
) -> None:
    replica, log = observed
    account = await open_account(http, replica.base, FUNDS, prefix="obs")
    await last_price(http, replica.base, "BTC-USD")
    request_id = f"e2e-{uuid.uuid4().hex[:12]}"

    placed = await http.post(
        f"{replica.base}/api/orders",
        json={"account_id": account, "symbol": "BTC-USD", "side": "BUY", "type": "MARKET",
              "quantity": "0.01"},
        headers={"X-Request-ID": request_id},
    )  # fmt: skip
    order_id = (await placed.json())["order_id"]
    order = await order_until(http, replica, order_id, TERMINAL)
    events = await _events(http, replica, order_id)

    assert placed.status == 202
    assert placed.headers["X-Request-ID"] == request_id
    assert order["status"] == "SETTLED"
    assert [(e["type"], e["request_id"]) for e in events][:2] == [
        ("OrderPlaced", request_id),
        ("OrderAccepted", request_id),
    ]
    lines = _log(log)
    for line in lines:
        assert {"ts", "level", "logger", "msg", "replica"} <= set(line), line
        assert line["replica"] == "e2e-observed"
    (access,) = [
        line for line in lines if line["logger"] == "oms.access" and line.get("request_id") == request_id
    ]  # fmt: skip
    assert (access["method"], access["path"], access["status"]) == ("POST", "/api/orders", 202)
    assert (access["order_id"], access["account_id"]) == (order_id, account)
    # Libraries say nothing below WARNING (their chatter); a broker settling a topic just created
    # may still make aiokafka report a transient error, which is its to report, not ours.
    chatter = [
        line
        for line in lines
        if line["logger"].startswith(("aiokafka", "kafka", "pymongo"))
        and line["level"] in ("DEBUG", "INFO")
    ]
    assert not chatter
    assert not [
        line
        for line in lines
        if line["logger"].startswith("oms") and line["level"] in ("ERROR", "CRITICAL")
    ]


async def test_order_when_produced_on_kafka_then_it_carries_its_producer_request_id(
    observed: tuple[Replica, Path], http: aiohttp.ClientSession
) -> None:
    replica, _ = observed
    account = await open_account(http, replica.base, FUNDS, prefix="obs")
    await last_price(http, replica.base, "BTC-USD")

    def record(client_order_id: str) -> bytes:
        return orjson.dumps({
            "type": "PlaceOrder", "client_order_id": client_order_id, "account_id": account,
            "symbol": "BTC-USD", "side": "BUY", "order_type": "MARKET", "quantity": "0.01",
        })  # fmt: skip

    await _produce(replica, record("named"), account.encode(), [("request_id", b"gw-run-7")])
    await _produce(replica, record("unnamed"), account.encode(), [])
    named = client_order_id_order(account, "named")
    unnamed = client_order_id_order(account, "unnamed")
    await order_until(http, replica, named, TERMINAL)
    await order_until(http, replica, unnamed, TERMINAL)

    assert (await _events(http, replica, named))[0]["request_id"] == "gw-run-7"
    generated = (await _events(http, replica, unnamed))[0]["request_id"]
    topic, partition, offset = generated.split("/")
    assert topic == topic_names(replica.settings).orders
    assert int(partition) >= 0
    assert int(offset) >= 0


async def test_metrics_when_live_then_every_metric_of_the_dashboard_and_the_rules_is_exposed(
    observed: tuple[Replica, Path], http: aiohttp.ClientSession
) -> None:
    replica, _ = observed
    await _traffic(http, replica)
    deadline = time.monotonic() + 10
    missing: set[str] = set()
    queries = [*dashboard_queries(), *rule_expressions().items()]
    wanted = set().union(*(metric_names(expr) for _, expr in queries))

    while time.monotonic() < deadline:  # the dead letter's count follows its acknowledgement
        exposed = sample_names(await (await http.get(f"{replica.base}/metrics")).text())
        missing = wanted - exposed
        if not missing:
            break
        await asyncio.sleep(0.2)

    assert len(wanted) >= 20
    assert missing == set()


def _prometheus_config(tmp_path: Path, replica: Replica) -> Path:
    target = replica.base.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"""global:
  scrape_interval: {SCRAPE_S:.0f}s
  evaluation_interval: {SCRAPE_S:.0f}s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: oms
    static_configs:
      - targets: ["{target}"]
"""
    )
    return config


@pytest.fixture
def prometheus(observed: tuple[Replica, Path], tmp_path: Path) -> Iterator[str]:
    """Debian's Prometheus on 127.0.0.1 with its own data directory, scraping the replica every
    second and evaluating the alert rules; its HTTP API's address."""
    replica, _ = observed
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as out:
        server = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={_prometheus_config(tmp_path, replica)}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


async def _query(http: aiohttp.ClientSession, api: str, promql: str) -> list[Any]:
    async with http.get(f"{api}/api/v1/query", params={"query": promql}) as response:
        body = await response.json()
    assert body["status"] == "success", (promql, body)
    result: list[Any] = body["data"]["result"]
    return result


async def _wait_for(what: str, check: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"{what} not within {timeout_s}s"
        await asyncio.sleep(0.25)


async def test_prometheus_when_it_scrapes_a_live_replica_then_every_dashboard_query_has_data(
    observed: tuple[Replica, Path], http: aiohttp.ClientSession, prometheus: str
) -> None:
    replica, _ = observed
    api = prometheus

    async def ready() -> bool:
        try:
            async with http.get(f"{api}/-/ready") as response:
                return response.status == 200
        except aiohttp.ClientConnectionError:
            return False

    async def scrapes() -> float:
        found = await _query(http, api, 'count_over_time(up{job="oms"}[1m])')
        return float(found[0]["value"][1]) if found else 0.0

    await _wait_for("Prometheus ready", ready, PROMETHEUS_READY_S)
    await _wait_for("a first scrape", lambda: _at_least(scrapes, 1), 15)
    await _traffic(http, replica)  # inside the rate windows of the queries
    after = await scrapes() + 3
    await _wait_for("three scrapes after the traffic", lambda: _at_least(scrapes, after), 15)

    up = await _query(http, api, 'up{job="oms"}')
    empty, no_number = [], []
    for title, promql in dashboard_queries():
        result = await _query(http, api, promql)
        if not result:
            empty.append(title)
        elif not any(math.isfinite(float(r["value"][1])) for r in result):
            no_number.append(title)
    async with http.get(f"{api}/api/v1/rules") as response:
        groups = (await response.json())["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]

    assert [float(u["value"][1]) for u in up] == [1.0]
    assert empty == []
    assert no_number == []  # a rate over the traffic, not a NaN of an idle window
    assert sorted(rule["name"] for rule in rules) == sorted(rule_expressions())
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


async def _at_least(count: Any, least: float) -> bool:
    return bool(await count() >= least)
