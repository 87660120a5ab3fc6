"""Alerting: alerts, groups and their members, notifications (outbox), deliveries, silences.

Revision ID: 0004_alerts
Revises: 0001_core
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_alerts"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("alerts",)
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(64)),
        sa.Column("source", sa.String(32), nullable=False),
        _ts("starts_at", nullable=False),
        _ts("ends_at"),
        _ts("last_event_at", nullable=False),
        _ts("acknowledged_at"),
        sa.Column("acknowledged_by", sa.String(64)),
        sa.Column("resolved_by", sa.String(64)),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("fingerprint", name="uq_alerts_fingerprint"),
    )
    op.create_index("ix_alerts_severity", "alerts", ["severity"])
    op.create_index("ix_alerts_ends_at", "alerts", ["ends_at"])
    op.create_index("ix_alerts_starts_at_id", "alerts", ["starts_at", "id"])

    op.create_table(
        "alert_groups",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("group_key", sa.String(64), nullable=False),
        sa.Column("route_id", sa.String(200), nullable=False),
        sa.Column("group_labels", sa.JSON(), nullable=False),
        _ts("next_flush_at"),
        sa.Column("has_flushed", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("last_notified_at"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_groups"),
        sa.UniqueConstraint("group_key", name="uq_alert_groups_group_key"),
    )
    op.create_index("ix_alert_groups_next_flush_at", "alert_groups", ["next_flush_at"])

    op.create_table(
        "alert_group_members",
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("notified_state", sa.String(16)),
        _ts("added_at", nullable=False),
        sa.PrimaryKeyConstraint("group_id", "alert_id", name="pk_alert_group_members"),
        sa.ForeignKeyConstraint(
            ["group_id"], ["alert_groups.id"], name="fk_alert_group_members_group_id_alert_groups"
        ),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_alert_group_members_alert_id_alerts"),
    )
    op.create_index("ix_alert_group_members_alert_id", "alert_group_members", ["alert_id"])

    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("group_key", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("receiver", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("sending_since"),
        _ts("enqueued_at"),
        _ts("delivered_at"),
        sa.Column("slack_channel", sa.String(64)),
        sa.Column("slack_ts", sa.String(32)),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_notifications"),
        sa.ForeignKeyConstraint(
            ["group_id"], ["alert_groups.id"], name="fk_alert_notifications_group_id_alert_groups"
        ),
    )
    op.create_index("ix_alert_notifications_group_id_seq", "alert_notifications", ["group_id", "seq"])
    op.create_index(
        "ix_alert_notifications_status_created_at", "alert_notifications", ["status", "created_at"]
    )

    op.create_table(
        "alert_notification_items",
        sa.Column("notification_id", sa.String(32), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("notification_id", "alert_id", name="pk_alert_notification_items"),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["alert_notifications.id"],
            name="fk_alert_notification_items_notification_id_alert_notifications",
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_alert_notification_items_alert_id_alerts"
        ),
    )
    op.create_index("ix_alert_notification_items_alert_id", "alert_notification_items", ["alert_id"])

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("notification_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("slack_ts", sa.String(32)),
        sa.Column("error", sa.String(1000)),
        sa.Column("http_status", sa.Integer()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        _ts("at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
        sa.UniqueConstraint("notification_id", "attempt", name="uq_alert_deliveries_notification_id"),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["alert_notifications.id"],
            name="fk_alert_deliveries_notification_id_alert_notifications",
        ),
    )
    op.create_index("ix_alert_deliveries_notification_id", "alert_deliveries", ["notification_id"])

    op.create_table(
        "alert_silences",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        _ts("starts_at", nullable=False),
        _ts("ends_at", nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("expired_by", sa.String(64)),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_silences"),
    )
    op.create_index("ix_alert_silences_ends_at", "alert_silences", ["ends_at"])


def downgrade() -> None:
    for table in (
        "alert_silences",
        "alert_deliveries",
        "alert_notification_items",
        "alert_notifications",
        "alert_group_members",
        "alert_groups",
        "alerts",
    ):
        op.drop_table(table)
