"""The Grafana dashboard: every panel has queries that Prometheus parses, laid out on the grid,
covering what on-call asked for, per replica. (That each metric it reads exists in a real
``/metrics`` and each query returns data from a real scrape: tests/e2e/test_observability.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.deploy.promql import dashboard, dashboard_queries, metric_names, tool

# What the issue asks the dashboard to show, by the metric that shows it.
WANTED = {
    "orders/s by status": "oms_order_transitions_total",
    "rejects by reason": "oms_order_rejects_total",
    "latency legs p50/p99": "oms_order_latency_seconds_bucket",
    "consumer lag per partition": "oms_consumer_lag",
    "store backlog": "oms_store_backlog_orders",
    "store write time": "oms_store_write_duration_seconds_bucket",
    "dead letters": "oms_dead_letters_by_reason_total",
    "kill-switch state": "oms_kill_switch",
    "where the time goes": "oms_order_leg_seconds_bucket",
    "the commit barrier's steps": "oms_ingest_barrier_step_seconds_total",
}


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = dashboard()["panels"]  # type: ignore[assignment]
    return panels


def test_dashboard_when_loaded_then_every_panel_queries_prometheus_and_fits_the_grid() -> None:
    model = dashboard()
    panels = [p for p in _panels() if p["type"] != "row"]

    assert model["uid"] == "oms-overview"
    assert len({p["id"] for p in _panels()}) == len(_panels())
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"]["type"] == "prometheus", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(set(refs)) == len(refs), panel["title"]


def test_dashboard_when_read_then_it_shows_what_on_call_asked_for_per_replica() -> None:
    used = set().union(*(metric_names(expr) for _, expr in dashboard_queries()))
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}  # type: ignore[index]

    assert {what: metric in used for what, metric in WANTED.items()} == dict.fromkeys(WANTED, True)
    assert variables["instance"]["includeAll"] is True
    for title, expr in dashboard_queries():
        assert 'instance=~".*"' in expr, f"{title} cannot be narrowed to a replica"


def test_dashboard_queries_when_checked_by_promtool_then_each_one_parses(tmp_path: Path) -> None:
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (title, expr) in enumerate(dashboard_queries()):
        rules += [f"      - record: dashboard:query_{i}", f"        expr: '{expr}'"]
        assert "'" not in expr, title
    path = tmp_path / "dashboard-queries.yml"
    path.write_text("\n".join(rules) + "\n")

    checked = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(dashboard_queries())} rules found" in checked.stdout
