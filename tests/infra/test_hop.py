"""What the internal hop between replicas needs from the cluster (issue 14): one shared
``OMS_INTERNAL_TOKEN`` generated in the deployment, each pod advertising its own address, and a
Kafka session timeout no setting or broker raises above the app's 6 s."""

from __future__ import annotations

from typing import Any

import pytest

from oms.config import Settings
from tests.infra.app_manifests import SETTING_NAMES, config_map, container, pod
from tests.infra.synthesis import Synth

pytestmark = pytest.mark.infra

APP_SESSION_TIMEOUT_MS = 6000  # OMS_KAFKA_SESSION_TIMEOUT_S, the app's default
BROKER_DEFAULT_MIN_SESSION_TIMEOUT_MS = 6000  # Kafka's group.min.session.timeout.ms default


def env_vars(env: Synth) -> list[dict[str, Any]]:
    """The app container's ``env`` entries, in their order."""
    return list(container(env).get("env", []))


def env_var(env: Synth, name: str) -> dict[str, Any]:
    (found,) = [e for e in env_vars(env) if e["name"] == name]
    return found


# ---- OMS_INTERNAL_TOKEN ------------------------------------------------------------------------


def test_internal_token_when_synthesized_then_every_pod_reads_one_generated_secret(
    env: Synth,
) -> None:
    secret = env.resource("app", "kubernetes_secret_v1", "internal-token")
    assert secret["metadata"]["name"] == "oms-internal"
    drawn = env.stack("app")["data"]["aws_secretsmanager_random_password"]["internal-token-value"]
    assert drawn["password_length"] >= 32
    assert drawn["exclude_punctuation"] is True
    assert secret["data"] == {
        "token": "${data.aws_secretsmanager_random_password.internal-token-value.random_password}"
    }
    token = env_var(env, "OMS_INTERNAL_TOKEN")
    assert token["value_from"]["secret_key_ref"] == {"name": "oms-internal", "key": "token"}


def test_internal_token_when_planned_again_then_keeps_the_value_it_was_created_with(
    env: Synth,
) -> None:
    # the data source draws a new password at every plan: a changed token in some pods only
    # would refuse every read forwarded between old and new pods
    secret = env.resource("app", "kubernetes_secret_v1", "internal-token")
    assert secret["lifecycle"]["ignore_changes"] == ["data"]
    deployment = env.resource("app", "kubernetes_deployment_v1", "deployment")
    assert "kubernetes_secret_v1.internal-token" in deployment["depends_on"]


def test_internal_token_when_synthesized_then_only_the_serving_container_sees_it(
    env: Synth,
) -> None:
    (topics,) = pod(env)["init_container"]
    assert "env" not in topics
    assert {"secret_ref": {"name": "oms-internal"}} not in container(env)["env_from"]


# ---- OMS_ADVERTISE_URL -------------------------------------------------------------------------


def test_advertise_url_when_synthesized_then_is_the_pods_own_ip_on_the_http_port(
    env: Synth,
) -> None:
    names = [e["name"] for e in env_vars(env)]
    pod_ip = env_var(env, "POD_IP")
    advertise = env_var(env, "OMS_ADVERTISE_URL")
    assert pod_ip["value_from"]["field_ref"]["field_path"] == "status.podIP"
    port = config_map(env)["OMS_HTTP_PORT"]
    assert advertise["value"] == f"http://$(POD_IP):{port}"
    # Kubernetes expands $(POD_IP) only from variables defined before
    assert names.index("POD_IP") < names.index("OMS_ADVERTISE_URL")


def test_advertise_url_when_kubernetes_expands_it_then_the_app_advertises_the_pod(
    env: Synth,
) -> None:
    pod_ip = "10.0.3.7"
    values = {k: ("x" if v.startswith("${") else v) for k, v in config_map(env).items()}
    values["OMS_ADVERTISE_URL"] = env_var(env, "OMS_ADVERTISE_URL")["value"].replace(
        "$(POD_IP)", pod_ip
    )
    settings = Settings.from_env(values)
    assert settings.advertised_url() == f"http://{pod_ip}:{settings.http_port}"


def test_env_when_synthesized_then_names_only_settings_besides_the_pods_ip(env: Synth) -> None:
    names = {e["name"] for e in env_vars(env)}
    assert names - SETTING_NAMES == {"POD_IP"}
    assert not names & set(config_map(env))  # one source per setting


# ---- the Kafka session timeout ------------------------------------------------------------------


def test_session_timeout_when_synthesized_then_is_the_apps_own_six_seconds(env: Synth) -> None:
    assert "OMS_KAFKA_SESSION_TIMEOUT_S" not in config_map(env)
    assert "OMS_KAFKA_SESSION_TIMEOUT_S" not in {e["name"] for e in env_vars(env)}
    assert Settings().kafka_session_timeout_s * 1000 == APP_SESSION_TIMEOUT_MS


def test_brokers_when_synthesized_then_accept_the_apps_session_timeout(env: Synth) -> None:
    if env.profile.kafka.mode == "msk":
        text = env.resource("msk", "aws_msk_configuration", "config")["server_properties"]
        properties = dict(line.split("=", 1) for line in text.splitlines() if line)
    else:
        cluster = env.resource("kafka", "kubernetes_manifest", "cluster")["manifest"]
        properties = cluster["spec"]["kafka"]["config"]
    floor = int(
        properties.get("group.min.session.timeout.ms", BROKER_DEFAULT_MIN_SESSION_TIMEOUT_MS)
    )
    assert floor <= APP_SESSION_TIMEOUT_MS
    assert int(properties.get("group.max.session.timeout.ms", 1_800_000)) >= APP_SESSION_TIMEOUT_MS
