"""The alert rules load in Prometheus and behave as their promtool test cases say, one case (or
more) per alert."""

from __future__ import annotations

import subprocess

from tests.deploy.promql import RULE_TESTS, RULES, alerts_with_cases, rule_expressions, tool

ALERTS = {
    "OmsConsumerLagGrowing", "OmsStoreBacklogGrowing", "OmsDeadLetters", "OmsHttp5xxRate",
    "OmsOrderLatencyP99OverSlo", "OmsReplicaNotReady", "OmsReplicaDown", "OmsKillSwitchPulled",
    "OmsAccountsHalted", "OmsNoTicks", "OmsOrdersInDoubt", "OmsReconcileDiscrepancies",
    "OmsGcPausesLong",
}  # fmt: skip


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_check_when_given_the_rules_then_every_rule_loads() -> None:
    checked = _promtool("check", "rules", str(RULES))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout


def test_promtool_test_when_run_on_the_cases_then_every_case_passes() -> None:
    tested = _promtool("test", "rules", str(RULE_TESTS))

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_rules_when_listed_then_they_are_the_alerts_on_call_asked_for_each_with_a_case() -> None:
    assert set(rule_expressions()) == ALERTS
    assert alerts_with_cases() == ALERTS
