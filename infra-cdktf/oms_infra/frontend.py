"""The web app at the edge: CloudFront serves the build from the private frontend bucket, and
sends ``/api/*`` and ``/ws/*`` to the ALB, so the browser sees one origin (as with ``oms serve``).

- The bucket stays private: CloudFront reads it through an origin access control (SigV4), and
  the bucket policy lets only this distribution's service principal get objects.
- Static files use the managed CachingOptimized policy, which keeps the Cache-Control the
  upload sets: ``assets/*`` (content-hashed names) ``max-age=31536000, immutable``,
  ``index.html`` ``no-cache`` (the README's ``aws s3 sync`` lines), as ``oms serve`` answers.
- ``/api/*`` and ``/ws/*`` are never cached and carry every viewer header but Host to the ALB
  (Authorization, Idempotency-Key, the WebSocket upgrade), with every method.
- Every answer carries the Content-Security-Policy ``oms serve`` sends (``oms.api.webapp``; a
  test keeps the two equal), HSTS, nosniff, no framing, no referrer.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudfront_distribution import (
    CloudfrontDistribution,
    CloudfrontDistributionDefaultCacheBehavior,
    CloudfrontDistributionOrderedCacheBehavior,
    CloudfrontDistributionOrigin,
    CloudfrontDistributionOriginCustomOriginConfig,
    CloudfrontDistributionRestrictions,
    CloudfrontDistributionRestrictionsGeoRestriction,
    CloudfrontDistributionViewerCertificate,
)
from cdktf_cdktf_provider_aws.cloudfront_origin_access_control import (
    CloudfrontOriginAccessControl,
)
from cdktf_cdktf_provider_aws.cloudfront_response_headers_policy import (
    CloudfrontResponseHeadersPolicy,
    CloudfrontResponseHeadersPolicySecurityHeadersConfig,
    CloudfrontResponseHeadersPolicySecurityHeadersConfigContentSecurityPolicy,
    CloudfrontResponseHeadersPolicySecurityHeadersConfigContentTypeOptions,
    CloudfrontResponseHeadersPolicySecurityHeadersConfigFrameOptions,
    CloudfrontResponseHeadersPolicySecurityHeadersConfigReferrerPolicy,
    CloudfrontResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurity,
)
from cdktf_cdktf_provider_aws.lb import Lb
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from constructs import Construct

from oms_infra.profile import Profile

# The same policy as oms.api.webapp.CONTENT_SECURITY_POLICY (infra does not import the app).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# AWS managed policies (fixed ids, the same in every account).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
BUCKET_ORIGIN = "frontend-bucket"
ALB_ORIGIN = "alb"
API_PATHS = ("/api/*", "/ws/*")
ALL_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
HSTS_MAX_AGE_S = 63_072_000  # two years


def frontend_distribution(
    scope: Construct, profile: Profile, bucket: S3Bucket, alb: Lb
) -> CloudfrontDistribution:
    """The distribution in front of the frontend bucket and the ALB."""
    name = f"{profile.prefix}-frontend"
    access = CloudfrontOriginAccessControl(
        scope,
        "frontend-oac",
        name=name,
        description="CloudFront signs its reads of the frontend bucket",
        origin_access_control_origin_type="s3",
        signing_behavior="always",
        signing_protocol="sigv4",
    )
    headers = CloudfrontResponseHeadersPolicy(
        scope,
        "frontend-headers",
        name=name,
        comment="CSP and security headers of the web app",
        security_headers_config=CloudfrontResponseHeadersPolicySecurityHeadersConfig(
            content_security_policy=(
                CloudfrontResponseHeadersPolicySecurityHeadersConfigContentSecurityPolicy(
                    content_security_policy=CONTENT_SECURITY_POLICY, override=True
                )
            ),
            content_type_options=CloudfrontResponseHeadersPolicySecurityHeadersConfigContentTypeOptions(
                override=True
            ),
            frame_options=CloudfrontResponseHeadersPolicySecurityHeadersConfigFrameOptions(
                frame_option="DENY", override=True
            ),
            referrer_policy=CloudfrontResponseHeadersPolicySecurityHeadersConfigReferrerPolicy(
                referrer_policy="no-referrer", override=True
            ),
            strict_transport_security=CloudfrontResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurity(
                access_control_max_age_sec=HSTS_MAX_AGE_S, include_subdomains=True, override=True
            ),
        ),
    )
    # The ALB answers HTTPS only where it has a certificate (prod); CloudFront follows it.
    alb_protocol = "https-only" if profile.edge.certificate_arn else "http-only"
    api_behaviors = [
        CloudfrontDistributionOrderedCacheBehavior(
            path_pattern=pattern,
            target_origin_id=ALB_ORIGIN,
            allowed_methods=ALL_METHODS,
            cached_methods=["GET", "HEAD"],
            viewer_protocol_policy="https-only",
            cache_policy_id=CACHING_DISABLED,
            origin_request_policy_id=ALL_VIEWER_EXCEPT_HOST_HEADER,
            response_headers_policy_id=headers.id,
            compress=True,
        )
        for pattern in API_PATHS
    ]
    return CloudfrontDistribution(
        scope,
        "frontend-cdn",
        enabled=True,
        comment=f"oms {profile.name}: web app from S3, /api and /ws to the ALB",
        default_root_object="index.html",
        http_version="http2and3",
        price_class="PriceClass_100",
        origin=[
            CloudfrontDistributionOrigin(
                origin_id=BUCKET_ORIGIN,
                domain_name=bucket.bucket_regional_domain_name,
                origin_access_control_id=access.id,
            ),
            CloudfrontDistributionOrigin(
                origin_id=ALB_ORIGIN,
                domain_name=alb.dns_name,
                custom_origin_config=CloudfrontDistributionOriginCustomOriginConfig(
                    http_port=80,
                    https_port=443,
                    origin_protocol_policy=alb_protocol,
                    origin_ssl_protocols=["TLSv1.2"],
                    # a WebSocket stays open; CloudFront's read timeout is per frame, 60 s max
                    origin_read_timeout=60,
                ),
            ),
        ],
        default_cache_behavior=CloudfrontDistributionDefaultCacheBehavior(
            target_origin_id=BUCKET_ORIGIN,
            allowed_methods=["GET", "HEAD"],
            cached_methods=["GET", "HEAD"],
            viewer_protocol_policy="redirect-to-https",
            cache_policy_id=CACHING_OPTIMIZED,
            response_headers_policy_id=headers.id,
            compress=True,
        ),
        ordered_cache_behavior=api_behaviors,
        restrictions=CloudfrontDistributionRestrictions(
            geo_restriction=CloudfrontDistributionRestrictionsGeoRestriction(
                restriction_type="none"
            )
        ),
        viewer_certificate=CloudfrontDistributionViewerCertificate(
            cloudfront_default_certificate=True
        ),
    )
