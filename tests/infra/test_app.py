"""The app on Kubernetes agrees with the settings oms reads, and scales with its partitions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from oms_infra.profile import REPLICATION_FACTOR

from oms.config import Settings
from tests.infra.app_manifests import (
    SETTING_NAMES,
    config_map,
    container,
    pod,
    scaled_object,
)
from tests.infra.synthesis import Synth, profile_of, synthesize

pytestmark = pytest.mark.infra


# ---- settings: names and values the app reads ----------------------------------------------


def test_config_map_and_secret_when_synthesized_then_set_only_settings_the_app_reads(
    env: Synth,
) -> None:
    secret = env.resource("app", "kubernetes_secret_v1", "credentials")["data"]
    assert set(config_map(env)) <= SETTING_NAMES
    assert set(secret) == {"OMS_MONGO_URL", "OMS_REDIS_URL"}
    assert set(secret) <= SETTING_NAMES


def test_config_map_when_the_app_reads_it_then_every_value_parses(env: Synth) -> None:
    values = {k: ("x" if v.startswith("${") else v) for k, v in config_map(env).items()}
    settings = Settings.from_env(values)
    assert settings.http_host == "0.0.0.0"
    assert settings.http_port == 8080
    assert settings.topic_replication_factor == REPLICATION_FACTOR
    assert [str(n) for n in settings.trusted_proxies] == [env.profile.network.vpc_cidr]


def test_credentials_when_synthesized_then_come_from_the_stores_secrets(env: Synth) -> None:
    secret = env.resource("app", "kubernetes_secret_v1", "credentials")["data"]
    for variable, source, arn in (
        ("OMS_MONGO_URL", "documentdb-app", "${aws_secretsmanager_secret.app-secret.arn}"),
        ("OMS_REDIS_URL", "redis", "${aws_secretsmanager_secret.secret.arn}"),
    ):
        lookup = f"data.aws_secretsmanager_secret_version.{source}-secret.secret_string"
        assert secret[variable] == f"${{jsondecode({lookup}).url}}"
        version = env.stack("app")["data"]["aws_secretsmanager_secret_version"][f"{source}-secret"]
        assert env.resolve("app", version["secret_id"]) == arn


def test_store_urls_when_synthesized_then_use_tls(env: Synth) -> None:
    for store, scheme in (("redis", "rediss://"), ("documentdb", "mongodb://")):
        value = env.resource(store, "aws_secretsmanager_secret_version", "secret-value")
        assert f'"url"="{scheme}' in value["secret_string"].replace(" ", "")
    mongo = env.resource("documentdb", "aws_secretsmanager_secret_version", "secret-value")
    assert "tls=true" in mongo["secret_string"]
    assert "retryWrites=false" in mongo["secret_string"]


def test_kafka_bootstrap_when_synthesized_then_is_the_authenticated_tls_endpoint(
    env: Synth,
) -> None:
    bootstrap = config_map(env)["OMS_KAFKA_BOOTSTRAP"]
    if env.profile.kafka.mode == "msk":
        assert (
            env.resolve("app", bootstrap) == "${aws_msk_cluster.cluster.bootstrap_brokers_sasl_iam}"
        )
    else:
        assert bootstrap == "oms-kafka-kafka-bootstrap.kafka.svc:9093"


# ---- one number: partitions, topics and replicas -------------------------------------------


def test_partitions_when_synthesized_then_topics_and_max_replicas_come_from_one_setting(
    env: Synth,
) -> None:
    partitions = env.profile.kafka.orders_partitions
    settings = config_map(env)
    assert settings["OMS_ORDERS_PARTITIONS"] == str(partitions)
    # executions are co-partitioned with orders: an account's fills reach its owner
    assert settings["OMS_EXECUTIONS_PARTITIONS"] == str(partitions)
    assert settings["OMS_TOPIC_REPLICATION_FACTOR"] == str(REPLICATION_FACTOR)
    spec = scaled_object(env)["spec"]
    assert spec["maxReplicaCount"] == partitions
    assert spec["minReplicaCount"] == env.profile.app.min_replicas


def test_partition_count_when_changed_then_moves_everything_with_it(tmp_path: Path) -> None:
    dev = profile_of("dev")
    wider = dataclasses.replace(dev, kafka=dataclasses.replace(dev.kafka, orders_partitions=17))
    synth = synthesize(wider, tmp_path / "wider")
    assert config_map(synth)["OMS_ORDERS_PARTITIONS"] == "17"
    assert scaled_object(synth)["spec"]["maxReplicaCount"] == 17


def test_keda_when_synthesized_then_scales_on_the_lag_of_the_orders_group(env: Synth) -> None:
    (trigger,) = scaled_object(env)["spec"]["triggers"]
    metadata = trigger["metadata"]
    settings = config_map(env)
    assert trigger["type"] == "kafka"
    assert metadata["topic"] == "orders"
    assert metadata["consumerGroup"] == settings["OMS_KAFKA_GROUP_ID"] == Settings().kafka_group_id
    assert metadata["bootstrapServers"] == settings["OMS_KAFKA_BOOTSTRAP"]
    assert metadata["tls"] == "enable"
    assert metadata["allowIdleConsumers"] == "false"
    assert scaled_object(env)["spec"]["scaleTargetRef"]["name"] == "oms"


def test_keda_when_kafka_is_self_hosted_then_trusts_the_cluster_ca(
    synthesized: dict[str, Synth],
) -> None:
    cost = synthesized["cost"]
    (trigger,) = scaled_object(cost)["spec"]["triggers"]
    auth = cost.resource("app", "kubernetes_manifest", "kafka-trigger-auth")["manifest"]
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert {"parameter": "ca", "name": "kafka-ca", "key": "ca.crt"} in auth["spec"][
        "secretTargetRef"
    ]


def test_msk_when_synthesized_then_keeps_three_replicas_and_a_week(
    synthesized: dict[str, Synth],
) -> None:
    for env in (synthesized["dev"], synthesized["prod"]):
        configuration = env.resource("msk", "aws_msk_configuration", "config")
        properties = dict(
            line.split("=", 1) for line in configuration["server_properties"].splitlines()
        )
        assert properties["default.replication.factor"] == "3"
        assert properties["min.insync.replicas"] == "2"
        assert properties["auto.create.topics.enable"] == "false"
        assert properties["log.retention.hours"] == "168"
        assert int(properties["log.retention.bytes"]) > 0
        cluster = env.resource("msk", "aws_msk_cluster", "cluster")
        assert cluster["number_of_broker_nodes"] >= REPLICATION_FACTOR
        assert cluster["number_of_broker_nodes"] % len(env.profile.network.availability_zones) == 0


def test_self_hosted_kafka_when_synthesized_then_keeps_the_same_promises(
    synthesized: dict[str, Synth],
) -> None:
    cost = synthesized["cost"]
    kafka = cost.resource("kafka", "kubernetes_manifest", "cluster")["manifest"]["spec"]["kafka"]
    assert kafka["config"]["default.replication.factor"] == "3"
    assert kafka["config"]["min.insync.replicas"] == "2"
    assert kafka["config"]["auto.create.topics.enable"] == "false"
    pool = cost.resource("kafka", "kubernetes_manifest", "node-pool")["manifest"]
    assert pool["spec"]["replicas"] == cost.profile.kafka.brokers >= REPLICATION_FACTOR


# ---- the pod: probes, non-root, topics before agents ---------------------------------------


def test_probes_when_synthesized_then_check_health_and_readiness_on_the_app_port(
    env: Synth,
) -> None:
    main = container(env)
    assert main["liveness_probe"]["http_get"] == {"path": "/health", "port": "http"}
    assert main["readiness_probe"]["http_get"] == {"path": "/ready", "port": "http"}
    assert main["startup_probe"]["http_get"] == {"path": "/health", "port": "http"}
    assert main["port"] == [{"name": "http", "container_port": 8080}]
    assert config_map(env)["OMS_HTTP_PORT"] == "8080"


def test_pod_when_synthesized_then_runs_as_the_images_non_root_user(env: Synth) -> None:
    security = pod(env)["security_context"]
    assert security["run_as_non_root"] is True
    assert security["run_as_user"] == security["run_as_group"] == "10001"
    assert security["seccomp_profile"] == {"type": "RuntimeDefault"}
    for each in (container(env), *pod(env)["init_container"]):
        locked = each["security_context"]
        assert locked["run_as_non_root"] is True
        assert locked["allow_privilege_escalation"] is False
        assert locked["read_only_root_filesystem"] is True
        assert locked["capabilities"] == {"drop": ["ALL"]}
    assert pod(env)["automount_service_account_token"] is False


def test_deployment_when_synthesized_then_creates_topics_before_the_agents_start(
    env: Synth,
) -> None:
    (init,) = pod(env)["init_container"]
    assert init["args"] == ["topics"]
    assert init["image"] == container(env)["image"]
    assert container(env)["args"] == ["serve"]
    kafka_password = [{"secret_ref": {"name": "oms-kafka"}}]
    assert init["env_from"] == [{"config_map_ref": {"name": "oms-settings"}}] + (
        kafka_password if env.profile.kafka.mode == "self-hosted" else []
    )


def test_image_when_synthesized_then_comes_from_the_environments_repository(env: Synth) -> None:
    image = env.resolve("app", container(env)["image"])
    assert image == f"${{aws_ecr_repository.repository.repository_url}}:{env.profile.app.image_tag}"


def test_service_budget_and_alb_when_synthesized_then_agree_on_the_node_port(env: Synth) -> None:
    node_port = env.profile.app.node_port
    service = env.resource("app", "kubernetes_service_v1", "service")["spec"]
    assert service["type"] == "NodePort"
    assert service["port"] == [
        {"name": "http", "port": 80, "target_port": "http", "node_port": node_port}
    ]
    target_group = env.resource("edge", "aws_lb_target_group", "app")
    assert target_group["port"] == node_port
    assert target_group["health_check"]["path"] == "/health"
    attachment = env.resource("edge", "aws_autoscaling_attachment", "nodes")
    assert "aws_eks_node_group.nodes.resources[0].autoscaling_groups[0].name" in env.resolve(
        "edge", attachment["autoscaling_group_name"]
    )
    budget = env.resource("app", "kubernetes_pod_disruption_budget_v1", "disruption-budget")
    assert budget["spec"]["max_unavailable"] == "1"
    assert budget["spec"]["selector"]["match_labels"] == service["selector"]


def test_edge_when_a_certificate_is_given_then_serves_https_and_redirects_http(
    tmp_path: Path,
) -> None:
    dev = profile_of("dev")
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/example"
    https = dataclasses.replace(
        dev, edge=dataclasses.replace(dev.edge, certificate_arn=certificate)
    )
    listeners = synthesize(https, tmp_path / "https").resources("edge", "aws_lb_listener")
    assert listeners["https"]["certificate_arn"] == certificate
    assert listeners["https"]["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    (redirect,) = listeners["http"]["default_action"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"]["protocol"] == "HTTPS"
