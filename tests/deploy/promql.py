"""The dashboard's and the alert rules' queries, read from ``deploy/``, and the metric names
they use: what the deploy tests check against promtool, a live ``/metrics`` and a live
Prometheus."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "oms.json"
RULES = ROOT / "deploy" / "prometheus" / "oms-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "oms-rules.test.yml"

# Grafana's variables, as a query runs with every replica selected over a short range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$instance": ".*"}
_METRIC = re.compile(r"\b(oms_[a-z0-9_]+)\b")


def dashboard() -> dict[str, object]:
    """The dashboard's JSON model."""
    model: dict[str, object] = json.loads(DASHBOARD.read_text())
    return model


def dashboard_queries() -> list[tuple[str, str]]:
    """``(panel title and refId, PromQL)`` of every query, Grafana's variables filled in."""
    queries = []
    for panel in dashboard()["panels"]:  # type: ignore[attr-defined]
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            queries.append((f"{panel['title']} [{target['refId']}]", expr))
    return queries


def rule_expressions() -> dict[str, str]:
    """Each alert's ``expr`` by alert name (the rule file's block scalars joined)."""
    exprs: dict[str, str] = {}
    alert: str | None = None
    lines = RULES.read_text().splitlines()
    for i, line in enumerate(lines):
        named = re.match(r"\s*- alert: (\S+)", line)
        if named:
            alert = named.group(1)
            continue
        found = re.match(r"(\s*)expr: (.*)$", line)
        if found is None or alert is None:
            continue
        indent, value = len(found.group(1)), found.group(2).strip()
        if value == "|":
            block = []
            for following in lines[i + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following.strip())
            value = " ".join(part for part in block if part)
        exprs[alert] = value
    return exprs


def alerts_with_cases() -> set[str]:
    """The alert names the promtool test file has cases for."""
    return set(re.findall(r"alertname: (\S+)", RULE_TESTS.read_text()))


def metric_names(expr: str) -> set[str]:
    """The oms metric names (sample names: ``_bucket``, ``_total`` included) a query reads."""
    return set(_METRIC.findall(expr))


def sample_names(exposition: str) -> set[str]:
    """The sample names a ``/metrics`` answer holds."""
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }


def tool(name: str) -> str:
    """The path of Debian's ``prometheus`` package's ``name`` (``promtool``, ``prometheus``):
    the one ``make up`` unpacks under ``.devenv/``, else one installed on the machine."""
    unpacked = ROOT / ".devenv" / "prometheus" / "usr" / "bin" / name
    path = str(unpacked) if unpacked.exists() else shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is missing: `make up` (devenv/devenv.py) unpacks Debian's prometheus"
            " package under .devenv/ (or `apt-get install -y prometheus`)"
        )
    return path
