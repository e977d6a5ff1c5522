"""MSK: the managed Kafka cluster, TLS only, IAM access control, encrypted with the ``kafka`` key.

Clients authenticate with AWS IAM (SASL/OAUTHBEARER over TLS, port 9098) and nothing else: no
unauthenticated or plaintext listener. Their IAM policies are the access rules
(``oms_infra.kafka_access``); the app stack gives them to the pods' roles.

Topics are not Terraform resources: the app's ``oms topics`` command creates them (it runs as
the Deployment's init container) with the partition counts and the replication factor the app
stack puts in its ConfigMap, all derived from ``kafka.orders_partitions`` and
``REPLICATION_FACTOR``. The broker configuration below makes the same promises for anything
else: no topic is created by accident, every topic defaults to three replicas, and a write with
acks=all needs two of them in sync. Retention is seven days or ``sizing.retention`` bytes per
partition, whichever comes first, so that the topics never fill the volumes; storage autoscaling
grows the volumes (up to ``kafka.broker_volume_max_gib``) for whatever else does.
"""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.msk_cluster import (
    MskCluster,
    MskClusterBrokerNodeGroupInfo,
    MskClusterBrokerNodeGroupInfoStorageInfo,
    MskClusterBrokerNodeGroupInfoStorageInfoEbsStorageInfo,
    MskClusterClientAuthentication,
    MskClusterClientAuthenticationSasl,
    MskClusterConfigurationInfo,
    MskClusterEncryptionInfo,
    MskClusterEncryptionInfoEncryptionInTransit,
    MskClusterLoggingInfo,
    MskClusterLoggingInfoBrokerLogs,
    MskClusterLoggingInfoBrokerLogsCloudwatchLogs,
)
from cdktf_cdktf_provider_aws.msk_configuration import MskConfiguration
from constructs import Construct

from oms_infra.base import KafkaEndpoint, OmsStack
from oms_infra.profile import MIN_INSYNC_REPLICAS, REPLICATION_FACTOR, Profile
from oms_infra.sizing import retention
from oms_infra.stacks.kms import KmsStack
from oms_infra.stacks.network import NetworkStack

RETENTION_HOURS = 7 * 24
# MSK grows a volume when its use passes this share; byte retention keeps the topics under
# sizing.TOPIC_SHARE_OF_DISK, and the disk alarm (alarms stack) fires above both
STORAGE_TARGET_UTILIZATION = 70


def msk_cluster_name(profile: Profile) -> str:
    """The MSK cluster's name; IAM policies name its topics and groups by it."""
    return f"{profile.prefix}-kafka"


def broker_properties(profile: Profile) -> dict[str, str]:
    """The broker settings both Kafka flavours share."""
    bounds = retention(profile)
    return {
        "auto.create.topics.enable": "false",
        "default.replication.factor": str(REPLICATION_FACTOR),
        "min.insync.replicas": str(MIN_INSYNC_REPLICAS),
        "offsets.topic.replication.factor": str(REPLICATION_FACTOR),
        "transaction.state.log.replication.factor": str(REPLICATION_FACTOR),
        "transaction.state.log.min.isr": str(MIN_INSYNC_REPLICAS),
        "unclean.leader.election.enable": "false",
        "log.retention.hours": str(RETENTION_HOURS),
        "log.retention.bytes": str(bounds.retention_bytes),
        "log.segment.bytes": str(bounds.segment_bytes),
    }


class MskStack(OmsStack):
    """The MSK cluster in the data subnets."""

    def __init__(
        self, scope: Construct, profile: Profile, network: NetworkStack, kms: KmsStack
    ) -> None:
        super().__init__(scope, profile, "msk")
        kafka = profile.kafka
        name = msk_cluster_name(profile)
        config = MskConfiguration(
            self,
            "config",
            name=name,
            kafka_versions=[kafka.version],
            server_properties="".join(f"{k}={v}\n" for k, v in broker_properties(profile).items()),
        )
        logs = CloudwatchLogGroup(
            self,
            "broker-logs",
            name=f"/aws/msk/{name}",
            retention_in_days=profile.operations.log_retention_days,
            kms_key_id=kms.keys["logs"].arn,
        )
        self.cluster = MskCluster(
            self,
            "cluster",
            cluster_name=name,
            kafka_version=kafka.version,
            number_of_broker_nodes=kafka.brokers,
            broker_node_group_info=MskClusterBrokerNodeGroupInfo(
                instance_type=kafka.broker_instance_type,
                client_subnets=[s.id for s in network.data_subnets],
                security_groups=[network.security_groups["msk"].id],
                storage_info=MskClusterBrokerNodeGroupInfoStorageInfo(
                    ebs_storage_info=MskClusterBrokerNodeGroupInfoStorageInfoEbsStorageInfo(
                        volume_size=kafka.broker_volume_gib
                    )
                ),
            ),
            encryption_info=MskClusterEncryptionInfo(
                encryption_at_rest_kms_key_arn=kms.keys["kafka"].arn,
                encryption_in_transit=MskClusterEncryptionInfoEncryptionInTransit(
                    client_broker="TLS", in_cluster=True
                ),
            ),
            # IAM only: every client proves its identity, and its role says what it may do
            client_authentication=MskClusterClientAuthentication(
                unauthenticated=False, sasl=MskClusterClientAuthenticationSasl(iam=True)
            ),
            configuration_info=MskClusterConfigurationInfo(
                arn=config.arn, revision=config.latest_revision
            ),
            logging_info=MskClusterLoggingInfo(
                broker_logs=MskClusterLoggingInfoBrokerLogs(
                    cloudwatch_logs=MskClusterLoggingInfoBrokerLogsCloudwatchLogs(
                        enabled=True, log_group=logs.name
                    )
                )
            ),
            enhanced_monitoring="DEFAULT",
            # storage autoscaling raises the volume size behind Terraform's back
            lifecycle=TerraformResourceLifecycle(
                ignore_changes=[
                    "broker_node_group_info[0].storage_info[0].ebs_storage_info[0].volume_size"
                ]
            ),
        )
        self._storage_autoscaling(kafka.broker_volume_gib, kafka.broker_volume_max_gib)
        # brokers' certificates chain to a public CA (Amazon Trust Services): no CA to ship
        self.endpoint = KafkaEndpoint(
            bootstrap_servers=self.cluster.bootstrap_brokers_sasl_iam,
            ca_secret=None,
            mechanism="AWS_MSK_IAM",
            cluster_arn=self.cluster.arn,
        )

    def _storage_autoscaling(self, volume_gib: int, max_gib: int) -> None:
        """Grow each broker's volume when it is STORAGE_TARGET_UTILIZATION full (never shrink)."""
        target = AppautoscalingTarget(
            self,
            "storage-target",
            service_namespace="kafka",
            scalable_dimension="kafka:broker-storage:VolumeSize",
            resource_id=self.cluster.arn,
            min_capacity=volume_gib,
            max_capacity=max_gib,
        )
        AppautoscalingPolicy(
            self,
            "storage-policy",
            name=f"{self.cluster.cluster_name}-storage",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=(
                AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                    target_value=STORAGE_TARGET_UTILIZATION,
                    disable_scale_in=True,  # MSK volumes cannot shrink
                    predefined_metric_specification=AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification(
                        predefined_metric_type="KafkaBrokerStorageUtilization"
                    ),
                )
            ),
        )
