"""S3: the documents bucket (browser uploads by presigned POST), the GPU artifacts bucket, the
audit anchor bucket (Object Lock) and the bucket their server access logs go to. All SSE-S3,
versioned, TLS-only, public access blocked."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from lotabots.storage_keys import ACCESS_LOG_PREFIXES, JOBS_PARTIAL_PREFIX, QUARANTINE_PREFIX
from lotabots_infra.settings import StageSettings

# Every bucket: SSE-S3, versioned, TLS only, no public access, kept when the stack is deleted.
SECURE_BUCKET: dict[str, Any] = {
    "encryption": s3.BucketEncryption.S3_MANAGED,
    "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
    "enforce_ssl": True,
    "versioned": True,
    "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    "removal_policy": RemovalPolicy.RETAIN,
}


def _version_housekeeping(rule_id: str) -> list[s3.LifecycleRule]:
    """Old versions and delete markers go after 30 days; abandoned multipart uploads after one."""
    return [
        s3.LifecycleRule(
            id=rule_id, noncurrent_version_expiration=Duration.days(30), expired_object_delete_marker=True
        ),
        s3.LifecycleRule(
            id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
        ),
    ]


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            **SECURE_BUCKET,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(365 if settings.production else 90),
                    noncurrent_version_expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        self.documents = s3.Bucket(
            self,
            "Documents",
            **SECURE_BUCKET,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=ACCESS_LOG_PREFIXES["documents"],
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.POST, s3.HttpMethods.GET],
                    allowed_origins=[settings.cors_allow_origin],
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3000,
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-quarantine",
                    prefix=QUARANTINE_PREFIX,
                    expiration=Duration.days(30),
                    noncurrent_version_expiration=Duration.days(1),
                ),
                *_version_housekeeping("expire-deleted-and-replaced-versions"),
            ],
        )
        self.audit_anchors = self._audit_anchor_bucket(settings)
        self.artifacts = s3.Bucket(
            self,
            "Artifacts",
            **SECURE_BUCKET,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=ACCESS_LOG_PREFIXES["artifacts"],
            lifecycle_rules=[
                s3.LifecycleRule(
                    # What a crashed GPU job left before promoting its outputs expires.
                    id="expire-partial-uploads",
                    prefix=JOBS_PARTIAL_PREFIX,
                    expiration=Duration.days(1),
                    noncurrent_version_expiration=Duration.days(1),
                ),
                *_version_housekeeping("expire-replaced-versions"),
            ],
        )

    def _audit_anchor_bucket(self, settings: StageSettings) -> s3.Bucket:
        """The audit chain's anchors: Object Lock in compliance mode, so no principal (root
        included) can delete or overwrite a stored version before its retention ends. Versions
        are never expired: a second version under an anchor's key is evidence, not clutter."""
        if settings.audit_anchor_retention_days < 1:
            raise ValueError("auditAnchorRetentionDays must be at least 1")
        bucket = s3.Bucket(
            self,
            "AuditAnchors",
            **SECURE_BUCKET,
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.compliance(
                Duration.days(settings.audit_anchor_retention_days)
            ),
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=ACCESS_LOG_PREFIXES["audit_anchors"],
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
                )
            ],
        )
        # Create-only, for everyone: a PUT without `If-None-Match: *` (one that could store a second
        # version under an existing anchor's key) is refused before Object Lock is even asked.
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AnchorsAreCreateOnly",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects("*")],
                conditions={"Null": {"s3:if-none-match": "true"}},
            )
        )
        return bucket
