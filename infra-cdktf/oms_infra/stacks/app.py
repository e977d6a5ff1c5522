"""The app on the cluster: namespace, settings, Deployment, Service, PodDisruptionBudget, KEDA.

What the app reads is ``oms.config.Settings``: ``OMS_<FIELD>`` variables. The ConfigMap carries
the plain ones and the Secret the two URLs that hold credentials (copied from the Secrets Manager
secrets of the Redis and DocumentDB stacks). One number, ``kafka.orders_partitions``, gives the
partition counts the app creates its topics with (init container ``oms topics``) and KEDA's
``maxReplicaCount``: a replica beyond the partition count would own no partition and sit idle.

KEDA (and, for the cost profile, Strimzi) must be installed on the cluster before this stack is
planned: ``kubernetes_manifest`` needs their CRDs (README: add-ons).
"""

from __future__ import annotations

from cdktf import Fn, Token
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret_version import (
    DataAwsSecretsmanagerSecretVersion,
)
from cdktf_cdktf_provider_kubernetes import deployment_v1 as k8s
from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1, ConfigMapV1Metadata
from cdktf_cdktf_provider_kubernetes.data_kubernetes_secret_v1 import (
    DataKubernetesSecretV1,
    DataKubernetesSecretV1Metadata,
)
from cdktf_cdktf_provider_kubernetes.manifest import Manifest
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
from cdktf_cdktf_provider_kubernetes.pod_disruption_budget_v1 import (
    PodDisruptionBudgetV1,
    PodDisruptionBudgetV1Metadata,
    PodDisruptionBudgetV1Spec,
    PodDisruptionBudgetV1SpecSelector,
)
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from cdktf_cdktf_provider_kubernetes.service_account_v1 import (
    ServiceAccountV1,
    ServiceAccountV1Metadata,
)
from cdktf_cdktf_provider_kubernetes.service_v1 import (
    ServiceV1,
    ServiceV1Metadata,
    ServiceV1Spec,
    ServiceV1SpecPort,
)
from constructs import Construct

from oms_infra.base import KafkaEndpoint, OmsStack
from oms_infra.profile import (
    CONSUMER_GROUP,
    HTTP_PORT,
    ORDERS_TOPIC,
    REPLICATION_FACTOR,
    Profile,
)
from oms_infra.stacks.deployment import (
    CONFIG_MAP,
    KAFKA_CA_DIR,
    KAFKA_CA_SECRET,
    NAME,
    SECRET,
    oms_deployment,
)
from oms_infra.stacks.documentdb import DocumentDbStack
from oms_infra.stacks.eks import EksStack
from oms_infra.stacks.redis import RedisStack

NAMESPACE = "oms"
MONGO_DATABASE = "oms"


def app_settings(
    profile: Profile, bootstrap_servers: str, *, private_kafka_ca: bool = False
) -> dict[str, str]:
    """The ConfigMap: every value an ``OMS_`` variable of ``oms.config.Settings``."""
    partitions = str(profile.kafka.orders_partitions)
    # Both MSK and the self-hosted cluster take TLS only; a private CA is mounted from a Secret.
    tls = {"OMS_KAFKA_SECURITY_PROTOCOL": "SSL"}
    if private_kafka_ca:
        tls["OMS_KAFKA_SSL_CAFILE"] = f"{KAFKA_CA_DIR}/ca.crt"
    return tls | {
        "OMS_HTTP_HOST": "0.0.0.0",
        "OMS_HTTP_PORT": str(HTTP_PORT),
        "OMS_KAFKA_BOOTSTRAP": bootstrap_servers,
        "OMS_KAFKA_GROUP_ID": CONSUMER_GROUP,
        "OMS_ORDERS_PARTITIONS": partitions,
        # executions are keyed by account like orders: the same count keeps an account's
        # commands and fills on the same partition number, hence on the same replica
        "OMS_EXECUTIONS_PARTITIONS": partitions,
        "OMS_EVENTS_PARTITIONS": partitions,
        "OMS_TOPIC_REPLICATION_FACTOR": str(REPLICATION_FACTOR),
        "OMS_MONGO_DATABASE": MONGO_DATABASE,
        "OMS_LOG_LEVEL": "INFO",
    }


class AppStack(OmsStack):
    """oms on EKS, scaled by KEDA on the lag of the ``orders`` consumer group."""

    def __init__(
        self,
        scope: Construct,
        profile: Profile,
        *,
        eks: EksStack,
        kafka: KafkaEndpoint,
        redis: RedisStack,
        documentdb: DocumentDbStack,
    ) -> None:
        super().__init__(scope, profile, "app")
        self.add_dependency(eks)  # the provider finds the cluster by name
        self.kubernetes_provider()
        self.labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": profile.prefix}
        namespace = NamespaceV1(self, "namespace", metadata=NamespaceV1Metadata(name=NAMESPACE))
        self._namespace = namespace

        ConfigMapV1(
            self,
            "settings",
            metadata=ConfigMapV1Metadata(name=CONFIG_MAP, namespace=namespace.id),
            data=app_settings(
                profile, kafka.bootstrap_servers, private_kafka_ca=kafka.ca_secret is not None
            ),
        )
        SecretV1(
            self,
            "credentials",
            metadata=SecretV1Metadata(name=SECRET, namespace=namespace.id),
            data={
                "OMS_MONGO_URL": self._secret_url("documentdb", documentdb.secret.arn),
                "OMS_REDIS_URL": self._secret_url("redis", redis.secret.arn),
            },
        )
        if kafka.ca_secret:
            self._copy_kafka_ca(*kafka.ca_secret)
        ServiceAccountV1(
            self,
            "service-account",
            metadata=ServiceAccountV1Metadata(name=NAME, namespace=namespace.id),
            automount_service_account_token=False,
        )
        image = f"{eks.repository.repository_url}:{profile.app.image_tag}"
        deployment = oms_deployment(
            self,
            profile,
            image=image,
            namespace=namespace.id,
            labels=self.labels,
            with_kafka_ca=kafka.ca_secret is not None,
        )
        ServiceV1(
            self,
            "service",
            metadata=ServiceV1Metadata(name=NAME, namespace=namespace.id, labels=self.labels),
            spec=ServiceV1Spec(
                type="NodePort",
                selector=self.labels,
                port=[
                    ServiceV1SpecPort(
                        name="http",
                        port=80,
                        target_port="http",
                        node_port=profile.app.node_port,
                    )
                ],
            ),
        )
        PodDisruptionBudgetV1(
            self,
            "disruption-budget",
            metadata=PodDisruptionBudgetV1Metadata(name=NAME, namespace=namespace.id),
            spec=PodDisruptionBudgetV1Spec(
                max_unavailable="1",
                selector=PodDisruptionBudgetV1SpecSelector(match_labels=self.labels),
            ),
        )
        self._autoscaling(profile, kafka, deployment)

    def _secret_url(self, store: str, secret_arn: str) -> str:
        """The ``url`` of a store's Secrets Manager secret."""
        version = DataAwsSecretsmanagerSecretVersion(self, f"{store}-secret", secret_id=secret_arn)
        return Token.as_string(Fn.lookup(Fn.jsondecode(version.secret_string), "url"))

    def _copy_kafka_ca(self, namespace: str, name: str) -> None:
        """Strimzi's cluster CA lives in the Kafka namespace: the app and KEDA need it here."""
        source = DataKubernetesSecretV1(
            self,
            "kafka-cluster-ca",
            metadata=DataKubernetesSecretV1Metadata(name=name, namespace=namespace),
        )
        SecretV1(
            self,
            "kafka-ca",
            metadata=SecretV1Metadata(name=KAFKA_CA_SECRET, namespace=self._namespace.id),
            data={"ca.crt": Token.as_string(Fn.lookup(source.data, "ca.crt"))},
        )

    def _autoscaling(
        self, profile: Profile, kafka: KafkaEndpoint, deployment: k8s.DeploymentV1
    ) -> None:
        """A ScaledObject on the lag of the orders group, capped at the partition count."""
        trigger: dict[str, object] = {
            "type": "kafka",
            "metadata": {
                "bootstrapServers": kafka.bootstrap_servers,
                "consumerGroup": CONSUMER_GROUP,
                "topic": ORDERS_TOPIC,
                "lagThreshold": str(profile.app.lag_threshold),
                "offsetResetPolicy": "earliest",
                "allowIdleConsumers": "false",
                "tls": "enable",
            },
        }
        if kafka.ca_secret:
            Manifest(
                self,
                "kafka-trigger-auth",
                manifest={
                    "apiVersion": "keda.sh/v1alpha1",
                    "kind": "TriggerAuthentication",
                    "metadata": {"name": "kafka-tls", "namespace": NAMESPACE},
                    "spec": {
                        "secretTargetRef": [
                            {"parameter": "ca", "name": KAFKA_CA_SECRET, "key": "ca.crt"}
                        ]
                    },
                },
                depends_on=[self._namespace],
            )
            trigger["authenticationRef"] = {"name": "kafka-tls"}
        Manifest(
            self,
            "scaled-object",
            manifest={
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": NAME, "namespace": NAMESPACE},
                "spec": {
                    "scaleTargetRef": {"name": NAME},
                    "minReplicaCount": profile.app.min_replicas,
                    "maxReplicaCount": profile.kafka.orders_partitions,
                    "pollingInterval": 15,
                    "cooldownPeriod": 300,
                    # every scale step rebalances the group: scale down slowly, one at a time
                    "advanced": {
                        "horizontalPodAutoscalerConfig": {
                            "behavior": {
                                "scaleDown": {
                                    "stabilizationWindowSeconds": 300,
                                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                                }
                            }
                        }
                    },
                    "triggers": [trigger],
                },
            },
            depends_on=[deployment],
        )
