"""Alert delivery never drops: the outbox's retry time and the group's accepted delivery.

- `alert_notifications.next_attempt_at`: when the flush schedule sends an undone notification
  to the notify queue again (after a failed attempt, or when its message never came back).
- `alert_groups.notified_seq`: the seq of the last notification Slack accepted for the group;
  the members' `notified_state` and `last_notified_at` are written when a delivery is accepted.

Notifications that were left undone by the earlier code (a message dead-lettered after five
failed receives, status `failed`) are due at once, so the upgrade delivers what was dropped.

Revision ID: 0040_alerts_delivery
Revises: 0004_alerts
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0040_alerts_delivery"
down_revision: str | Sequence[str] | None = "0004_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDONE = ("enqueued", "sending", "failed", "uncertain")


def upgrade() -> None:
    with op.batch_alter_table("alert_notifications") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_alert_notifications_next_attempt_at", "alert_notifications", ["next_attempt_at"])
    with op.batch_alter_table("alert_groups") as batch:
        batch.add_column(sa.Column("notified_seq", sa.Integer(), nullable=True))

    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # UTCDateTime stores naive UTC on SQLite
    notifications = sa.table(
        "alert_notifications",
        sa.column("status", sa.String()),
        sa.column("next_attempt_at", sa.DateTime(timezone=True)),
    )
    op.execute(notifications.update().where(notifications.c.status.in_(UNDONE)).values(next_attempt_at=now))


def downgrade() -> None:
    with op.batch_alter_table("alert_groups") as batch:
        batch.drop_column("notified_seq")
    op.drop_index("ix_alert_notifications_next_attempt_at", table_name="alert_notifications")
    with op.batch_alter_table("alert_notifications") as batch:
        batch.drop_column("next_attempt_at")
