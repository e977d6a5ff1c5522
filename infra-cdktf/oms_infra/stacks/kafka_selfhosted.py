"""Self-hosted Kafka for the cost profile: a Strimzi cluster on the EKS nodes instead of MSK.

Three KRaft nodes (controller and broker each), one per zone where possible, on EBS volumes the
EBS CSI driver encrypts with the ``kafka`` key. Clients connect over TLS on 9093 and
authenticate with SCRAM-SHA-512; the brokers' certificates come from the cluster CA Strimzi
generates, which the app stack copies into the app's namespace for the app and for KEDA.
Authorization is Kafka's own (``simple``): a client may do only what the ACLs of its
``KafkaUser`` allow (``oms_infra.kafka_access``); the user operator creates each user's password
in a Secret of the same name. The Strimzi operator must be installed first (README: add-ons);
its CRDs are what these manifests need at plan time.

Same broker settings as MSK (``broker_properties``): three replicas, two in sync, no automatic
topic creation, seven days of retention. Nodes are spot in this profile: with three replicas
and a PodDisruptionBudget from Strimzi, losing one node loses no acknowledged write.
"""

from __future__ import annotations

from cdktf_cdktf_provider_kubernetes.manifest import (
    Manifest,
    ManifestTimeouts,
    ManifestWait,
    ManifestWaitCondition,
)
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
from cdktf_cdktf_provider_kubernetes.storage_class_v1 import (
    StorageClassV1,
    StorageClassV1Metadata,
)
from constructs import Construct

from oms_infra.base import KafkaEndpoint, OmsStack
from oms_infra.kafka_access import grants, strimzi_acls
from oms_infra.profile import Profile
from oms_infra.stacks.eks import EksStack
from oms_infra.stacks.kms import KmsStack
from oms_infra.stacks.msk import broker_properties

NAMESPACE = "kafka"
CLUSTER = "oms-kafka"
TLS_PORT = 9093
STORAGE_CLASS = "kafka-encrypted-gp3"


class SelfHostedKafkaStack(OmsStack):
    """A Strimzi ``Kafka`` with one ``KafkaNodePool`` in namespace ``kafka``."""

    def __init__(self, scope: Construct, profile: Profile, eks: EksStack, kms: KmsStack) -> None:
        super().__init__(scope, profile, "kafka")
        self.add_dependency(eks)  # the provider finds the cluster by name
        self.kubernetes_provider()
        kafka = profile.kafka
        namespace = NamespaceV1(self, "namespace", metadata=NamespaceV1Metadata(name=NAMESPACE))
        storage = StorageClassV1(
            self,
            "storage-class",
            metadata=StorageClassV1Metadata(name=STORAGE_CLASS),
            storage_provisioner="ebs.csi.aws.com",
            parameters={
                "type": "gp3",
                "encrypted": "true",
                "kmsKeyId": kms.keys["kafka"].arn,
            },
            reclaim_policy="Retain",
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
        )
        labels = {"strimzi.io/cluster": CLUSTER}
        pool = Manifest(
            self,
            "node-pool",
            manifest={
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaNodePool",
                "metadata": {"name": "nodes", "namespace": NAMESPACE, "labels": labels},
                "spec": {
                    "replicas": kafka.brokers,
                    "roles": ["controller", "broker"],
                    "storage": {
                        "type": "jbod",
                        "volumes": [
                            {
                                "id": 0,
                                "type": "persistent-claim",
                                "size": f"{kafka.broker_volume_gib}Gi",
                                "class": STORAGE_CLASS,
                                "deleteClaim": False,
                                "kraftMetadata": "shared",
                            }
                        ],
                    },
                    "resources": {
                        "requests": {"cpu": "250m", "memory": kafka.broker_memory},
                        "limits": {"memory": kafka.broker_memory},
                    },
                    "template": {
                        "pod": {
                            "topologySpreadConstraints": [
                                {
                                    "maxSkew": 1,
                                    "topologyKey": "topology.kubernetes.io/zone",
                                    "whenUnsatisfiable": "ScheduleAnyway",
                                    "labelSelector": {"matchLabels": labels},
                                }
                            ]
                        }
                    },
                },
            },
            depends_on=[namespace, storage],
        )
        cluster = Manifest(
            self,
            "cluster",
            manifest={
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "Kafka",
                "metadata": {
                    "name": CLUSTER,
                    "namespace": NAMESPACE,
                    "annotations": {
                        "strimzi.io/node-pools": "enabled",
                        "strimzi.io/kraft": "enabled",
                    },
                },
                "spec": {
                    "kafka": {
                        "version": kafka.version,
                        "listeners": [
                            {
                                "name": "tls",
                                "port": TLS_PORT,
                                "type": "internal",
                                "tls": True,
                                "authentication": {"type": "scram-sha-512"},
                            }
                        ],
                        # deny by default: only what a KafkaUser's ACLs allow
                        "authorization": {"type": "simple"},
                        "config": broker_properties(profile),
                    },
                    "entityOperator": {"userOperator": {}},
                },
            },
            wait=ManifestWait(condition=[ManifestWaitCondition(type="Ready", status="True")]),
            timeouts=ManifestTimeouts(create="30m", update="30m"),
            depends_on=[pool],
        )
        self.cluster = cluster
        for principal, principal_grants in grants(profile).items():
            Manifest(
                self,
                f"user-{principal}",
                manifest={
                    "apiVersion": "kafka.strimzi.io/v1beta2",
                    "kind": "KafkaUser",
                    "metadata": {"name": principal, "namespace": NAMESPACE, "labels": labels},
                    "spec": {
                        "authentication": {"type": "scram-sha-512"},
                        "authorization": {"type": "simple", "acls": strimzi_acls(principal_grants)},
                    },
                },
                depends_on=[cluster],
            )
        self.endpoint = KafkaEndpoint(
            bootstrap_servers=f"{CLUSTER}-kafka-bootstrap.{NAMESPACE}.svc:{TLS_PORT}",
            ca_secret=(NAMESPACE, f"{CLUSTER}-cluster-ca-cert"),
            mechanism="SCRAM-SHA-512",
            users_namespace=NAMESPACE,
        )
