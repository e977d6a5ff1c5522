"""Replicas that hand over cleanly (issue 14): reads from the primary, a rollout that cannot
hang at the partition count, a stop that outlasts the app's bounded shutdown, nodes for KEDA's
replicas, requests sized from the measured CPU per order, and a slow scale-up."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from oms_infra.stacks.deployment import TERMINATION_GRACE_S

from oms.config import Settings
from tests.infra.app_manifests import config_map, container, pod, scaled_object
from tests.infra.synthesis import Synth, profile_of, synthesize

pytestmark = pytest.mark.infra

APP_SHUTDOWN_WATCHDOG_S = 5  # oms serve exits this long after OMS_SHUTDOWN_TIMEOUT_S at most


def test_documentdb_urls_when_synthesized_then_read_from_the_primary(env: Synth) -> None:
    for secret in ("secret-value", "app-secret-value"):
        value = env.resource("documentdb", "aws_secretsmanager_secret_version", secret)
        assert "readPreference=primary&" in value["secret_string"]
        assert "secondaryPreferred" not in value["secret_string"]


def test_rollout_when_synthesized_then_takes_a_pod_away_before_adding_one(env: Synth) -> None:
    deployment = env.resource("app", "kubernetes_deployment_v1", "deployment")
    rolling = deployment["spec"]["strategy"]["rolling_update"]
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert rolling == {"max_surge": "0", "max_unavailable": "1"}


def test_stopping_pod_when_synthesized_then_gets_longer_than_the_apps_bounded_shutdown(
    env: Synth,
) -> None:
    shutdown = float(config_map(env)["OMS_SHUTDOWN_TIMEOUT_S"])
    (pre_stop,) = container(env)["lifecycle"]["pre_stop"]
    sleep = int(pre_stop["exec"]["command"][1])
    assert pre_stop["exec"]["command"][0] == "sleep"
    grace = pod(env)["termination_grace_period_seconds"]
    assert grace == TERMINATION_GRACE_S >= 30
    assert grace > sleep + shutdown + APP_SHUTDOWN_WATCHDOG_S
    assert shutdown == Settings().shutdown_timeout_s  # written out, the app's own default


def test_cpu_request_when_sized_then_is_the_target_rate_at_the_measured_cost_per_order() -> None:
    from oms_infra.sizing import cpu_request  # noqa: PLC0415

    requests = {name: cpu_request(profile_of(name)) for name in ("dev", "prod", "cost")}
    assert requests == {"dev": "250m", "prod": "400m", "cost": "250m"}
    dev = profile_of("dev")
    busier = dataclasses.replace(dev, app=dataclasses.replace(dev.app, orders_per_s=1000))
    assert cpu_request(busier) == "800m"  # 700 us x 1,000/s + 100m baseline


def test_container_when_synthesized_then_asks_for_the_sized_cpu_with_no_cpu_limit(
    env: Synth,
) -> None:
    from oms_infra.sizing import cpu_request  # noqa: PLC0415

    resources = container(env)["resources"]
    assert resources["requests"]["cpu"] == cpu_request(env.profile)
    assert "cpu" not in resources["limits"]


def test_keda_when_synthesized_then_scales_up_slowly_and_down_more_slowly(env: Synth) -> None:
    behavior = scaled_object(env)["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    up, down = behavior["scaleUp"], behavior["scaleDown"]
    assert up["stabilizationWindowSeconds"] >= 60
    assert up["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]
    assert down["stabilizationWindowSeconds"] >= up["stabilizationWindowSeconds"]
    assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]


# ---- nodes follow the pods --------------------------------------------------------------------


def test_cluster_autoscaler_when_synthesized_then_resizes_this_clusters_node_group(
    env: Synth,
) -> None:
    deployment = env.resource("autoscaler", "kubernetes_manifest", "deployment")["manifest"]
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    assert main["image"].endswith(f":v{env.profile.eks.kubernetes_version}.0")
    cluster = f"{env.profile.prefix}-eks"
    assert "--cloud-provider=aws" in main["command"]
    assert (
        "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
        f"k8s.io/cluster-autoscaler/{cluster}"
    ) in main["command"]
    template = deployment["spec"]["template"]["spec"]
    assert template["serviceAccountName"] == "cluster-autoscaler"
    assert env.manifest["stacks"][f"{env.profile.prefix}-autoscaler"]["dependencies"] == [
        f"{env.profile.prefix}-eks"
    ]
    nodes = env.resource("eks", "aws_eks_node_group", "nodes")
    assert nodes["scaling_config"]["max_size"] == env.profile.eks.nodes_max
    assert nodes["lifecycle"]["ignore_changes"] == ["scaling_config[0].desired_size"]


def test_cluster_autoscaler_when_synthesized_then_may_resize_only_this_clusters_groups(
    env: Synth,
) -> None:
    identity = env.resource("eks", "aws_eks_pod_identity_association", "autoscaler-identity")
    assert (identity["namespace"], identity["service_account"]) == (
        "kube-system",
        "cluster-autoscaler",
    )
    policy = json.loads(env.resource("eks", "aws_iam_role_policy", "autoscaler-policy")["policy"])
    writes = [s for s in policy["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"]]
    (write,) = writes
    cluster = f"{env.profile.prefix}-eks"
    assert write["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}": "owned"}
    }


def test_cpu_request_when_the_target_rate_changes_then_moves_with_it(tmp_path: Path) -> None:
    dev = profile_of("dev")
    busier = dataclasses.replace(dev, app=dataclasses.replace(dev.app, orders_per_s=600))
    synth = synthesize(busier, tmp_path / "busier")
    assert container(synth)["resources"]["requests"]["cpu"] == "550m"  # 420m + 100m, rounded up
