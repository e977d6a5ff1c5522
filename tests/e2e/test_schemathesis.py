"""Schemathesis against a real ``oms serve``'s ``/api/openapi.json`` with an admin key: no 5xx,
and every answer (status, content type, headers, body) matches the document.

Bounded: at most ``MAX_EXAMPLES`` cases per operation per phase and ``MAX_TIME_S`` in all (the
fuzzing phase repeats until the time is spent), with a fixed seed so a failure replays.

One check is left out, ``positive_data_acceptance`` (a request the schema allows must get a
2xx): the document describes shapes, and some refusals need the state or the settings to
decide, so they are right to answer 422 for a schema-valid request: a symbol that is not
listed, a limit of zero, a cursor this API never gave, a WebSocket route asked without an
upgrade or an account. ``tests/unit/api`` checks those refusals one by one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from oms.domain.access import Role
from oms.store.api_keys import create_key
from tests.e2e.conftest import Replica

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 10
MAX_TIME_S = 30
SEED = 20261206
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_every_operation_when_fuzzed_with_an_admin_key_then_no_5xx_and_answers_match_the_document(
    replica: Replica, tmp_path: Path
) -> None:
    # Arrange
    key = create_key(replica.settings, Role.ADMIN, name="schemathesis").key
    report = tmp_path / "schemathesis.json"

    # Act
    run = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{replica.base}/api/openapi.json",
         "--header", f"Authorization: Bearer {key}",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance",
         "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_TIME_S),
         "--seed", str(SEED), "--workers", "1", "--request-timeout", "10",
         "--report", "json", "--report-json-path", str(report)],
        capture_output=True, text=True, timeout=MAX_TIME_S + 60, check=False,
        cwd=tmp_path,  # its cache (.schemathesis/) stays out of the repository
    )  # fmt: skip

    # Assert
    summary = json.loads(report.read_text())
    operations, cases = summary["operations"], summary["test_cases"]
    print(
        f"schemathesis: {operations['tested']}/{operations['total']} operations, "
        f"{cases['generated']} cases, {cases['with_failures']} with failures, "
        f"{len(summary['errors'])} errors, {summary['running_time']:.1f} s"
    )
    assert summary["failures"] == [], run.stdout[-6000:]
    assert summary["errors"] == [], run.stdout[-6000:]
    assert run.returncode == 0, run.stdout[-6000:]
    assert operations["tested"] == operations["total"]
    assert cases["generated"] > 0
