"""MSK: the managed Kafka cluster, TLS only, encrypted with the ``kafka`` key.

Topics are not Terraform resources: the app's ``oms topics`` command creates them (it runs as
the Deployment's init container) with the partition counts and the replication factor the app
stack puts in its ConfigMap, all derived from ``kafka.orders_partitions`` and
``REPLICATION_FACTOR``. The broker configuration below makes the same promises for anything
else: no topic is created by accident, every topic defaults to three replicas, and a write with
acks=all needs two of them in sync.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.msk_cluster import (
    MskCluster,
    MskClusterBrokerNodeGroupInfo,
    MskClusterBrokerNodeGroupInfoStorageInfo,
    MskClusterBrokerNodeGroupInfoStorageInfoEbsStorageInfo,
    MskClusterClientAuthentication,
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
from oms_infra.stacks.kms import KmsStack
from oms_infra.stacks.network import NetworkStack

RETENTION_HOURS = 7 * 24


def broker_properties() -> dict[str, str]:
    """The broker settings both Kafka flavours share."""
    return {
        "auto.create.topics.enable": "false",
        "default.replication.factor": str(REPLICATION_FACTOR),
        "min.insync.replicas": str(MIN_INSYNC_REPLICAS),
        "offsets.topic.replication.factor": str(REPLICATION_FACTOR),
        "transaction.state.log.replication.factor": str(REPLICATION_FACTOR),
        "transaction.state.log.min.isr": str(MIN_INSYNC_REPLICAS),
        "unclean.leader.election.enable": "false",
        "log.retention.hours": str(RETENTION_HOURS),
    }


class MskStack(OmsStack):
    """The MSK cluster in the data subnets."""

    def __init__(
        self, scope: Construct, profile: Profile, network: NetworkStack, kms: KmsStack
    ) -> None:
        super().__init__(scope, profile, "msk")
        kafka = profile.kafka
        name = f"{profile.prefix}-kafka"
        config = MskConfiguration(
            self,
            "config",
            name=name,
            kafka_versions=[kafka.version],
            server_properties="".join(f"{k}={v}\n" for k, v in broker_properties().items()),
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
            # TLS without client certificates; only the eks group reaches the brokers
            client_authentication=MskClusterClientAuthentication(unauthenticated=True),
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
        )
        # brokers' certificates chain to a public CA (Amazon Trust Services): no CA to ship
        self.endpoint = KafkaEndpoint(
            bootstrap_servers=self.cluster.bootstrap_brokers_tls, ca_secret=None
        )
