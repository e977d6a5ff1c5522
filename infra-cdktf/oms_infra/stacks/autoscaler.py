"""Node autoscaling: the Kubernetes cluster autoscaler, so that KEDA's replicas find nodes.

KEDA adds app replicas on Kafka lag; when they do not fit on the nodes they stay Pending, and the
cluster autoscaler adds a node to the managed node group (up to ``eks.nodes_max``), and removes
nodes that have stayed underused (down to ``nodes_min``). It finds the group by the tags EKS puts
on its Auto Scaling group (``k8s.io/cluster-autoscaler/<cluster>``), and acts with the role the
eks stack gives its service account through EKS Pod Identity, which may resize only those
groups. Its minor version follows the cluster's, as upstream requires.

Karpenter would choose instance types per pod; with one node group and a few instance types the
cluster autoscaler does the job with less to run (no interruption queue, no node classes).
"""

from __future__ import annotations

from typing import Any

from cdktf_cdktf_provider_kubernetes.manifest import Manifest
from constructs import Construct

from oms_infra.base import OmsStack, cluster_name
from oms_infra.profile import Profile
from oms_infra.stacks.eks import AUTOSCALER_NAMESPACE, AUTOSCALER_SERVICE_ACCOUNT, EksStack

NAME = "cluster-autoscaler"
IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
READ = ["get", "list", "watch"]

# What the autoscaler reads and writes (the upstream autodiscovery example's rules).
CLUSTER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"]},
    {
        "apiGroups": [""],
        "resources": ["endpoints"],
        "resourceNames": [NAME],
        "verbs": ["get", "update"],
    },
    {"apiGroups": [""], "resources": ["nodes"], "verbs": [*READ, "update"]},
    {
        "apiGroups": [""],
        "resources": [
            "namespaces",
            "pods",
            "services",
            "replicationcontrollers",
            "persistentvolumeclaims",
            "persistentvolumes",
        ],
        "verbs": READ,
    },
    {
        "apiGroups": ["apps"],
        "resources": ["statefulsets", "replicasets", "daemonsets"],
        "verbs": READ,
    },
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": READ},
    {
        "apiGroups": ["storage.k8s.io"],
        "resources": ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities"],
        "verbs": READ,
    },
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": READ},
    {
        "apiGroups": ["resource.k8s.io"],
        "resources": ["resourceclaims", "resourceslices", "deviceclasses"],
        "verbs": READ,
    },
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [NAME],
        "verbs": ["get", "update"],
    },
]
NAMESPACE_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "list", "watch"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": [f"{NAME}-status", f"{NAME}-priority-expander"],
        "verbs": ["delete", "get", "update", "watch"],
    },
]


def autoscaler_args(profile: Profile) -> list[str]:
    """The autoscaler's command line: AWS, this cluster's tagged groups, least waste."""
    cluster = cluster_name(profile)
    return [
        "./cluster-autoscaler",
        "--cloud-provider=aws",
        "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
        f"k8s.io/cluster-autoscaler/{cluster}",
        "--expander=least-waste",
        "--balance-similar-node-groups",
        "--skip-nodes-with-system-pods=false",
        "--skip-nodes-with-local-storage=false",
        # a node must stay underused this long before it goes: KEDA scales down over minutes
        "--scale-down-unneeded-time=10m",
        "--stderrthreshold=info",
        "--v=2",
    ]


class AutoscalerStack(OmsStack):
    """The cluster autoscaler in ``kube-system``: RBAC, service account, Deployment."""

    def __init__(self, scope: Construct, profile: Profile, eks: EksStack) -> None:
        super().__init__(scope, profile, "autoscaler")
        self.add_dependency(eks)  # the provider finds the cluster by name; the role is there
        self.kubernetes_provider()
        labels = {"app.kubernetes.io/name": NAME}
        meta = {"name": NAME, "namespace": AUTOSCALER_NAMESPACE, "labels": labels}
        account = Manifest(
            self,
            "service-account",
            manifest={
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {**meta, "name": AUTOSCALER_SERVICE_ACCOUNT},
            },
        )
        subject = {
            "kind": "ServiceAccount",
            "name": AUTOSCALER_SERVICE_ACCOUNT,
            "namespace": AUTOSCALER_NAMESPACE,
        }
        rbac = "rbac.authorization.k8s.io"
        bindings = []
        for scope_kind, rules in (("ClusterRole", CLUSTER_RULES), ("Role", NAMESPACE_RULES)):
            metadata = meta if scope_kind == "Role" else {"name": NAME, "labels": labels}
            role = Manifest(
                self,
                scope_kind.lower(),
                manifest={
                    "apiVersion": f"{rbac}/v1",
                    "kind": scope_kind,
                    "metadata": metadata,
                    "rules": rules,
                },
            )
            bindings.append(
                Manifest(
                    self,
                    f"{scope_kind.lower()}-binding",
                    manifest={
                        "apiVersion": f"{rbac}/v1",
                        "kind": f"{scope_kind}Binding",
                        "metadata": metadata,
                        "roleRef": {"apiGroup": rbac, "kind": scope_kind, "name": NAME},
                        "subjects": [subject],
                    },
                    depends_on=[role, account],
                )
            )
        self.deployment = Manifest(
            self,
            "deployment",
            manifest=self._deployment(profile, meta, labels),
            depends_on=bindings,
        )

    def _deployment(
        self, profile: Profile, meta: dict[str, Any], labels: dict[str, str]
    ) -> dict[str, Any]:
        version = f"v{profile.eks.kubernetes_version}.0"
        container = {
            "name": NAME,
            "image": f"{IMAGE}:{version}",
            "command": autoscaler_args(profile),
            "env": [{"name": "AWS_REGION", "value": profile.region}],
            "resources": {
                "requests": {"cpu": "100m", "memory": "600Mi"},
                "limits": {"memory": "600Mi"},
            },
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {
                        "labels": labels,
                        # never evict the autoscaler to save a node: it would stop itself
                        "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
                    },
                    "spec": {
                        "serviceAccountName": AUTOSCALER_SERVICE_ACCOUNT,
                        "priorityClassName": "system-cluster-critical",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "fsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                    },
                },
            },
        }
