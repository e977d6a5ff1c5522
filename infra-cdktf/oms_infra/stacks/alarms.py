"""CloudWatch alarms on the managed parts, to one SNS topic the on-call subscribes to.

What each alarm watches and why it pages:
- MSK, per broker: data disk use above ``MSK_DISK_PERCENT`` (retention and storage autoscaling
  should keep it below; above, a broker is days or hours from refusing writes), and
  under-replicated partitions for five minutes (a broker is down or behind: one more loss and
  acks=all writes stop).
- DocumentDB, per instance: CPU above ``CPU_PERCENT`` for 15 minutes, and freeable memory below
  ``FREEABLE_MEMORY_SHARE`` of the instance's (the working set no longer fits: reads hit disk).
- ElastiCache, per node: any eviction (Redis holds idempotency keys: an evicted key lets a
  retried order through as new), and memory use above ``REDIS_MEMORY_PERCENT``.
- ALB: 5xx answered by the ALB itself (no healthy target, target reset) or by the app, more than
  ``HTTP_5XX_PER_5_MIN`` in five minutes, and p99 target response time above
  ``P99_RESPONSE_S`` for ten minutes.
The self-hosted Kafka of the cost profile has no CloudWatch metrics: its brokers are watched by
Prometheus (Strimzi's metrics) instead. Each alarm also says when it is OK again.

The topic is encrypted with the ``alerts`` key, which lets CloudWatch publish; ``operations.
alarm_email`` is subscribed when set (AWS mails a confirmation link first).
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from oms_infra.base import OmsStack
from oms_infra.profile import DOCDB_INSTANCE_MEMORY_GIB, Profile
from oms_infra.stacks.documentdb import DocumentDbStack
from oms_infra.stacks.edge import EdgeStack
from oms_infra.stacks.kms import KmsStack
from oms_infra.stacks.msk import MskStack
from oms_infra.stacks.redis import RedisStack

MSK_DISK_PERCENT = 85
CPU_PERCENT = 80
FREEABLE_MEMORY_SHARE = 0.10
REDIS_MEMORY_PERCENT = 80
HTTP_5XX_PER_5_MIN = 10
P99_RESPONSE_S = 1.0
GIB = 1 << 30


class AlarmsStack(OmsStack):
    """The alarm topic and the alarms."""

    def __init__(
        self,
        scope: Construct,
        profile: Profile,
        *,
        kms: KmsStack,
        edge: EdgeStack,
        redis: RedisStack,
        documentdb: DocumentDbStack,
        msk: MskStack | None,
    ) -> None:
        super().__init__(scope, profile, "alarms")
        self.topic = SnsTopic(
            self,
            "topic",
            name=f"{profile.prefix}-alarms",
            kms_master_key_id=kms.keys["alerts"].arn,
        )
        account = DataAwsCallerIdentity(self, "account").account_id
        SnsTopicPolicy(
            self,
            "topic-policy",
            arn=self.topic.arn,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "CloudWatchAlarmsOfThisAccount",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": self.topic.arn,
                            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                        }
                    ],
                }
            ),
        )
        if profile.operations.alarm_email:
            SnsTopicSubscription(
                self,
                "email",
                topic_arn=self.topic.arn,
                protocol="email",
                endpoint=profile.operations.alarm_email,
            )
        if msk is not None:
            self._msk(profile, msk)
        self._documentdb(profile, documentdb)
        self._redis(profile, redis)
        self._alb(edge)

    def alarm(
        self,
        ident: str,
        *,
        description: str,
        namespace: str,
        metric: str,
        dimensions: dict[str, str],
        comparison: str,
        threshold: float,
        period: int = 300,
        periods: int = 1,
        statistic: str = "Maximum",
        missing: str = "missing",
    ) -> CloudwatchMetricAlarm:
        """One alarm that notifies the topic when it fires and when it clears."""
        percentile = statistic.startswith("p")
        return CloudwatchMetricAlarm(
            self,
            ident,
            alarm_name=f"{self.profile.prefix}-{ident}",
            alarm_description=description,
            namespace=namespace,
            metric_name=metric,
            dimensions=dimensions,
            statistic=None if percentile else statistic,
            extended_statistic=statistic if percentile else None,
            comparison_operator=comparison,
            threshold=threshold,
            period=period,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=missing,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
        )

    def _msk(self, profile: Profile, msk: MskStack) -> None:
        for broker in range(1, profile.kafka.brokers + 1):
            dimensions = {"Cluster Name": msk.cluster.cluster_name, "Broker ID": str(broker)}
            self.alarm(
                f"msk-disk-used-broker-{broker}",
                description=f"Kafka data disk of broker {broker} over {MSK_DISK_PERCENT}% used",
                namespace="AWS/Kafka",
                metric="KafkaDataLogsDiskUsed",
                dimensions=dimensions,
                comparison="GreaterThanThreshold",
                threshold=MSK_DISK_PERCENT,
            )
            self.alarm(
                f"msk-under-replicated-broker-{broker}",
                description=f"Broker {broker} leads partitions missing replicas for 5 minutes",
                namespace="AWS/Kafka",
                metric="UnderReplicatedPartitions",
                dimensions=dimensions,
                comparison="GreaterThanThreshold",
                threshold=0,
                period=60,
                periods=5,
            )

    def _documentdb(self, profile: Profile, documentdb: DocumentDbStack) -> None:
        memory = DOCDB_INSTANCE_MEMORY_GIB[profile.documentdb.instance_class] * GIB
        for i, instance in enumerate(documentdb.instances):
            dimensions = {"DBInstanceIdentifier": instance.identifier}
            self.alarm(
                f"docdb-cpu-{i}",
                description=f"DocumentDB instance {i}: CPU over {CPU_PERCENT}% for 15 minutes",
                namespace="AWS/DocDB",
                metric="CPUUtilization",
                dimensions=dimensions,
                comparison="GreaterThanThreshold",
                threshold=CPU_PERCENT,
                periods=3,
                statistic="Average",
            )
            self.alarm(
                f"docdb-freeable-memory-{i}",
                description=(
                    f"DocumentDB instance {i}: freeable memory under "
                    f"{FREEABLE_MEMORY_SHARE:.0%} of {memory // GIB} GiB for 15 minutes"
                ),
                namespace="AWS/DocDB",
                metric="FreeableMemory",
                dimensions=dimensions,
                comparison="LessThanThreshold",
                threshold=int(memory * FREEABLE_MEMORY_SHARE),
                periods=3,
                statistic="Average",
            )

    def _redis(self, profile: Profile, redis: RedisStack) -> None:
        # ElastiCache names the nodes of a replication group <group id>-001, -002, ...
        for node in range(1, profile.redis.nodes + 1):
            dimensions = {"CacheClusterId": f"{redis.group.replication_group_id}-{node:03d}"}
            self.alarm(
                f"redis-evictions-{node}",
                description=f"Redis node {node} evicted keys (idempotency keys among them)",
                namespace="AWS/ElastiCache",
                metric="Evictions",
                dimensions=dimensions,
                comparison="GreaterThanThreshold",
                threshold=0,
                statistic="Sum",
                missing="notBreaching",
            )
            self.alarm(
                f"redis-memory-{node}",
                description=f"Redis node {node}: memory over {REDIS_MEMORY_PERCENT}% used",
                namespace="AWS/ElastiCache",
                metric="DatabaseMemoryUsagePercentage",
                dimensions=dimensions,
                comparison="GreaterThanThreshold",
                threshold=REDIS_MEMORY_PERCENT,
                periods=2,
            )

    def _alb(self, edge: EdgeStack) -> None:
        dimensions = {"LoadBalancer": edge.alb.arn_suffix}
        for ident, metric, who in (
            ("alb-5xx", "HTTPCode_ELB_5XX_Count", "the ALB (no healthy target, or one failed)"),
            ("alb-target-5xx", "HTTPCode_Target_5XX_Count", "the app"),
        ):
            self.alarm(
                ident,
                description=f"More than {HTTP_5XX_PER_5_MIN} 5xx in 5 minutes from {who}",
                namespace="AWS/ApplicationELB",
                metric=metric,
                dimensions=dimensions,
                comparison="GreaterThanThreshold",
                threshold=HTTP_5XX_PER_5_MIN,
                statistic="Sum",
                missing="notBreaching",
            )
        self.alarm(
            "alb-p99-response-time",
            description=f"p99 target response time over {P99_RESPONSE_S} s for 10 minutes",
            namespace="AWS/ApplicationELB",
            metric="TargetResponseTime",
            dimensions=dimensions,
            comparison="GreaterThanThreshold",
            threshold=P99_RESPONSE_S,
            periods=2,
            statistic="p99",
            missing="notBreaching",
        )
