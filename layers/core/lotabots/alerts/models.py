"""Alerting tables.

- `alerts`: one row per fingerprint (the hash of the label set); a resolved alert that fires
  again reuses its row as a new instance.
- `alert_groups`: one aggregation group per (route, group label values) with its timer
  (`next_flush_at`, NULL while the group is empty) and a `version` that the flush bumps with a
  conditional UPDATE, so two overlapping flush runs never both claim the same tick.
- `alert_group_members`: which alerts are in which group and what the last notification said
  about each (Alertmanager's notification log, per alert).
- `alert_notifications`: the outbox: one row per group per flush that needs a message, with a
  deterministic id; `alert_notification_items` ties it to the alerts it covers.
- `alert_deliveries`: every delivery attempt (Slack post/update, or `logged` without a token).
- `alert_silences`: matchers with a time window.

Foreign keys stay inside this domain; users are referenced by id only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lotabots.db.base import Base, new_id, utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite keeps no offset, so values are stored as naive UTC and given back their UTC tzinfo
    on the way out; comparisons in SQL stay correct because every stored value is UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_starts_at_id", "starts_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False)
    annotations: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    severity: Mapped[str | None] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(32), nullable=False, default="api")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # NULL: firing until something resolves it; in the past: resolved; in the future: firing
    # until then unless the source sends it again (Alertmanager's resolve_timeout).
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Source time of the last update applied: an older event arriving late is ignored.
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    def is_firing(self, now: datetime) -> bool:
        return self.ends_at is None or self.ends_at > now


class AlertGroup(Base):
    __tablename__ = "alert_groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    group_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    route_id: Mapped[str] = mapped_column(String(200), nullable=False)
    group_labels: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False)
    next_flush_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    has_flushed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # When Slack last accepted a message of this group, and that notification's seq: the
    # group's "notified" state only ever reflects accepted deliveries (Alertmanager's nflog).
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notified_seq: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class AlertGroupMember(Base):
    __tablename__ = "alert_group_members"

    group_id: Mapped[str] = mapped_column(String(32), ForeignKey("alert_groups.id"), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(32), ForeignKey("alerts.id"), primary_key=True, index=True)
    # What the last notification of this group said about the alert: firing, resolved or NULL.
    notified_state: Mapped[str | None] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class AlertNotification(Base):
    __tablename__ = "alert_notifications"
    __table_args__ = (
        Index("ix_alert_notifications_group_id_seq", "group_id", "seq"),
        Index("ix_alert_notifications_status_created_at", "status", "created_at"),
        Index("ix_alert_notifications_next_attempt_at", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(32), ForeignKey("alert_groups.id"), nullable=False)
    group_key: Mapped[str] = mapped_column(String(64), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # firing | resolved
    receiver: Mapped[str] = mapped_column(String(100), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    # pending → enqueued → sending → delivered | logged | recovered; failed | uncertain →
    # sending (retry); pending | enqueued | failed → superseded (a newer snapshot replaced it)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sending_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Until it is done, when the outbox sends it to the notify queue again (a retry after a
    # failure, or a message that never came back); NULL once done.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slack_channel: Mapped[str | None] = mapped_column(String(64))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class AlertNotificationItem(Base):
    __tablename__ = "alert_notification_items"

    notification_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("alert_notifications.id"), primary_key=True
    )
    alert_id: Mapped[str] = mapped_column(String(32), ForeignKey("alerts.id"), primary_key=True, index=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # firing | resolved


class AlertDelivery(Base):
    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("notification_id", "attempt"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    notification_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("alert_notifications.id"), nullable=False, index=True
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    # delivered | logged | failed | recovered | superseded
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    method: Mapped[str] = mapped_column(String(32), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(1000))
    http_status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class Silence(Base):
    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    comment: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    expired_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
