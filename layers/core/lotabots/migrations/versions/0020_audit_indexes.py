"""Audit log search: indexes for the `GET /audit` filters (actor, target type, time range).

Revision ID: 0020_audit_indexes
Revises: 0001_core
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020_audit_indexes"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor_id"])
    op.create_index("ix_audit_log_target_type", "audit_log", ["target_type"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_target_type", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_id", table_name="audit_log")
