"""Encryption at rest with rotated keys, TLS in transit, private data stores, least privilege."""

from __future__ import annotations

import json

import pytest
from oms_infra.stacks.kms import KEY_PURPOSES

from tests.infra.synthesis import ENVIRONMENTS, Synth, profile_of

pytestmark = pytest.mark.infra


def key(purpose: str) -> str:
    """How a resource names the ARN of the environment's key for ``purpose``."""
    return f"${{aws_kms_key.{purpose}-key.arn}}"


# ---- KMS -----------------------------------------------------------------------------------


def test_kms_when_synthesized_then_one_key_per_purpose_each_rotated(env: Synth) -> None:
    keys = env.resources("kms", "aws_kms_key")
    assert set(keys) == {f"{purpose}-key" for purpose in KEY_PURPOSES}
    for name, kms_key in keys.items():
        assert kms_key["enable_key_rotation"] is True, name
        assert kms_key["deletion_window_in_days"] == env.profile.operations.kms_deletion_window_days
    aliases = {a["name"] for a in env.resources("kms", "aws_kms_alias").values()}
    assert aliases == {f"alias/{env.profile.prefix}-{purpose}" for purpose in KEY_PURPOSES}


def test_kms_when_synthesized_then_only_the_logs_and_alerts_keys_trust_a_service(
    env: Synth,
) -> None:
    trusted = {
        "logs-key": [f"logs.{env.profile.region}.amazonaws.com"],
        "alerts-key": ["cloudwatch.amazonaws.com"],
        "s3-key": ["cloudfront.amazonaws.com"],  # decrypts the web app for its distribution
    }
    for name, kms_key in env.resources("kms", "aws_kms_key").items():
        principals = [s["Principal"] for s in json.loads(kms_key["policy"])["Statement"]]
        services = [p["Service"] for p in principals if "Service" in p]
        assert services == trusted.get(name, [])


def test_kms_when_synthesized_then_the_ebs_key_is_usable_only_through_this_accounts_ec2(
    env: Synth,
) -> None:
    policy = json.loads(env.resource("kms", "aws_kms_key", "ebs-key")["policy"])
    for statement in policy["Statement"]:
        if statement["Principal"] == {"AWS": "*"}:
            condition = statement["Condition"]["StringEquals"]
            assert condition["kms:ViaService"] == f"ec2.{env.profile.region}.amazonaws.com"
            assert "kms:CallerAccount" in condition


# ---- encryption at rest, each store with its own key --------------------------------------


def test_eks_when_synthesized_then_secrets_and_node_volumes_are_encrypted(env: Synth) -> None:
    cluster = env.resource("eks", "aws_eks_cluster", "cluster")
    assert cluster["encryption_config"]["resources"] == ["secrets"]
    assert env.resolve("eks", cluster["encryption_config"]["provider"]["key_arn"]) == key("eks")
    template = env.resource("eks", "aws_launch_template", "node-template")
    (disk,) = template["block_device_mappings"]
    assert disk["ebs"]["encrypted"] == "true"
    assert env.resolve("eks", disk["ebs"]["kms_key_id"]) == key("ebs")
    assert template["metadata_options"]["http_tokens"] == "required"


def test_image_repository_when_synthesized_then_encrypted_and_immutable(env: Synth) -> None:
    repository = env.resource("eks", "aws_ecr_repository", "repository")
    (encryption,) = repository["encryption_configuration"]
    assert encryption["encryption_type"] == "KMS"
    assert env.resolve("eks", encryption["kms_key"]) == key("eks")
    assert repository["image_tag_mutability"] == "IMMUTABLE"


MSK_ENVIRONMENTS = [e for e in ENVIRONMENTS if profile_of(e).kafka.mode == "msk"]


@pytest.mark.parametrize("name", MSK_ENVIRONMENTS)
def test_msk_when_synthesized_then_encrypted_at_rest_and_tls_only(
    name: str, synthesized: dict[str, Synth]
) -> None:
    env = synthesized[name]
    cluster = env.resource("msk", "aws_msk_cluster", "cluster")
    encryption = cluster["encryption_info"]
    assert env.resolve("msk", encryption["encryption_at_rest_kms_key_arn"]) == key("kafka")
    assert encryption["encryption_in_transit"] == {"client_broker": "TLS", "in_cluster": True}


def test_self_hosted_kafka_when_synthesized_then_its_volumes_are_encrypted(
    synthesized: dict[str, Synth],
) -> None:
    cost = synthesized["cost"]
    storage = cost.resource("kafka", "kubernetes_storage_class_v1", "storage-class")
    assert storage["storage_provisioner"] == "ebs.csi.aws.com"
    assert storage["parameters"]["encrypted"] == "true"
    assert cost.resolve("kafka", storage["parameters"]["kmsKeyId"]) == key("kafka")
    pool = cost.resource("kafka", "kubernetes_manifest", "node-pool")["manifest"]
    (volume,) = pool["spec"]["storage"]["volumes"]
    assert volume["class"] == storage["metadata"]["name"]


def test_self_hosted_kafka_when_synthesized_then_listens_with_tls_only(
    synthesized: dict[str, Synth],
) -> None:
    kafka = synthesized["cost"].resource("kafka", "kubernetes_manifest", "cluster")["manifest"]
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert listeners
    assert all(listener["tls"] is True for listener in listeners)


def test_redis_when_synthesized_then_encrypted_at_rest_and_requires_tls_and_a_token(
    env: Synth,
) -> None:
    group = env.resource("redis", "aws_elasticache_replication_group", "group")
    assert group["at_rest_encryption_enabled"] == "true"
    assert env.resolve("redis", group["kms_key_id"]) == key("redis")
    assert group["transit_encryption_enabled"] is True
    assert group["transit_encryption_mode"] == "required"
    assert group["auth_token"].startswith("${data.aws_secretsmanager_random_password.")


def test_documentdb_when_synthesized_then_encrypted_tls_only_with_a_week_of_backups(
    env: Synth,
) -> None:
    cluster = env.resource("documentdb", "aws_docdb_cluster", "cluster")
    assert cluster["storage_encrypted"] is True
    assert env.resolve("documentdb", cluster["kms_key_id"]) == key("documentdb")
    assert cluster["backup_retention_period"] == 7
    assert cluster["master_password"].startswith("${data.aws_secretsmanager_random_password.")
    parameters = env.resource("documentdb", "aws_docdb_cluster_parameter_group", "parameters")
    assert {"name": "tls", "value": "enabled"} in parameters["parameter"]
    instances = env.resources("documentdb", "aws_docdb_cluster_instance")
    assert len(instances) == env.profile.documentdb.instances


def test_documentdb_when_synthesized_per_environment_then_has_its_instance_count(
    synthesized: dict[str, Synth],
) -> None:
    counts = {
        name: len(s.resources("documentdb", "aws_docdb_cluster_instance"))
        for name, s in synthesized.items()
    }
    assert counts == {"dev": 1, "prod": 3, "cost": 1}


def test_credentials_when_synthesized_then_are_secrets_encrypted_with_their_store_key(
    env: Synth,
) -> None:
    for store in ("redis", "documentdb"):
        secret = env.resource(store, "aws_secretsmanager_secret", "secret")
        assert secret["name"] == f"{env.profile.prefix}/{store}"
        assert env.resolve(store, secret["kms_key_id"]) == key(store)


def test_log_groups_when_synthesized_then_each_is_encrypted_and_expires(env: Synth) -> None:
    groups = {
        (part, name): group
        for part in ("eks", "msk", "documentdb")
        if f"{env.profile.prefix}-{part}" in env.stacks
        for name, group in env.resources(part, "aws_cloudwatch_log_group").items()
    }
    assert groups
    for (part, name), group in groups.items():
        assert env.resolve(part, group["kms_key_id"]) == key("logs"), name
        assert group["retention_in_days"] == env.profile.operations.log_retention_days


def test_frontend_bucket_when_synthesized_then_private_encrypted_and_tls_only(env: Synth) -> None:
    (sse,) = env.resources("edge", "aws_s3_bucket_server_side_encryption_configuration").values()
    (rule,) = sse["rule"]
    default = rule["apply_server_side_encryption_by_default"]
    assert default["sse_algorithm"] == "aws:kms"
    assert env.resolve("edge", default["kms_master_key_id"]) == key("s3")
    (block,) = env.resources("edge", "aws_s3_bucket_public_access_block").values()
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls")
    assert all(block[flag] is True for flag in (*flags, "restrict_public_buckets"))
    (policy,) = env.resources("edge", "aws_s3_bucket_policy").values()
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    statement = statements["RefusePlainHttp"]  # (the other lets CloudFront read: test_frontend)
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_nat_instance_when_synthesized_then_its_volume_is_encrypted(
    synthesized: dict[str, Synth],
) -> None:
    cost = synthesized["cost"]
    nat = cost.resource("network", "aws_instance", "nat-instance")
    assert nat["root_block_device"]["encrypted"] is True
    assert cost.resolve("network", nat["root_block_device"]["kms_key_id"]) == key("ebs")
    assert nat["source_dest_check"] is False
    assert nat["metadata_options"]["http_tokens"] == "required"


# ---- where things live ---------------------------------------------------------------------


def _subnets_by_tier(env: Synth) -> dict[str, str]:
    """``${aws_subnet.<id>.id}`` -> tier, for the network stack's subnets."""
    return {
        f"${{aws_subnet.{ident}.id}}": subnet["tags"]["Tier"]
        for ident, subnet in env.resources("network", "aws_subnet").items()
    }


def _tiers(env: Synth, part: str, subnet_refs: list[str]) -> set[str]:
    tiers = _subnets_by_tier(env)
    return {tiers[env.resolve(part, ref)] for ref in subnet_refs}


def test_data_stores_when_synthesized_then_live_in_the_data_subnets(env: Synth) -> None:
    redis = env.resource("redis", "aws_elasticache_subnet_group", "subnets")
    docdb = env.resource("documentdb", "aws_docdb_subnet_group", "subnets")
    assert _tiers(env, "redis", redis["subnet_ids"]) == {"data"}
    assert _tiers(env, "documentdb", docdb["subnet_ids"]) == {"data"}
    if env.profile.kafka.mode == "msk":
        msk = env.resource("msk", "aws_msk_cluster", "cluster")
        assert _tiers(env, "msk", msk["broker_node_group_info"]["client_subnets"]) == {"data"}
    zones = len(env.profile.network.availability_zones)
    assert len(redis["subnet_ids"]) == len(docdb["subnet_ids"]) == zones


def test_data_subnets_when_synthesized_then_have_no_route_out_of_the_vpc(env: Synth) -> None:
    associations = env.resources("network", "aws_route_table_association")
    data_tables = {
        a["route_table_id"] for ident, a in associations.items() if ident.startswith("data-rta-")
    }
    assert data_tables == {"${aws_route_table.data-rt.id}"}
    routes = env.resources("network", "aws_route")
    assert not [r for r in routes.values() if r["route_table_id"] in data_tables]
    for ident, subnet in env.resources("network", "aws_subnet").items():
        assert subnet["map_public_ip_on_launch"] is False, ident


def test_nodes_when_synthesized_then_run_in_the_private_subnets_behind_nat(env: Synth) -> None:
    nodes = env.resource("eks", "aws_eks_node_group", "nodes")
    assert _tiers(env, "eks", nodes["subnet_ids"]) == {"private"}
    routes = env.resources("network", "aws_route")
    private = [r for ident, r in routes.items() if ident.startswith("private-default-")]
    assert len(private) == len(env.profile.network.availability_zones)
    assert all("gateway_id" not in r for r in private)  # never straight to the internet
    expected = {
        "single-gateway": 1,
        "gateway-per-az": len(env.profile.network.availability_zones),
        "instance": 0,
    }[env.profile.network.nat]
    assert len(env.resources("network", "aws_nat_gateway")) == expected
    assert len(env.resources("network", "aws_instance")) == (
        1 if env.profile.network.nat == "instance" else 0
    )


def test_cluster_api_when_prod_then_is_private(synthesized: dict[str, Synth]) -> None:
    vpc_config = synthesized["prod"].resource("eks", "aws_eks_cluster", "cluster")["vpc_config"]
    assert vpc_config["endpoint_private_access"] is True
    assert vpc_config["endpoint_public_access"] is False


def test_vpc_endpoints_when_synthesized_then_s3_and_ecr_where_the_profile_asks(env: Synth) -> None:
    endpoints = {e["service_name"] for e in env.resources("network", "aws_vpc_endpoint").values()}
    region = env.profile.region
    expected = {f"com.amazonaws.{region}.s3"}
    if env.profile.network.interface_endpoints:
        expected |= {f"com.amazonaws.{region}.ecr.api", f"com.amazonaws.{region}.ecr.dkr"}
    assert endpoints == expected


# ---- security groups: exactly the listed rules ---------------------------------------------


def _group_name(env: Synth, reference: str | None) -> str | None:
    if reference is None:
        return None
    return reference.removeprefix("${aws_security_group.").removesuffix("-sg.id}")


def _rules(env: Synth, kind: str) -> set[tuple[str, str, int | None, int | None, str]]:
    rules = set()
    for rule in env.resources("network", kind).values():
        peer = _group_name(env, rule.get("referenced_security_group_id")) or rule["cidr_ipv4"]
        rules.add(
            (
                _group_name(env, rule["security_group_id"]) or "",
                rule["ip_protocol"],
                rule.get("from_port"),
                rule.get("to_port"),
                peer,
            )
        )
    return rules


def test_ingress_when_synthesized_then_is_exactly_what_the_design_lists(env: Synth) -> None:
    node_port = env.profile.app.node_port
    expected = {
        ("alb", "tcp", 80, 80, "0.0.0.0/0"),
        ("alb", "tcp", 443, 443, "0.0.0.0/0"),
        ("eks", "tcp", node_port, node_port, "alb"),
        ("eks", "-1", None, None, "eks"),
        ("redis", "tcp", 6379, 6379, "eks"),
        ("documentdb", "tcp", 27017, 27017, "eks"),
    }
    if env.profile.kafka.mode == "msk":
        expected.add(("msk", "tcp", 9098, 9098, "eks"))  # IAM over TLS, nothing else
    if env.profile.network.interface_endpoints:
        expected.add(("endpoints", "tcp", 443, 443, "eks"))
    if env.profile.network.nat == "instance":
        from oms_infra.stacks.network import plan_subnets  # noqa: PLC0415

        zones = len(env.profile.network.availability_zones)
        for cidr in plan_subnets(env.profile.network.vpc_cidr, zones).private:
            expected |= {("nat", "tcp", 80, 80, cidr), ("nat", "tcp", 443, 443, cidr)}
    assert _rules(env, "aws_vpc_security_group_ingress_rule") == expected


def test_egress_when_synthesized_then_is_limited_where_it_can_be(env: Synth) -> None:
    node_port = env.profile.app.node_port
    expected = {
        ("alb", "tcp", node_port, node_port, "eks"),
        ("eks", "-1", None, None, "0.0.0.0/0"),
    }
    if env.profile.network.nat == "instance":
        expected |= {("nat", "tcp", 80, 80, "0.0.0.0/0"), ("nat", "tcp", 443, 443, "0.0.0.0/0")}
    assert _rules(env, "aws_vpc_security_group_egress_rule") == expected


def test_stores_when_synthesized_then_use_their_own_security_group(env: Synth) -> None:
    redis = env.resource("redis", "aws_elasticache_replication_group", "group")
    docdb = env.resource("documentdb", "aws_docdb_cluster", "cluster")
    (redis_group,) = redis["security_group_ids"]
    (docdb_group,) = docdb["vpc_security_group_ids"]
    assert env.resolve("redis", redis_group) == "${aws_security_group.redis-sg.id}"
    assert env.resolve("documentdb", docdb_group) == "${aws_security_group.documentdb-sg.id}"
    if env.profile.kafka.mode == "msk":
        msk = env.resource("msk", "aws_msk_cluster", "cluster")
        (msk_group,) = msk["broker_node_group_info"]["security_groups"]
        assert env.resolve("msk", msk_group) == "${aws_security_group.msk-sg.id}"
