"""KMS: one customer-managed key per purpose, each rotated yearly.

One key per data owner keeps the blast radius of a key policy or a disabled key small, and lets
CloudTrail say which store a decrypt was for. Every key lets the account's IAM policies grant its
use (the usual root statement); three keys also need a service principal: CloudWatch Logs for
``logs``, CloudWatch for ``alerts`` (an alarm publishes to the encrypted SNS topic as the
CloudWatch service), and EC2 on behalf of the account (the Auto Scaling role of the node group,
the NAT instance) for ``ebs`` — the same condition AWS's own aws/ebs key uses.
"""

from __future__ import annotations

import json
from typing import Any

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from oms_infra.base import OmsStack
from oms_infra.profile import Profile

KEY_PURPOSES = {
    "eks": "EKS secrets envelope encryption and the image repository",
    "ebs": "EBS volumes of the nodes and the NAT instance",
    "kafka": "Kafka data at rest (MSK, or the volumes of the self-hosted brokers)",
    "redis": "ElastiCache Redis data at rest and its auth token secret",
    "documentdb": "DocumentDB storage, snapshots and its credentials secret",
    "s3": "the static frontend bucket",
    "logs": "CloudWatch log groups",
    "alerts": "the SNS topic CloudWatch alarms publish to",
}

_USE_KEY = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]


class KmsStack(OmsStack):
    """The environment's KMS keys, by purpose (``keys["documentdb"].arn``)."""

    def __init__(self, scope: Construct, profile: Profile) -> None:
        super().__init__(scope, profile, "kms")
        self._account = DataAwsCallerIdentity(self, "account").account_id
        self._partition = DataAwsPartition(self, "partition").partition
        self.keys: dict[str, KmsKey] = {}
        for purpose, description in KEY_PURPOSES.items():
            key = KmsKey(
                self,
                f"{purpose}-key",
                description=f"{profile.prefix}: {description}",
                enable_key_rotation=True,
                deletion_window_in_days=profile.operations.kms_deletion_window_days,
                policy=json.dumps(self._policy(purpose)),
            )
            KmsAlias(
                self,
                f"{purpose}-alias",
                name=f"alias/{profile.prefix}-{purpose}",
                target_key_id=key.key_id,
            )
            self.keys[purpose] = key

    def _policy(self, purpose: str) -> dict[str, Any]:
        account, partition, region = self._account, self._partition, self.profile.region
        statements: list[dict[str, Any]] = [
            {
                "Sid": "AccountIamPoliciesGrantUse",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
        if purpose == "logs":
            statements.append(
                {
                    "Sid": "CloudWatchLogsOfThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                    "Action": _USE_KEY,
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": (
                                f"arn:{partition}:logs:{region}:{account}:log-group:*"
                            )
                        }
                    },
                }
            )
        if purpose == "alerts":
            statements.append(
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                }
            )
        if purpose == "s3":
            # The frontend bucket's objects are encrypted with this key: CloudFront's origin
            # access control decrypts them for this account's distributions only.
            statements.append(
                {
                    "Sid": "CloudFrontReadsTheFrontend",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudfront.amazonaws.com"},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {
                        "StringLike": {
                            "AWS:SourceArn": f"arn:{partition}:cloudfront::{account}:distribution/*"
                        }
                    },
                }
            )
        if purpose == "ebs":
            via_ec2 = {
                "kms:CallerAccount": account,
                "kms:ViaService": f"ec2.{region}.amazonaws.com",
            }
            statements += [
                {
                    "Sid": "EbsThroughEc2ForThisAccount",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": _USE_KEY,
                    "Resource": "*",
                    "Condition": {"StringEquals": via_ec2},
                },
                {
                    "Sid": "EbsGrantsForAttachedVolumes",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "kms:CreateGrant",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": via_ec2,
                        "Bool": {"kms:GrantIsForAWSResource": "true"},
                    },
                },
            ]
        return {"Version": "2012-10-17", "Statement": statements}
