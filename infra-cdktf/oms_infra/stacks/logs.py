"""Logs of the network and the edge: VPC flow logs and ALB access logs, in one S3 bucket.

Who talked to whom (flow logs of the whole VPC, accepted and rejected) and every request the ALB
answered (access logs) land under ``vpc-flow-logs/`` and ``alb/`` of a private bucket, kept
``operations.log_retention_days`` days and then deleted by a lifecycle rule. The bucket uses
S3-managed encryption (SSE-S3): ALB access logs cannot be written to a bucket encrypted with a
KMS key. It refuses plain HTTP, and only the two log services may write, each under its prefix.
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_elb_service_account import DataAwsElbServiceAccount
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from constructs import Construct

from oms_infra.base import OmsStack
from oms_infra.buckets import lock_down_bucket
from oms_infra.profile import Profile
from oms_infra.stacks.network import NetworkStack

ALB_PREFIX = "alb"
FLOW_LOGS_PREFIX = "vpc-flow-logs"
FLOW_LOGS_SERVICE = "delivery.logs.amazonaws.com"
ALB_LOGS_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


class LogsStack(OmsStack):
    """The log bucket and the VPC's flow log."""

    def __init__(self, scope: Construct, profile: Profile, network: NetworkStack) -> None:
        super().__init__(scope, profile, "logs")
        account = DataAwsCallerIdentity(self, "account").account_id
        partition = DataAwsPartition(self, "partition").partition
        self.bucket = S3Bucket(
            self,
            "bucket",
            bucket_prefix=f"{profile.prefix}-logs-",
            force_destroy=not profile.operations.deletion_protection,
        )
        bucket = self.bucket
        lock_down_bucket(self, "", bucket.id)
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="AES256"
                    )
                )
            ],
        )
        S3BucketLifecycleConfiguration(
            self,
            "retention",
            bucket=bucket.id,
            rule=[
                S3BucketLifecycleConfigurationRule(
                    id="expire-logs",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    expiration=[
                        S3BucketLifecycleConfigurationRuleExpiration(
                            days=profile.operations.log_retention_days
                        )
                    ],
                    abort_incomplete_multipart_upload=[
                        S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                            days_after_initiation=1
                        )
                    ],
                )
            ],
        )
        elb_account = DataAwsElbServiceAccount(self, "elb-account").arn
        source = {"aws:SourceAccount": account}
        statements = [
            {
                "Sid": "RefusePlainHttp",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket.arn, f"{bucket.arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                # the regional ELB account (older regions) or the service (newer ones)
                "Sid": "AlbAccessLogs",
                "Effect": "Allow",
                "Principal": {"AWS": elb_account, "Service": ALB_LOGS_SERVICE},
                "Action": "s3:PutObject",
                "Resource": f"{bucket.arn}/{ALB_PREFIX}/AWSLogs/{account}/*",
            },
            {
                "Sid": "FlowLogsWrite",
                "Effect": "Allow",
                "Principal": {"Service": FLOW_LOGS_SERVICE},
                "Action": "s3:PutObject",
                "Resource": f"{bucket.arn}/{FLOW_LOGS_PREFIX}/AWSLogs/{account}/*",
                "Condition": {
                    "StringEquals": {**source, "s3:x-amz-acl": "bucket-owner-full-control"},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{partition}:logs:{profile.region}:{account}:*"
                    },
                },
            },
            {
                "Sid": "FlowLogsCheckBucket",
                "Effect": "Allow",
                "Principal": {"Service": FLOW_LOGS_SERVICE},
                "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
                "Resource": bucket.arn,
                "Condition": {"StringEquals": source},
            },
        ]
        self.policy = S3BucketPolicy(
            self,
            "policy",
            bucket=bucket.id,
            policy=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
        FlowLog(
            self,
            "vpc-flow-log",
            vpc_id=network.vpc.id,
            traffic_type="ALL",
            log_destination_type="s3",
            log_destination=f"{bucket.arn}/{FLOW_LOGS_PREFIX}/",
            max_aggregation_interval=600,
            tags={"Name": f"{profile.prefix}-vpc"},
            depends_on=[self.policy],
        )
