"""Who may reach what (issue 13): HTTPS only in prod, a WAF with a rate limit, Kafka clients
that authenticate and may do only their part, NetworkPolicies, the app's own DocumentDB user,
and pods that cannot take their node's role."""

from __future__ import annotations

import json
from typing import Any

import pytest
from oms_infra.jobs import docdb_user
from oms_infra.kafka_access import APP, KEDA

from oms.config import Settings
from oms.store.mongo_connection import log_database_name
from oms.stream.topics import topic_specs
from tests.infra.app_manifests import app_labels, config_map, container, pod, scaled_object
from tests.infra.synthesis import TEST_CERTIFICATE, Synth

pytestmark = pytest.mark.infra

MUTATING_KAFKA_ACTIONS = {
    "kafka-cluster:*",
    "kafka-cluster:DeleteTopic",
    "kafka-cluster:AlterCluster",
    "kafka-cluster:AlterClusterDynamicConfiguration",
    "kafka-cluster:AlterTopic",
    "kafka-cluster:AlterTopicDynamicConfiguration",
    "kafka-cluster:DeleteGroup",
}


def manifest(env: Synth, part: str, name: str) -> dict[str, Any]:
    """A kubernetes_manifest's object."""
    return dict(env.resource(part, "kubernetes_manifest", name)["manifest"])


def iam_policy(env: Synth, name: str) -> dict[str, Any]:
    """An inline role policy of the app stack, parsed."""
    policy: dict[str, Any] = json.loads(env.resource("app", "aws_iam_role_policy", name)["policy"])
    return policy


# ---- the edge: HTTPS, WAF, internal paths ----------------------------------------------------


def test_edge_when_prod_then_serves_https_only_and_redirects_http(
    synthesized: dict[str, Synth],
) -> None:
    prod = synthesized["prod"]
    listeners = prod.resources("edge", "aws_lb_listener")
    assert listeners["https"]["certificate_arn"] == TEST_CERTIFICATE
    assert listeners["https"]["protocol"] == "HTTPS"
    (redirect,) = listeners["http"]["default_action"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"}


def test_waf_when_synthesized_then_rate_limits_each_address_in_front_of_the_alb(env: Synth) -> None:
    acl = env.resource("edge", "aws_wafv2_web_acl", "waf")
    assert acl["scope"] == "REGIONAL"
    assert acl["default_action"] == {"allow": {}}
    rules = json.loads(acl["rule_json"])
    (rate,) = [r for r in rules if "RateBasedStatement" in r["Statement"]]
    statement = rate["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP"
    assert statement["Limit"] == env.profile.edge.waf_requests_per_minute_per_ip
    assert statement["EvaluationWindowSec"] == 60
    assert rate["Action"] == {"Block": {"CustomResponse": {"ResponseCode": 429}}}
    assert rate["Priority"] == min(r["Priority"] for r in rules)
    association = env.resource("edge", "aws_wafv2_web_acl_association", "waf-alb")
    assert association["resource_arn"] == "${aws_lb.alb.arn}"
    assert association["web_acl_arn"] == "${aws_wafv2_web_acl.waf.arn}"


def test_edge_when_synthesized_then_metrics_are_not_served_to_the_internet(env: Synth) -> None:
    rule = env.resource("edge", "aws_lb_listener_rule", "internal-paths")
    served = "https" if env.profile.edge.certificate_arn else "http"
    assert rule["listener_arn"] == f"${{aws_lb_listener.{served}.arn}}"
    (condition,) = rule["condition"]
    assert "/metrics" in condition["path_pattern"]["values"]
    (action,) = rule["action"]
    assert action["type"] == "fixed-response"
    assert action["fixed_response"]["status_code"] == "404"


# ---- Kafka: authentication, and each principal's rights --------------------------------------


def test_access_rules_when_synthesized_then_name_the_apps_topics(env: Synth) -> None:
    from oms_infra.sizing import topic_partitions  # noqa: PLC0415

    values = {k: ("x" if v.startswith("${") else v) for k, v in config_map(env).items()}
    app = {spec.name: spec.partitions for spec in topic_specs(Settings.from_env(values))}
    assert topic_partitions(env.profile) == app


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_msk_when_synthesized_then_admits_only_iam_authenticated_clients(
    name: str, synthesized: dict[str, Synth]
) -> None:
    env = synthesized[name]
    cluster = env.resource("msk", "aws_msk_cluster", "cluster")
    assert cluster["client_authentication"] == {"sasl": {"iam": True}, "unauthenticated": False}
    assert cluster["encryption_info"]["encryption_in_transit"]["client_broker"] == "TLS"
    settings = config_map(env)
    assert settings["OMS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert settings["OMS_KAFKA_SASL_MECHANISM"] == "AWS_MSK_IAM"
    assert settings["OMS_KAFKA_AWS_REGION"] == env.profile.region


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_msk_rights_when_synthesized_then_are_least_privilege_policies_on_pod_identities(
    name: str, synthesized: dict[str, Synth]
) -> None:
    env = synthesized[name]
    identities = env.resources("app", "aws_eks_pod_identity_association")
    assert {(i["namespace"], i["service_account"]) for i in identities.values()} == {
        ("oms", "oms"),
        ("keda", "keda-operator"),
    }
    for principal in (APP, KEDA):
        role = env.resource("app", "aws_iam_role", f"{principal}-kafka-role")
        (trust,) = json.loads(role["assume_role_policy"])["Statement"]
        assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        statements = iam_policy(env, f"{principal}-kafka-policy")["Statement"]
        actions = {a for s in statements for a in s["Action"]}
        assert not actions & MUTATING_KAFKA_ACTIONS, principal
        assert all(s["Effect"] == "Allow" and "*" not in s["Resource"] for s in statements)
        for statement in statements:
            for resource in statement["Resource"]:
                named = env.resolve("app", resource)
                assert named == "${aws_msk_cluster.cluster.arn}" or named.startswith(
                    "arn:${data.aws_partition.partition.partition}:kafka:"
                    f"{env.profile.region}:${{data.aws_caller_identity.account.account_id}}:"
                ), named
    keda = {a for s in iam_policy(env, "keda-kafka-policy")["Statement"] for a in s["Action"]}
    assert keda == {
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:DescribeGroup",
    }
    topics = next(
        s for s in iam_policy(env, "oms-kafka-policy")["Statement"] if s["Sid"] == "Topic"
    )
    assert sorted(r.rsplit("/", 1)[1] for r in topics["Resource"]) == sorted(
        spec.name for spec in topic_specs(Settings())
    )
    cluster = f"{env.profile.prefix}-kafka"
    assert all(f":topic/{cluster}/*/" in r for r in topics["Resource"])


def test_keda_when_kafka_is_msk_then_reads_the_lag_with_its_iam_identity(
    synthesized: dict[str, Synth],
) -> None:
    dev = synthesized["dev"]
    (trigger,) = scaled_object(dev)["spec"]["triggers"]
    assert trigger["metadata"]["sasl"] == "oauthbearer"
    assert trigger["metadata"]["saslTokenProvider"] == "aws_msk_iam"
    assert trigger["metadata"]["awsRegion"] == dev.profile.region
    auth = manifest(dev, "app", "kafka-trigger-auth")
    assert auth["spec"] == {"podIdentity": {"provider": "aws"}}


def test_self_hosted_kafka_when_synthesized_then_wants_scram_and_denies_what_no_acl_allows(
    synthesized: dict[str, Synth],
) -> None:
    cost = synthesized["cost"]
    kafka = manifest(cost, "kafka", "cluster")["spec"]
    (listener,) = kafka["kafka"]["listeners"]
    assert listener["tls"] is True
    assert listener["authentication"] == {"type": "scram-sha-512"}
    assert kafka["kafka"]["authorization"] == {"type": "simple"}
    assert "userOperator" in kafka["entityOperator"]
    assert "allow.everyone.if.no.acl.found" not in kafka["kafka"]["config"]  # Kafka: false


def test_self_hosted_kafka_users_when_synthesized_then_have_only_their_acls(
    synthesized: dict[str, Synth],
) -> None:
    cost = synthesized["cost"]
    app = manifest(cost, "kafka", f"user-{APP}")["spec"]
    keda = manifest(cost, "kafka", f"user-{KEDA}")["spec"]
    assert app["authentication"] == keda["authentication"] == {"type": "scram-sha-512"}
    for user in (app, keda):
        for acl in user["authorization"]["acls"]:
            assert acl["resource"].get("patternType", "literal") == "literal"
            assert acl["resource"].get("name") != "*"
            assert not {"All", "Delete", "Alter", "AlterConfigs"} & set(acl["operations"])
    assert [(a["resource"], a["operations"]) for a in keda["authorization"]["acls"]] == [
        ({"type": "topic", "name": "orders", "patternType": "literal"}, ["Describe"]),
        ({"type": "group", "name": "oms", "patternType": "literal"}, ["Describe"]),
    ]
    settings = config_map(cost)
    assert settings["OMS_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert settings["OMS_KAFKA_SASL_USERNAME"] == APP
    password = cost.resource("app", "kubernetes_secret_v1", "kafka-password")["data"]
    assert password == {
        "OMS_KAFKA_SASL_PASSWORD": "${data.kubernetes_secret_v1.kafka-user-oms.data.password}"
    }
    assert {"secret_ref": {"name": "oms-kafka"}} in container(cost)["env_from"]


# ---- Kubernetes NetworkPolicies ----------------------------------------------------------------


def test_network_policy_when_synthesized_then_only_the_alb_prometheus_and_replicas_reach_the_app(
    env: Synth,
) -> None:
    from oms_infra.stacks.network import plan_subnets  # noqa: PLC0415

    policies = {
        name.removeprefix("network-policy-"): m["manifest"]
        for name, m in env.resources("app", "kubernetes_manifest").items()
        if name.startswith("network-policy-")
    }
    deny = policies["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    zones = len(env.profile.network.availability_zones)
    public = plan_subnets(env.profile.network.vpc_cidr, zones).public
    (alb,) = policies["oms-http-from-alb"]["spec"]["ingress"]
    assert alb["from"] == [{"ipBlock": {"cidr": cidr}} for cidr in public]
    assert alb["ports"] == [{"protocol": "TCP", "port": 8080}]
    (scrape,) = policies["oms-metrics-from-prometheus"]["spec"]["ingress"]
    (peer,) = scrape["from"]
    assert peer["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
    }
    (hop,) = policies["oms-http-from-oms"]["spec"]["ingress"]
    assert hop["from"] == [{"podSelector": {"matchLabels": app_labels(env)}}]
    assert hop["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert set(policies) == {
        "default-deny-ingress",
        "oms-http-from-alb",
        "oms-http-from-oms",
        "oms-metrics-from-prometheus",
    }
    for name in set(policies) - {"default-deny-ingress"}:
        assert policies[name]["spec"]["podSelector"] == {"matchLabels": app_labels(env)}
    # the ALB's own address must reach the pod: no SNAT to a node's address on the way
    service = env.resource("app", "kubernetes_service_v1", "service")["spec"]
    assert service["external_traffic_policy"] == "Local"


def test_cni_when_synthesized_then_enforces_network_policies(env: Synth) -> None:
    cni = env.resource("eks", "aws_eks_addon", "addon-vpc-cni")
    assert json.loads(cni["configuration_values"]) == {"enableNetworkPolicy": "true"}


# ---- DocumentDB: the app's own user ------------------------------------------------------------


def test_app_when_synthesized_then_connects_to_documentdb_as_its_own_user_not_the_master(
    env: Synth,
) -> None:
    from oms_infra.stacks.documentdb import APP_USER, MASTER_USER  # noqa: PLC0415

    app_secret = env.resource("documentdb", "aws_secretsmanager_secret_version", "app-secret-value")
    assert f"mongodb://{APP_USER}:" in app_secret["secret_string"]
    assert f'"username"="{APP_USER}"' in app_secret["secret_string"].replace(" ", "")
    credentials = env.resource("app", "kubernetes_secret_v1", "credentials")["data"]
    assert "documentdb-app-secret" in credentials["OMS_MONGO_URL"]
    assert MASTER_USER != APP_USER
    # the master URL reaches only the Job, never the app's pods
    job = manifest(env, "app", "docdb-user-job")
    (step,) = job["spec"]["template"]["spec"]["containers"]
    assert step["envFrom"] == [{"secretRef": {"name": "oms-docdb-admin"}}]
    assert step["image"] == container(env)["image"]
    assert step["command"][:2] == ["python", "-c"]
    assert {"name": "APP_USER", "value": APP_USER} in step["env"]
    for each in (container(env), *pod(env)["init_container"]):
        assert {"secret_ref": {"name": "oms-docdb-admin"}} not in each["env_from"]
    deployment = env.resource("app", "kubernetes_deployment_v1", "deployment")
    assert "kubernetes_manifest.docdb-user-job" in deployment["depends_on"]
    assert job["metadata"]["name"].startswith("oms-docdb-user-")


class FakeAdmin:
    """The admin database as the Job sees it: records the commands it runs."""

    def __init__(self, existing: bool) -> None:
        self.existing = existing
        self.commands: list[tuple[str, str, dict[str, Any]]] = []

    def command(self, name: str, value: str, **options: Any) -> dict[str, Any]:
        self.commands.append((name, value, options))
        return {"users": [{"user": value}] if self.existing else []}


@pytest.mark.parametrize(("existing", "verb"), [(False, "createUser"), (True, "updateUser")])
def test_user_job_when_run_then_the_user_gets_readwrite_on_its_database_only(
    existing: bool, verb: str
) -> None:
    admin = FakeAdmin(existing)

    outcome = docdb_user.ensure_user(admin, "oms_app", "pw", "oms")

    assert outcome == ("updated" if existing else "created")
    assert admin.commands[-1] == (
        verb,
        "oms_app",
        {
            "pwd": "pw",
            "roles": [
                {"role": "readWrite", "db": "oms"},
                {"role": "readWrite", "db": log_database_name("oms")},
            ],
        },
    )


def test_documentdb_user_job_when_synthesized_then_runs_the_script_the_tests_check(
    env: Synth,
) -> None:
    import inspect  # noqa: PLC0415

    (step,) = manifest(env, "app", "docdb-user-job")["spec"]["template"]["spec"]["containers"]
    assert step["command"][2] == inspect.getsource(docdb_user)
    compile(step["command"][2], "docdb_user.py", "exec")


# ---- nodes: instance metadata ------------------------------------------------------------------


def test_pods_when_synthesized_then_cannot_reach_the_nodes_instance_metadata(env: Synth) -> None:
    template = env.resource("eks", "aws_launch_template", "node-template")
    assert template["metadata_options"]["http_tokens"] == "required"
    assert template["metadata_options"]["http_put_response_hop_limit"] == 1


def test_load_when_https_only_without_a_certificate_then_refused() -> None:
    from oms_infra.profile import ProfileError, load_profile  # noqa: PLC0415

    from tests.infra.synthesis import ENVIRONMENTS_FILE  # noqa: PLC0415

    with pytest.raises(ProfileError, match="serves HTTPS only"):
        load_profile("dev", ENVIRONMENTS_FILE, {"edge.https_only": True})
