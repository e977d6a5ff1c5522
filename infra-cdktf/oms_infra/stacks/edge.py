"""Edge: the public ALB in front of the app, its web application firewall, and the S3 bucket
of the static frontend.

The ALB forwards to the app's NodePort on every node of the node group (instance targets: the
group's Auto Scaling group is attached to the target group), and checks ``/health`` there. With
``edge.certificate_arn`` set it serves HTTPS (TLS 1.2+) and redirects HTTP; without, HTTP only,
which an environment with ``edge.https_only`` (prod) refuses at load. ``/metrics`` is not served
to the internet (Prometheus scrapes it inside the cluster). Access logs go to the logs bucket.

A WAF web ACL sits in front: a rate-based rule blocks an address sending more than
``edge.waf_requests_per_minute_per_ip`` requests a minute (answering 429), and two AWS managed
rule groups drop addresses with a bad reputation and known exploit patterns. It is the coarse,
per-address flood guard; per-key limits are the app's.
The bucket is private, versioned, encrypted with the ``s3`` key, and refuses plain HTTP; a
CloudFront distribution serves the web app from it and routes ``/api`` and ``/ws`` to the ALB
(``oms_infra.frontend``), and only that distribution may read it.
"""

from __future__ import annotations

import json
from typing import Any

from cdktf_cdktf_provider_aws.autoscaling_attachment import AutoscalingAttachment
from cdktf_cdktf_provider_aws.lb import Lb, LbAccessLogs
from cdktf_cdktf_provider_aws.lb_listener import (
    LbListener,
    LbListenerDefaultAction,
    LbListenerDefaultActionRedirect,
)
from cdktf_cdktf_provider_aws.lb_listener_rule import (
    LbListenerRule,
    LbListenerRuleAction,
    LbListenerRuleActionFixedResponse,
    LbListenerRuleCondition,
    LbListenerRuleConditionPathPattern,
)
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclVisibilityConfig,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from constructs import Construct

from oms_infra.base import OmsStack
from oms_infra.buckets import lock_down_bucket
from oms_infra.frontend import frontend_distribution
from oms_infra.profile import Profile
from oms_infra.stacks.eks import EksStack
from oms_infra.stacks.kms import KmsStack
from oms_infra.stacks.logs import ALB_PREFIX, LogsStack
from oms_infra.stacks.network import NetworkStack

HEALTH_PATH = "/health"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
INTERNAL_PATHS = ["/metrics", "/metrics/*"]  # answered 404 at the ALB: Prometheus scrapes inside
WAF_WINDOW_S = 60
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesKnownBadInputsRuleSet",
)


def waf_rules(profile: Profile) -> list[dict[str, Any]]:
    """The web ACL's rules, in the WAF API's JSON: the rate limit first, then managed groups."""

    def visibility(name: str) -> dict[str, Any]:
        return {
            "SampledRequestsEnabled": True,
            "CloudWatchMetricsEnabled": True,
            "MetricName": name,
        }

    rules: list[dict[str, Any]] = [
        {
            "Name": "rate-per-ip",
            "Priority": 0,
            "Action": {"Block": {"CustomResponse": {"ResponseCode": 429}}},
            "Statement": {
                "RateBasedStatement": {
                    "Limit": profile.edge.waf_requests_per_minute_per_ip,
                    "EvaluationWindowSec": WAF_WINDOW_S,
                    "AggregateKeyType": "IP",
                }
            },
            "VisibilityConfig": visibility("rate-per-ip"),
        }
    ]
    for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
        rules.append(
            {
                "Name": group,
                "Priority": priority,
                "OverrideAction": {"None": {}},
                "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}},
                "VisibilityConfig": visibility(group),
            }
        )
    return rules


class EdgeStack(OmsStack):
    """ALB, target group, listeners; the frontend bucket."""

    def __init__(
        self,
        scope: Construct,
        profile: Profile,
        network: NetworkStack,
        eks: EksStack,
        kms: KmsStack,
        *,
        logs: LogsStack,
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
            access_logs=LbAccessLogs(bucket=logs.bucket.id, prefix=ALB_PREFIX, enabled=True),
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
            serving = LbListener(
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
        http = LbListener(
            self,
            "http",
            load_balancer_arn=self.alb.arn,
            port=80,
            protocol="HTTP",
            default_action=[http_action],
        )
        LbListenerRule(
            self,
            "internal-paths",
            listener_arn=(serving if certificate else http).arn,
            priority=10,
            condition=[
                LbListenerRuleCondition(
                    path_pattern=LbListenerRuleConditionPathPattern(values=INTERNAL_PATHS)
                )
            ],
            action=[
                LbListenerRuleAction(
                    type="fixed-response",
                    fixed_response=LbListenerRuleActionFixedResponse(
                        content_type="text/plain", status_code="404", message_body="not found"
                    ),
                )
            ],
        )
        self._firewall(profile)
        bucket = self._frontend_bucket(profile, kms)
        self.distribution = frontend_distribution(self, profile, bucket, self.alb)
        self._frontend_policy(bucket, self.distribution.arn)

    def _firewall(self, profile: Profile) -> None:
        """The WAF web ACL (rate limit, managed rules) and its association with the ALB."""
        name = f"{profile.prefix}-edge"
        self.web_acl = Wafv2WebAcl(
            self,
            "waf",
            name=name,
            scope="REGIONAL",
            description=f"oms {profile.name}: rate limit per address, managed rules",
            default_action=Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow()),
            visibility_config=Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            ),
            rule_json=json.dumps(waf_rules(profile)),
        )
        Wafv2WebAclAssociation(
            self, "waf-alb", resource_arn=self.alb.arn, web_acl_arn=self.web_acl.arn
        )

    def _frontend_bucket(self, profile: Profile, kms: KmsStack) -> S3Bucket:
        bucket = S3Bucket(
            self,
            "frontend",
            bucket_prefix=f"{profile.prefix}-frontend-",
            force_destroy=not profile.operations.deletion_protection,
        )
        lock_down_bucket(self, "frontend-", bucket.id)
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
        return bucket

    def _frontend_policy(self, bucket: S3Bucket, distribution_arn: str) -> None:
        """Plain HTTP refused; objects readable by the one CloudFront distribution only."""
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
                        },
                        {
                            "Sid": "CloudFrontReadsTheWebApp",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudfront.amazonaws.com"},
                            "Action": "s3:GetObject",
                            "Resource": f"{bucket.arn}/*",
                            "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
                        },
                    ],
                }
            ),
        )
