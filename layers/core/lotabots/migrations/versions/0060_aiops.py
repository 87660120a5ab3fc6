"""AIOps: health runs, log clusters, anomalies, forecasts and daily reports.

Revision ID: 0060_aiops
Revises: 0001_core
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0060_aiops"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "aiops_health_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
    )
    op.create_index("ix_aiops_health_runs_at", "aiops_health_runs", ["at"])
    op.create_table(
        "aiops_log_clusters",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("function", sa.String(64), nullable=False),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.UniqueConstraint("function", "template_id", name="uq_aiops_log_clusters_function_template"),
    )
    op.create_index("ix_aiops_log_clusters_function", "aiops_log_clusters", ["function"])
    op.create_index("ix_aiops_log_clusters_level", "aiops_log_clusters", ["level"])
    op.create_index("ix_aiops_log_clusters_last_seen_id", "aiops_log_clusters", ["last_seen", "id"])
    op.create_table(
        "aiops_anomalies",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("series", sa.String(160), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("series", "at", name="uq_aiops_anomalies_series_at"),
    )
    op.create_index("ix_aiops_anomalies_series", "aiops_anomalies", ["series"])
    op.create_index("ix_aiops_anomalies_at_id", "aiops_anomalies", ["at", "id"])
    op.create_table(
        "aiops_forecasts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("horizon_hours", sa.Integer(), nullable=False),
        sa.Column("series", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("chart_key", sa.String(300)),
    )
    op.create_index("ix_aiops_forecasts_created_at", "aiops_forecasts", ["created_at"])
    op.create_table(
        "aiops_reports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("day", sa.String(10), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("report_key", sa.String(300), nullable=False),
        sa.Column("chart_key", sa.String(300)),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("delivery_status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500)),
        sa.Column("delivered_at", _TS),
        sa.Column("slack_file_id", sa.String(64)),
    )
    op.create_index("ix_aiops_reports_delivery_status", "aiops_reports", ["delivery_status"])


def downgrade() -> None:
    for table in (
        "aiops_reports",
        "aiops_forecasts",
        "aiops_anomalies",
        "aiops_log_clusters",
        "aiops_health_runs",
    ):
        op.drop_table(table)
