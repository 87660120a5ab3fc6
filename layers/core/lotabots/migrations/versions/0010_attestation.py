"""Attestation: attestations, policies, GPU pools, attested models; jobs get an optional pool.

Revision ID: 0010_attestation
Revises: 0005_jobs
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_attestation"
down_revision: str | Sequence[str] | None = "0005_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "attestations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ear_status", sa.String(16)),
        sa.Column("assurance", sa.String(24)),
        sa.Column("policy_name", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("policy_document", sa.JSON(), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("nonce_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("nonce_used_at", sa.DateTime(timezone=True)),
        sa.Column("job_id", sa.String(32)),
        sa.Column("claims", sa.JSON()),
        sa.Column("facts", sa.JSON()),
        sa.Column("evidence_uri", sa.String(1024)),
        sa.Column("evidence_sha256", sa.String(64)),
        sa.Column("evidence_bytes", sa.Integer()),
        sa.Column("token", sa.Text()),
        sa.Column("token_kid", sa.String(64)),
        sa.Column("requested_by", sa.String(64)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_attestations"),
        sa.UniqueConstraint("nonce", name="uq_attestations_nonce"),
    )
    op.create_index("ix_attestations_type", "attestations", ["type"])
    op.create_index("ix_attestations_subject", "attestations", ["subject"])
    op.create_index("ix_attestations_status", "attestations", ["status"])
    op.create_index("ix_attestations_job_id", "attestations", ["job_id"])
    op.create_index("ix_attestations_created_at", "attestations", ["created_at"])

    op.create_table(
        "attestation_policies",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(64)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("name", name="pk_attestation_policies"),
    )

    op.create_table(
        "gpu_pools",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("gpu_type", sa.String(32)),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("reattest_every_s", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("trust_state", sa.String(16), nullable=False),
        sa.Column("trust_reason", sa.Text()),
        sa.Column("known_gpu_uuids", sa.JSON(), nullable=False),
        sa.Column("last_attestation_id", sa.String(32)),
        sa.Column("last_verdict", sa.JSON()),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("updated_by", sa.String(64)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("name", name="pk_gpu_pools"),
    )

    op.create_table(
        "attested_models",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("artifact_uri", sa.String(1024), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("golden_inputs", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("baseline_files", sa.JSON()),
        sa.Column("baseline_digest", sa.String(64)),
        sa.Column("signature", sa.Text()),
        sa.Column("signing_public_key", sa.Text()),
        sa.Column("reference_outputs", sa.JSON()),
        sa.Column("reference_precision", sa.String(8)),
        sa.Column("last_attestation_id", sa.String(32)),
        sa.Column("last_passed_attestation_id", sa.String(32)),
        sa.Column("registered_by", sa.String(64)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_attested_models"),
        sa.UniqueConstraint("name", "version", name="uq_attested_models_name_version"),
    )
    op.create_index("ix_attested_models_name", "attested_models", ["name"])

    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("pool", sa.String(64)))
        batch.create_index("ix_jobs_pool", ["pool"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_pool")
        batch.drop_column("pool")
    op.drop_table("attested_models")
    op.drop_table("gpu_pools")
    op.drop_table("attestation_policies")
    op.drop_table("attestations")
