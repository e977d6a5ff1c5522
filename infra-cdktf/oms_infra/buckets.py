"""What every bucket of ours gets: no public access, and objects owned by the bucket's account."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from constructs import Construct


def lock_down_bucket(scope: Construct, prefix: str, bucket_id: str) -> None:
    """Block every form of public access to ``bucket_id`` and disable ACLs (the bucket's owner
    owns every object). Construct ids are ``{prefix}public-access`` and ``{prefix}ownership``."""
    S3BucketPublicAccessBlock(
        scope,
        f"{prefix}public-access",
        bucket=bucket_id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    S3BucketOwnershipControls(
        scope,
        f"{prefix}ownership",
        bucket=bucket_id,
        rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
    )
