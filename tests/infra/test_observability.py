"""What the on-call sees (issue 16): CloudWatch alarms on the managed parts to an SNS topic,
VPC flow logs and ALB access logs kept for a while, Kafka storage that cannot fill up, the
ServiceMonitor Prometheus scrapes the app by, and probes on /health and /ready."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.app_manifests import container
from tests.infra.synthesis import Synth

pytestmark = pytest.mark.infra

GIB = 1 << 30


def alarms(env: Synth) -> dict[str, dict[str, Any]]:
    """The alarms stack's alarms by construct id."""
    return env.resources("alarms", "aws_cloudwatch_metric_alarm")


def metrics(env: Synth, namespace: str) -> set[str]:
    """The metric names alarmed on in one CloudWatch namespace."""
    return {a["metric_name"] for a in alarms(env).values() if a["namespace"] == namespace}


def test_alarms_when_synthesized_then_each_notifies_the_encrypted_topic_and_when_it_clears(
    env: Synth,
) -> None:
    topic = env.resource("alarms", "aws_sns_topic", "topic")
    assert env.resolve("alarms", topic["kms_master_key_id"]) == "${aws_kms_key.alerts-key.arn}"
    assert alarms(env)
    for name, alarm in alarms(env).items():
        assert alarm["alarm_actions"] == ["${aws_sns_topic.topic.arn}"], name
        assert alarm["ok_actions"] == ["${aws_sns_topic.topic.arn}"], name
    policy = json.loads(env.resource("alarms", "aws_sns_topic_policy", "topic-policy")["policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"


def test_alarms_when_synthesized_then_cover_documentdb_redis_and_the_alb(env: Synth) -> None:
    assert metrics(env, "AWS/DocDB") == {"CPUUtilization", "FreeableMemory"}
    assert metrics(env, "AWS/ElastiCache") == {"Evictions", "DatabaseMemoryUsagePercentage"}
    assert metrics(env, "AWS/ApplicationELB") == {
        "HTTPCode_ELB_5XX_Count",
        "HTTPCode_Target_5XX_Count",
        "TargetResponseTime",
    }
    per_instance = [a for a in alarms(env).values() if a["namespace"] == "AWS/DocDB"]
    assert len(per_instance) == 2 * env.profile.documentdb.instances
    per_node = [a for a in alarms(env).values() if a["namespace"] == "AWS/ElastiCache"]
    assert len(per_node) == 2 * env.profile.redis.nodes
    p99 = alarms(env)["alb-p99-response-time"]
    assert p99["extended_statistic"] == "p99"
    assert "statistic" not in p99
    assert env.resolve("alarms", p99["dimensions"]["LoadBalancer"]) == "${aws_lb.alb.arn_suffix}"
    evictions = next(a for a in per_node if a["metric_name"] == "Evictions")
    assert evictions["threshold"] == 0
    assert evictions["dimensions"]["CacheClusterId"].endswith("-001")


def test_freeable_memory_alarm_when_synthesized_then_is_a_share_of_the_instances_memory(
    env: Synth,
) -> None:
    from oms_infra.profile import DOCDB_INSTANCE_MEMORY_GIB  # noqa: PLC0415

    memory = DOCDB_INSTANCE_MEMORY_GIB[env.profile.documentdb.instance_class] * GIB
    alarm = alarms(env)["docdb-freeable-memory-0"]
    assert alarm["comparison_operator"] == "LessThanThreshold"
    assert 0 < alarm["threshold"] < memory / 4


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_msk_alarms_when_synthesized_then_watch_disk_and_under_replication_per_broker(
    name: str, synthesized: dict[str, Synth]
) -> None:
    env = synthesized[name]
    kafka = [a for a in alarms(env).values() if a["namespace"] == "AWS/Kafka"]
    assert {a["metric_name"] for a in kafka} == {
        "KafkaDataLogsDiskUsed",
        "UnderReplicatedPartitions",
    }
    brokers = {a["dimensions"]["Broker ID"] for a in kafka}
    assert brokers == {str(b) for b in range(1, env.profile.kafka.brokers + 1)}
    assert len(kafka) == 2 * env.profile.kafka.brokers


def test_self_hosted_kafka_when_synthesized_then_has_no_cloudwatch_alarms(
    synthesized: dict[str, Synth],
) -> None:
    assert not metrics(synthesized["cost"], "AWS/Kafka")


# ---- logs ------------------------------------------------------------------------------------


def test_flow_and_access_logs_when_synthesized_then_land_in_a_bucket_that_expires_them(
    env: Synth,
) -> None:
    flow = env.resource("logs", "aws_flow_log", "vpc-flow-log")
    assert flow["traffic_type"] == "ALL"
    assert flow["log_destination_type"] == "s3"
    assert flow["log_destination"] == "${aws_s3_bucket.bucket.arn}/vpc-flow-logs/"
    assert env.resolve("logs", flow["vpc_id"]) == "${aws_vpc.vpc.id}"
    access = env.resource("edge", "aws_lb", "alb")["access_logs"]
    assert access["enabled"] is True
    assert access["prefix"] == "alb"
    assert env.resolve("edge", access["bucket"]) == "${aws_s3_bucket.bucket.id}"
    (rule,) = env.resource("logs", "aws_s3_bucket_lifecycle_configuration", "retention")["rule"]
    assert rule["status"] == "Enabled"
    assert rule["expiration"] == [{"days": env.profile.operations.log_retention_days}]


def test_log_bucket_when_synthesized_then_private_tls_only_and_writable_only_by_log_services(
    env: Synth,
) -> None:
    block = env.resource("logs", "aws_s3_bucket_public_access_block", "public-access")
    assert all(block[flag] is True for flag in ("block_public_acls", "block_public_policy"))
    policy = json.loads(env.resource("logs", "aws_s3_bucket_policy", "policy")["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["RefusePlainHttp"]["Effect"] == "Deny"
    allowed = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    for statement in allowed:
        assert statement["Principal"] != "*"
        puts = statement["Action"] == "s3:PutObject"
        assert not puts or "/AWSLogs/" in statement["Resource"]
    (sse,) = env.resource(
        "logs", "aws_s3_bucket_server_side_encryption_configuration", "encryption"
    )["rule"]
    assert sse["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"


# ---- Kafka storage -----------------------------------------------------------------------------


def test_byte_retention_when_synthesized_then_keeps_topics_within_their_share_of_the_disk(
    env: Synth,
) -> None:
    from oms_infra.sizing import TOPIC_SHARE_OF_DISK, retention, topic_partitions  # noqa: PLC0415
    from oms_infra.stacks.msk import broker_properties  # noqa: PLC0415

    bounds = retention(env.profile)
    properties = broker_properties(env.profile)
    assert int(properties["log.retention.bytes"]) == bounds.retention_bytes
    assert int(properties["log.segment.bytes"]) == bounds.segment_bytes
    replicas = sum(topic_partitions(env.profile).values()) * 3
    assert bounds.partitions_per_broker * env.profile.kafka.brokers >= replicas
    full = bounds.partitions_per_broker * (bounds.retention_bytes + bounds.segment_bytes)
    assert full <= env.profile.kafka.broker_volume_gib * GIB * TOPIC_SHARE_OF_DISK
    assert bounds.segment_bytes <= GIB


def test_brokers_when_prod_then_keep_gigabytes_per_partition(synthesized: dict[str, Synth]) -> None:
    from oms_infra.sizing import retention  # noqa: PLC0415

    bounds = retention(synthesized["prod"].profile)
    assert synthesized["prod"].profile.kafka.broker_volume_gib == 500
    assert 2 * GIB < bounds.retention_bytes < 4 * GIB


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_msk_storage_when_synthesized_then_grows_by_itself_up_to_the_ceiling(
    name: str, synthesized: dict[str, Synth]
) -> None:
    env = synthesized[name]
    target = env.resource("msk", "aws_appautoscaling_target", "storage-target")
    assert target["scalable_dimension"] == "kafka:broker-storage:VolumeSize"
    assert target["resource_id"] == "${aws_msk_cluster.cluster.arn}"
    assert target["min_capacity"] == env.profile.kafka.broker_volume_gib
    assert target["max_capacity"] == env.profile.kafka.broker_volume_max_gib
    policy = env.resource("msk", "aws_appautoscaling_policy", "storage-policy")
    tracking = policy["target_tracking_scaling_policy_configuration"]
    assert tracking["predefined_metric_specification"] == {
        "predefined_metric_type": "KafkaBrokerStorageUtilization"
    }
    assert tracking["disable_scale_in"] is True
    from oms_infra.sizing import TOPIC_SHARE_OF_DISK  # noqa: PLC0415
    from oms_infra.stacks.alarms import MSK_DISK_PERCENT  # noqa: PLC0415

    assert TOPIC_SHARE_OF_DISK * 100 < tracking["target_value"] < MSK_DISK_PERCENT
    cluster = env.resource("msk", "aws_msk_cluster", "cluster")
    ignored = cluster["lifecycle"]["ignore_changes"]
    assert ignored == ["broker_node_group_info[0].storage_info[0].ebs_storage_info[0].volume_size"]


# ---- Prometheus and probes -------------------------------------------------------------------


def test_prometheus_when_synthesized_then_scrapes_the_apps_metrics_through_its_service(
    env: Synth,
) -> None:
    monitor = env.resource("app", "kubernetes_manifest", "service-monitor")["manifest"]
    service = env.resource("app", "kubernetes_service_v1", "service")
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"]["matchLabels"] == service["metadata"]["labels"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["oms"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == service["spec"]["port"][0]["name"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_probes_when_synthesized_then_liveness_follows_health_and_readiness_ready(
    env: Synth,
) -> None:
    main = container(env)
    assert main["liveness_probe"]["http_get"]["path"] == "/health"
    assert main["readiness_probe"]["http_get"]["path"] == "/ready"
