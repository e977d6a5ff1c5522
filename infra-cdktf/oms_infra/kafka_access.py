"""Who may do what on Kafka: one table, written out as IAM policies (MSK) or Kafka ACLs (Strimzi).

Two principals use the brokers. The app (``oms``) creates its topics at start (``oms topics``),
reads and writes them, and commits offsets in its consumer group; it produces idempotently.
KEDA (``keda``) only reads the lag of that group on ``orders``: it may describe the group and
the topic, nothing else. Neither may delete topics, alter configurations or touch ACLs, and no
other topic or group is named: a new topic in the app needs a line in ``sizing.topic_partitions``
(a test compares it with the app's ``topic_specs``).

On MSK the table becomes IAM policies on each principal's role (IAM access control replaces
Kafka ACLs there); on the self-hosted cluster it becomes the ACLs of a Strimzi ``KafkaUser``,
with the broker's authorizer refusing whatever no ACL allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oms_infra.profile import CONSUMER_GROUP, ORDERS_TOPIC, Profile
from oms_infra.sizing import topic_partitions

APP = "oms"
KEDA = "keda"


@dataclass(frozen=True, slots=True)
class Grant:
    """Rights of one principal on some resources of one kind (cluster, topic or group)."""

    kind: str
    names: tuple[str, ...]  # () for the cluster itself
    rights: tuple[str, ...]  # describe, read, write, create, idempotent-write


def grants(profile: Profile) -> dict[str, tuple[Grant, ...]]:
    """Each principal's grants."""
    topics = tuple(topic_partitions(profile))
    return {
        APP: (
            Grant("cluster", (), ("describe", "idempotent-write")),
            Grant("topic", topics, ("describe", "create", "read", "write")),
            Grant("group", (CONSUMER_GROUP,), ("describe", "read")),
        ),
        KEDA: (
            Grant("topic", (ORDERS_TOPIC,), ("describe",)),
            Grant("group", (CONSUMER_GROUP,), ("describe",)),
        ),
    }


IAM_ACTIONS = {
    ("cluster", "describe"): "kafka-cluster:DescribeCluster",
    ("cluster", "idempotent-write"): "kafka-cluster:WriteDataIdempotently",
    ("topic", "describe"): "kafka-cluster:DescribeTopic",
    ("topic", "create"): "kafka-cluster:CreateTopic",
    ("topic", "read"): "kafka-cluster:ReadData",
    ("topic", "write"): "kafka-cluster:WriteData",
    ("group", "describe"): "kafka-cluster:DescribeGroup",
    ("group", "read"): "kafka-cluster:AlterGroup",
}

ACL_OPERATIONS = {
    ("cluster", "describe"): "Describe",
    ("cluster", "idempotent-write"): "IdempotentWrite",
    ("topic", "describe"): "Describe",
    ("topic", "create"): "Create",
    ("topic", "read"): "Read",
    ("topic", "write"): "Write",
    ("group", "describe"): "Describe",
    ("group", "read"): "Read",
}


@dataclass(frozen=True, slots=True)
class MskCluster:
    """What IAM policies name an MSK cluster by."""

    arn: str
    name: str
    account_arn: str  # arn:<partition>:kafka:<region>:<account>

    def resource_arn(self, kind: str, name: str) -> str:
        """A topic's or group's ARN: ``<account_arn>:topic/<cluster>/<cluster uuid>/<name>``.

        The uuid is ``*``: the cluster's name is unique in the account and region, and the
        policy stays valid for a cluster recreated under the same name.
        """
        return f"{self.account_arn}:{kind}/{self.name}/*/{name}"


def iam_policy(principal_grants: tuple[Grant, ...], cluster: MskCluster) -> dict[str, Any]:
    """An IAM policy document allowing exactly ``principal_grants`` on the MSK cluster."""
    statements: list[dict[str, Any]] = [
        {"Sid": "Connect", "Effect": "Allow", "Action": ["kafka-cluster:Connect"],
         "Resource": [cluster.arn]}
    ]  # fmt: skip
    for grant in principal_grants:
        if grant.kind == "cluster":
            resources = [cluster.arn]
        else:
            resources = [cluster.resource_arn(grant.kind, n) for n in grant.names]
        statements.append(
            {
                "Sid": grant.kind.capitalize(),
                "Effect": "Allow",
                "Action": [IAM_ACTIONS[grant.kind, right] for right in grant.rights],
                "Resource": resources,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def strimzi_acls(principal_grants: tuple[Grant, ...]) -> list[dict[str, Any]]:
    """The ``spec.authorization.acls`` of a Strimzi ``KafkaUser`` with ``principal_grants``."""
    acls: list[dict[str, Any]] = []
    for grant in principal_grants:
        operations = [ACL_OPERATIONS[grant.kind, right] for right in grant.rights]
        if grant.kind == "cluster":
            acls.append({"resource": {"type": "cluster"}, "operations": operations})
            continue
        acls += [
            {
                "resource": {"type": grant.kind, "name": name, "patternType": "literal"},
                "operations": operations,
            }
            for name in grant.names
        ]
    return acls
