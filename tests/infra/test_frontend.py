"""The web app at the edge (issue 18): CloudFront serves the build from the private frontend
bucket and routes ``/api`` and ``/ws`` to the ALB, with the Content-Security-Policy of ``oms
serve``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from oms_infra.frontend import CACHING_DISABLED, CONTENT_SECURITY_POLICY

from oms.api.webapp import CONTENT_SECURITY_POLICY as SERVED_POLICY
from tests.infra.synthesis import Synth

pytestmark = pytest.mark.infra


def _distribution(env: Synth) -> dict[str, Any]:
    return env.resource("edge", "aws_cloudfront_distribution", "frontend-cdn")


def test_distribution_when_synthesized_then_serves_the_bucket_through_access_control(
    env: Synth,
) -> None:
    distribution = _distribution(env)
    origins = {o["origin_id"]: o for o in distribution["origin"]}
    default = distribution["default_cache_behavior"]

    assert distribution["default_root_object"] == "index.html"
    assert default["target_origin_id"] == "frontend-bucket"
    assert default["viewer_protocol_policy"] == "redirect-to-https"
    assert origins["frontend-bucket"]["domain_name"] == (
        "${aws_s3_bucket.frontend.bucket_regional_domain_name}"
    )
    assert origins["frontend-bucket"]["origin_access_control_id"] == (
        "${aws_cloudfront_origin_access_control.frontend-oac.id}"
    )
    oac = env.resource("edge", "aws_cloudfront_origin_access_control", "frontend-oac")
    assert (oac["signing_behavior"], oac["signing_protocol"]) == ("always", "sigv4")


def test_distribution_when_synthesized_then_api_and_ws_go_uncached_to_the_alb(env: Synth) -> None:
    distribution = _distribution(env)
    behaviors = {b["path_pattern"]: b for b in distribution["ordered_cache_behavior"]}
    alb = next(o for o in distribution["origin"] if o["origin_id"] == "alb")

    assert set(behaviors) == {"/api/*", "/ws/*"}
    for behavior in behaviors.values():
        assert behavior["target_origin_id"] == "alb"
        assert behavior["cache_policy_id"] == CACHING_DISABLED
        assert {"POST", "PATCH", "DELETE", "PUT"} <= set(behavior["allowed_methods"])
        assert behavior["viewer_protocol_policy"] == "https-only"
    assert alb["domain_name"] == "${aws_lb.alb.dns_name}"
    expected = "https-only" if env.profile.edge.certificate_arn else "http-only"
    assert alb["custom_origin_config"]["origin_protocol_policy"] == expected


def test_frontend_bucket_when_synthesized_then_only_this_distribution_reads_it(env: Synth) -> None:
    (policy,) = env.resources("edge", "aws_s3_bucket_policy").values()
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}

    read = statements["CloudFrontReadsTheWebApp"]

    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Action"] == "s3:GetObject"
    assert read["Condition"] == {
        "StringEquals": {"AWS:SourceArn": "${aws_cloudfront_distribution.frontend-cdn.arn}"}
    }


def test_edge_headers_when_synthesized_then_the_csp_is_the_one_oms_serve_sends(env: Synth) -> None:
    headers = env.resource("edge", "aws_cloudfront_response_headers_policy", "frontend-headers")
    security = headers["security_headers_config"]

    assert CONTENT_SECURITY_POLICY == SERVED_POLICY
    assert security["content_security_policy"]["content_security_policy"] == SERVED_POLICY
    assert security["frame_options"]["frame_option"] == "DENY"
    assert security["strict_transport_security"]["access_control_max_age_sec"] > 0
