"""Edge: the public ALB in front of the app, and the S3 bucket of the static frontend.

The ALB forwards to the app's NodePort on every node of the node group (instance targets: the
group's Auto Scaling group is attached to the target group), and checks ``/health`` there. With
``edge.certificate_arn`` set it serves HTTPS (TLS 1.2+) and redirects HTTP; without, HTTP only.
The bucket is private, versioned, encrypted with the ``s3`` key, and refuses plain HTTP.
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.autoscaling_attachment import AutoscalingAttachment
from cdktf_cdktf_provider_aws.lb import Lb
from cdktf_cdktf_provider_aws.lb_listener import (
    LbListener,
    LbListenerDefaultAction,
    LbListenerDefaultActionRedirect,
)
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from constructs import Construct

from oms_infra.base import OmsStack
from oms_infra.profile import Profile
from oms_infra.stacks.eks import EksStack
from oms_infra.stacks.kms import KmsStack
from oms_infra.stacks.network import NetworkStack

HEALTH_PATH = "/health"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


class EdgeStack(OmsStack):
    """ALB, target group, listeners; the frontend bucket."""

    def __init__(
        self,
        scope: Construct,
        profile: Profile,
        network: NetworkStack,
        eks: EksStack,
        kms: KmsStack,
    ) -> None:
        super().__init__(scope, profile, "edge")
        name = profile.prefix
        protected = profile.operations.deletion_protection
        self.alb = Lb(
            self,
            "alb",
            name=f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            security_groups=[network.security_groups["alb"].id],
            subnets=[s.id for s in network.public_subnets],
            drop_invalid_header_fields=True,
            enable_deletion_protection=protected,
        )
        self.target_group = LbTargetGroup(
            self,
            "app",
            name=f"{name}-app",
            port=profile.app.node_port,
            protocol="HTTP",
            target_type="instance",
            vpc_id=network.vpc.id,
            deregistration_delay="30",
            health_check=LbTargetGroupHealthCheck(
                path=HEALTH_PATH,
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
        )
        AutoscalingAttachment(
            self,
            "nodes",
            autoscaling_group_name=eks.node_asg_name,
            lb_target_group_arn=self.target_group.arn,
        )
        forward = LbListenerDefaultAction(type="forward", target_group_arn=self.target_group.arn)
        certificate = profile.edge.certificate_arn
        if certificate:
            LbListener(
                self,
                "https",
                load_balancer_arn=self.alb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=TLS_POLICY,
                certificate_arn=certificate,
                default_action=[forward],
            )
            http_action = LbListenerDefaultAction(
                type="redirect",
                redirect=LbListenerDefaultActionRedirect(
                    port="443", protocol="HTTPS", status_code="HTTP_301"
                ),
            )
        else:
            http_action = forward
        LbListener(
            self,
            "http",
            load_balancer_arn=self.alb.arn,
            port=80,
            protocol="HTTP",
            default_action=[http_action],
        )
        self._frontend_bucket(profile, kms)

    def _frontend_bucket(self, profile: Profile, kms: KmsStack) -> None:
        bucket = S3Bucket(
            self,
            "frontend",
            bucket_prefix=f"{profile.prefix}-frontend-",
            force_destroy=not profile.operations.deletion_protection,
        )
        S3BucketPublicAccessBlock(
            self,
            "frontend-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketOwnershipControls(
            self,
            "frontend-ownership",
            bucket=bucket.id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        S3BucketVersioningA(
            self,
            "frontend-versioning",
            bucket=bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "frontend-encryption",
            bucket=bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=kms.keys["s3"].arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
        )
        S3BucketPolicy(
            self,
            "frontend-tls-only",
            bucket=bucket.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "RefusePlainHttp",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket.arn, f"{bucket.arn}/*"],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            ),
        )
