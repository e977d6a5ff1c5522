"""The app on the cluster: namespace, settings, identities, Deployment, Service, NetworkPolicies,
PodDisruptionBudget, KEDA, and the ServiceMonitor Prometheus scrapes it by.

What the app reads is ``oms.config.Settings``: ``OMS_<FIELD>`` variables. The ConfigMap carries
the plain ones and Secrets the ones that hold credentials: the store URLs (copied from the
Secrets Manager secrets of the Redis and DocumentDB stacks) and, on the self-hosted cluster, the
Kafka password. One number, ``kafka.orders_partitions``, gives the partition counts the app
creates its topics with (init container ``oms topics``) and KEDA's ``maxReplicaCount``: a
replica beyond the partition count would own no partition and sit idle.

Identities. On MSK the app's and KEDA's pods act with IAM roles given through EKS Pod Identity
(the roles' policies are their Kafka rights, ``oms_infra.kafka_access``); on the self-hosted
cluster they sign in with SCRAM passwords Strimzi generated. The app connects to DocumentDB as
its own user (readWrite on its database and its recovery log's), which a Job creates with the
master credentials before the Deployment starts; the app's pods never see the master password.

Network. In the namespace nothing may connect to a pod unless a NetworkPolicy allows it: the
ALB (from the public subnets, where its nodes live) reaches the app's HTTP port, and
kube-prometheus's Prometheus (namespace ``monitoring``) too, to scrape ``/metrics``, which the
ALB does not serve to the internet; so do the app's own pods, which forward a read to the
replica that owns the account (signed with ``OMS_INTERNAL_TOKEN``, a random secret this stack
generates once). The Service keeps the client's address
(``externalTrafficPolicy: Local``): without it every request would arrive from a node's address,
indistinguishable from any pod's.

KEDA, kube-prometheus (for the ServiceMonitor) and, for the cost profile, Strimzi must be
installed on the cluster before this stack is planned: ``kubernetes_manifest`` needs their
CRDs (README: add-ons).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

from cdktf import Fn, ITerraformDependable, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_random_password import (
    DataAwsSecretsmanagerRandomPassword,
)
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret_version import (
    DataAwsSecretsmanagerSecretVersion,
)
from cdktf_cdktf_provider_aws.eks_pod_identity_association import EksPodIdentityAssociation
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_kubernetes import deployment_v1 as k8s
from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1, ConfigMapV1Metadata
from cdktf_cdktf_provider_kubernetes.data_kubernetes_secret_v1 import (
    DataKubernetesSecretV1,
    DataKubernetesSecretV1Metadata,
)
from cdktf_cdktf_provider_kubernetes.manifest import (
    Manifest,
    ManifestTimeouts,
    ManifestWait,
    ManifestWaitCondition,
)
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

from oms_infra.base import KafkaEndpoint, OmsStack, cluster_name
from oms_infra.jobs import docdb_user
from oms_infra.kafka_access import APP, KEDA, MskCluster, grants, iam_policy
from oms_infra.profile import (
    CONSUMER_GROUP,
    HTTP_PORT,
    ORDERS_TOPIC,
    REPLICATION_FACTOR,
    Profile,
)
from oms_infra.sizing import PRICES_PARTITIONS
from oms_infra.stacks.deployment import (
    CONFIG_MAP,
    INTERNAL_SECRET,
    INTERNAL_TOKEN_KEY,
    KAFKA_CA_DIR,
    KAFKA_CA_SECRET,
    KAFKA_SECRET,
    NAME,
    SECRET,
    SHUTDOWN_TIMEOUT_S,
    USER_ID,
    oms_deployment,
)
from oms_infra.stacks.documentdb import APP_USER, DocumentDbStack
from oms_infra.stacks.eks import EksStack, assume_role_policy
from oms_infra.stacks.msk import msk_cluster_name
from oms_infra.stacks.network import plan_subnets
from oms_infra.stacks.redis import RedisStack

NAMESPACE = "oms"
MONGO_DATABASE = "oms"
KEDA_NAMESPACE = "keda"
KEDA_SERVICE_ACCOUNT = "keda-operator"  # the KEDA chart's operator, which reads the lag
KEDA_KAFKA_SECRET = "keda-kafka"  # SCRAM only: KEDA's username, password and the CA
MONITORING_NAMESPACE = "monitoring"  # where kube-prometheus-stack runs
PROMETHEUS_RELEASE = "kube-prometheus-stack"  # its Prometheus selects ServiceMonitors by release
DOCDB_ADMIN_SECRET = "oms-docdb-admin"  # for the user Job only
INTERNAL_TOKEN_LENGTH = 48  # letters and digits: about 285 bits
SCALE_UP_WINDOW_S = 60
SCALE_STEP_PERIOD_S = 60


def app_settings(profile: Profile, kafka: KafkaEndpoint) -> dict[str, str]:
    """The ConfigMap: every value an ``OMS_`` variable of ``oms.config.Settings``."""
    partitions = str(profile.kafka.orders_partitions)
    # Both Kafka flavours take SASL over TLS only; a private CA is mounted from a Secret.
    security = {
        "OMS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "OMS_KAFKA_SASL_MECHANISM": kafka.mechanism,
    }
    if kafka.cluster_arn is not None:  # MSK: IAM tokens signed for the region
        security["OMS_KAFKA_AWS_REGION"] = profile.region
    if kafka.users_namespace is not None:  # self-hosted: SCRAM, the password in KAFKA_SECRET
        security["OMS_KAFKA_SASL_USERNAME"] = APP
    if kafka.ca_secret is not None:
        security["OMS_KAFKA_SSL_CAFILE"] = f"{KAFKA_CA_DIR}/ca.crt"
    return security | {
        "OMS_HTTP_HOST": "0.0.0.0",
        "OMS_HTTP_PORT": str(HTTP_PORT),
        "OMS_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "OMS_KAFKA_GROUP_ID": CONSUMER_GROUP,
        "OMS_ORDERS_PARTITIONS": partitions,
        # executions are keyed by account like orders: the same count keeps an account's
        # commands and fills on the same partition number, hence on the same replica
        "OMS_EXECUTIONS_PARTITIONS": partitions,
        "OMS_EVENTS_PARTITIONS": partitions,
        "OMS_PRICES_PARTITIONS": str(PRICES_PARTITIONS),
        "OMS_TOPIC_REPLICATION_FACTOR": str(REPLICATION_FACTOR),
        "OMS_MONGO_DATABASE": MONGO_DATABASE,
        "OMS_LOG_LEVEL": "INFO",
        # Only the ALB (in the VPC's public subnets) reaches the pods' port (NetworkPolicy):
        # its X-Forwarded-For names the client for the rate limits per address and the audit.
        "OMS_TRUSTED_PROXIES": profile.network.vpc_cidr,
        # written out so that the grace period (deployment.TERMINATION_GRACE_S) is built on it
        "OMS_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
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
            data=app_settings(profile, kafka),
        )
        SecretV1(
            self,
            "credentials",
            metadata=SecretV1Metadata(name=SECRET, namespace=namespace.id),
            data={
                "OMS_MONGO_URL": self._secret_field("documentdb-app", documentdb.app_secret.arn),
                "OMS_REDIS_URL": self._secret_field("redis", redis.secret.arn),
            },
        )
        if kafka.ca_secret:
            self._copy_kafka_ca(*kafka.ca_secret)
        if kafka.users_namespace:
            self._copy_scram_passwords(kafka.users_namespace)
        if kafka.cluster_arn:
            self._msk_identities(profile, kafka.cluster_arn)
        ServiceAccountV1(
            self,
            "service-account",
            metadata=ServiceAccountV1Metadata(name=NAME, namespace=namespace.id),
            # EKS Pod Identity mounts a token of its own; the app never calls the Kubernetes API
            automount_service_account_token=False,
        )
        internal = self._internal_token()
        image = f"{eks.repository.repository_url}:{profile.app.image_tag}"
        user_job = self._documentdb_user_job(image, documentdb)
        deployment = oms_deployment(
            self,
            profile,
            image=image,
            namespace=namespace.id,
            labels=self.labels,
            with_kafka_ca=kafka.ca_secret is not None,
            with_kafka_password=kafka.users_namespace is not None,
            depends_on=[user_job, internal],
        )
        ServiceV1(
            self,
            "service",
            metadata=ServiceV1Metadata(name=NAME, namespace=namespace.id, labels=self.labels),
            spec=ServiceV1Spec(
                type="NodePort",
                selector=self.labels,
                # the ALB's own address reaches the pod (the NetworkPolicy admits it); a node
                # without a ready app pod fails the ALB's health check and gets no requests
                external_traffic_policy="Local",
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
        self._network_policies(profile)
        self._service_monitor()
        self._autoscaling(profile, kafka, deployment)

    def _secret_field(self, store: str, secret_arn: str, field: str = "url") -> str:
        """One field of a store's Secrets Manager secret (its ``url`` by default)."""
        version = self.node.try_find_child(f"{store}-secret")
        if not isinstance(version, DataAwsSecretsmanagerSecretVersion):
            version = DataAwsSecretsmanagerSecretVersion(
                self, f"{store}-secret", secret_id=secret_arn
            )
        return Token.as_string(Fn.lookup(Fn.jsondecode(version.secret_string), field))

    def _internal_token(self) -> SecretV1:
        """``OMS_INTERNAL_TOKEN``: one random secret for every pod, to sign the hop between them.

        Secrets Manager draws it (a data source: a fresh value at every plan), so the Secret
        keeps the value it was created with (``ignore_changes``): a new token in some pods and
        the old one in others would refuse every forwarded read between them. To rotate it,
        replace the Secret (``terraform apply -replace``) and restart the Deployment.
        """
        token = DataAwsSecretsmanagerRandomPassword(
            self,
            "internal-token-value",
            password_length=INTERNAL_TOKEN_LENGTH,
            exclude_punctuation=True,
        )
        return SecretV1(
            self,
            "internal-token",
            metadata=SecretV1Metadata(name=INTERNAL_SECRET, namespace=self._namespace.id),
            data={INTERNAL_TOKEN_KEY: token.random_password},
            lifecycle=TerraformResourceLifecycle(ignore_changes=["data"]),
        )

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

    def _copy_scram_passwords(self, users_namespace: str) -> None:
        """The app's and KEDA's SCRAM passwords, from the Secrets Strimzi's user operator made."""
        passwords = {
            principal: Token.as_string(
                Fn.lookup(
                    DataKubernetesSecretV1(
                        self,
                        f"kafka-user-{principal}",
                        metadata=DataKubernetesSecretV1Metadata(
                            name=principal, namespace=users_namespace
                        ),
                    ).data,
                    "password",
                )
            )
            for principal in (APP, KEDA)
        }
        SecretV1(
            self,
            "kafka-password",
            metadata=SecretV1Metadata(name=KAFKA_SECRET, namespace=self._namespace.id),
            data={"OMS_KAFKA_SASL_PASSWORD": passwords[APP]},
        )
        SecretV1(
            self,
            "keda-kafka",
            metadata=SecretV1Metadata(name=KEDA_KAFKA_SECRET, namespace=self._namespace.id),
            data={"username": KEDA, "password": passwords[KEDA]},
        )

    def _msk_identities(self, profile: Profile, cluster_arn: str) -> None:
        """IAM roles for the app's and KEDA's pods, each allowed its Kafka rights on MSK only."""
        rights = grants(profile)
        partition = DataAwsPartition(self, "partition").partition
        account = DataAwsCallerIdentity(self, "account").account_id
        cluster = MskCluster(
            arn=cluster_arn,
            name=msk_cluster_name(profile),
            account_arn=f"arn:{partition}:kafka:{profile.region}:{account}",
        )
        for principal, namespace, account in (
            (APP, NAMESPACE, NAME),
            (KEDA, KEDA_NAMESPACE, KEDA_SERVICE_ACCOUNT),
        ):
            role = IamRole(
                self,
                f"{principal}-kafka-role",
                name=f"{profile.prefix}-{principal}-kafka",
                assume_role_policy=assume_role_policy("pods.eks.amazonaws.com", tag_session=True),
            )
            IamRolePolicy(
                self,
                f"{principal}-kafka-policy",
                role=role.id,
                name="kafka-access",
                policy=json.dumps(iam_policy(rights[principal], cluster)),
            )
            EksPodIdentityAssociation(
                self,
                f"{principal}-kafka-identity",
                cluster_name=cluster_name(profile),
                namespace=namespace,
                service_account=account,
                role_arn=role.arn,
            )

    def _documentdb_user_job(self, image: str, documentdb: DocumentDbStack) -> Manifest:
        """A Job that creates the app's DocumentDB user as the master user, before the app."""
        admin = SecretV1(
            self,
            "docdb-admin",
            metadata=SecretV1Metadata(name=DOCDB_ADMIN_SECRET, namespace=self._namespace.id),
            data={
                "MASTER_URL": self._secret_field("documentdb", documentdb.secret.arn),
                "APP_PASSWORD": self._secret_field(
                    "documentdb-app", documentdb.app_secret.arn, "password"
                ),
            },
        )
        script = inspect.getsource(docdb_user)
        # a Job's pod template cannot change: a new script or image is a new Job
        digest = hashlib.sha256(f"{image}\n{script}".encode()).hexdigest()[:8]
        locked_down = {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        return Manifest(
            self,
            "docdb-user-job",
            manifest={
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": f"oms-docdb-user-{digest}",
                    "namespace": NAMESPACE,
                    "labels": {"app.kubernetes.io/name": "oms-docdb-user"},
                },
                "spec": {
                    "backoffLimit": 6,
                    "activeDeadlineSeconds": 900,
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": "oms-docdb-user"}},
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "automountServiceAccountToken": False,
                            "securityContext": {
                                "runAsUser": USER_ID,
                                "runAsGroup": USER_ID,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [
                                {
                                    "name": "docdb-user",
                                    "image": image,
                                    "command": ["python", "-c", script],
                                    "env": [
                                        {"name": "APP_USER", "value": APP_USER},
                                        {"name": "APP_DATABASE", "value": MONGO_DATABASE},
                                    ],
                                    "envFrom": [{"secretRef": {"name": DOCDB_ADMIN_SECRET}}],
                                    "securityContext": locked_down,
                                    "resources": {
                                        "requests": {"cpu": "50m", "memory": "128Mi"},
                                        "limits": {"memory": "256Mi"},
                                    },
                                }
                            ],
                        },
                    },
                },
            },
            wait=ManifestWait(condition=[ManifestWaitCondition(type="Complete", status="True")]),
            timeouts=ManifestTimeouts(create="15m", update="15m"),
            depends_on=[admin],
        )

    def _network_policies(self, profile: Profile) -> None:
        """Deny every connection into the namespace but the ALB's, Prometheus's and the app's
        own (a read forwarded to the replica that owns the account) to the app's port."""
        zones = len(profile.network.availability_zones)
        alb_subnets = plan_subnets(profile.network.vpc_cidr, zones).public
        http = [{"protocol": "TCP", "port": HTTP_PORT}]
        policies: dict[str, dict[str, Any]] = {
            "default-deny-ingress": {"podSelector": {}, "policyTypes": ["Ingress"]},
            "oms-http-from-alb": {
                "podSelector": {"matchLabels": self.labels},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": cidr}} for cidr in alb_subnets], "ports": http}
                ],
            },
            # the internal hop: a replica forwards a read to the pod at the owner's advertised
            # address (OMS_ADVERTISE_URL, the pod's IP), never through the ALB
            "oms-http-from-oms": {
                "podSelector": {"matchLabels": self.labels},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": self.labels}}], "ports": http}
                ],
            },
            "oms-metrics-from-prometheus": {
                "podSelector": {"matchLabels": self.labels},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {
                                        "kubernetes.io/metadata.name": MONITORING_NAMESPACE
                                    }
                                },
                                "podSelector": {
                                    "matchLabels": {"app.kubernetes.io/name": "prometheus"}
                                },
                            }
                        ],
                        "ports": http,
                    }
                ],
            },
        }
        for name, spec in policies.items():
            Manifest(
                self,
                f"network-policy-{name}",
                manifest={
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": spec,
                },
                depends_on=[self._namespace],
            )

    def _service_monitor(self) -> None:
        """kube-prometheus scrapes ``/metrics`` of every app pod through the Service."""
        Manifest(
            self,
            "service-monitor",
            manifest={
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": {
                    "name": NAME,
                    "namespace": NAMESPACE,
                    "labels": {**self.labels, "release": PROMETHEUS_RELEASE},
                },
                "spec": {
                    "selector": {"matchLabels": self.labels},
                    "namespaceSelector": {"matchNames": [NAMESPACE]},
                    "endpoints": [
                        {"port": "http", "path": "/metrics", "interval": "15s",
                         "scrapeTimeout": "5s"}
                    ],
                },
            },
            depends_on=[self._namespace],
        )  # fmt: skip

    def _trigger_authentication(
        self, profile: Profile, kafka: KafkaEndpoint
    ) -> tuple[dict[str, str], ITerraformDependable]:
        """How KEDA signs in to Kafka: trigger metadata, and the TriggerAuthentication."""
        spec: dict[str, Any]
        if kafka.cluster_arn:
            # KEDA's operator acts with its own role (EKS Pod Identity, _msk_identities)
            metadata = {
                "sasl": "oauthbearer",
                "saslTokenProvider": "aws_msk_iam",
                "awsRegion": profile.region,
            }
            spec = {"podIdentity": {"provider": "aws"}}
        else:
            metadata = {"sasl": "scram_sha512"}
            refs = [
                {"parameter": "username", "name": KEDA_KAFKA_SECRET, "key": "username"},
                {"parameter": "password", "name": KEDA_KAFKA_SECRET, "key": "password"},
            ]
            if kafka.ca_secret:
                refs.append({"parameter": "ca", "name": KAFKA_CA_SECRET, "key": "ca.crt"})
            spec = {"secretTargetRef": refs}
        auth = Manifest(
            self,
            "kafka-trigger-auth",
            manifest={
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "TriggerAuthentication",
                "metadata": {"name": "kafka", "namespace": NAMESPACE},
                "spec": spec,
            },
            depends_on=[self._namespace],
        )
        return metadata, auth

    def _autoscaling(
        self, profile: Profile, kafka: KafkaEndpoint, deployment: k8s.DeploymentV1
    ) -> None:
        """A ScaledObject on the lag of the orders group, capped at the partition count.

        Every scale step rebalances the consumer group, which pauses consumption for a moment:
        a lag spike must not set off a storm of them. Up: only after a minute of lag above the
        threshold, one replica a minute. Down: after five calm minutes, one a minute.
        """
        metadata, auth = self._trigger_authentication(profile, kafka)
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
                **metadata,
            },
            "authenticationRef": {"name": "kafka"},
        }
        one_a_minute = [{"type": "Pods", "value": 1, "periodSeconds": SCALE_STEP_PERIOD_S}]
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
                    "advanced": {
                        "horizontalPodAutoscalerConfig": {
                            "behavior": {
                                "scaleUp": {
                                    "stabilizationWindowSeconds": SCALE_UP_WINDOW_S,
                                    "selectPolicy": "Max",
                                    "policies": one_a_minute,
                                },
                                "scaleDown": {
                                    "stabilizationWindowSeconds": 300,
                                    "policies": one_a_minute,
                                },
                            }
                        }
                    },
                    "triggers": [trigger],
                },
            },
            depends_on=[deployment, auth],
        )
