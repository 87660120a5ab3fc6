"""Database access for alerting: bulk statements, conditional updates, no business rules.

Ingest works in sets (one SELECT per 1,000 fingerprints, executemany INSERT/UPDATE), so a
flood of 10,000 alerts costs a handful of round trips. Group timers are claimed with a
conditional UPDATE on `version`, which is what keeps two overlapping flush runs from both
notifying.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from lotabots.alerts.models import (
    Alert,
    AlertDelivery,
    AlertGroup,
    AlertGroupMember,
    AlertNotification,
    AlertNotificationItem,
    Silence,
    UTCDateTime,
)
from lotabots.db.base import new_id

CHUNK = 1000
T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def _insert_ignoring_conflicts(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on PostgreSQL and SQLite."""
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    dialect_insert: Any = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    statement = dialect_insert(model.__table__).on_conflict_do_nothing()
    for part in chunks(rows):
        session.execute(statement, list(part))


def write_transaction(session: Session) -> None:
    """Make the current transaction a writer before it reads (SQLite's BEGIN IMMEDIATE).

    A SQLite transaction that has read cannot become a writer once another connection has
    committed ("database is locked" at once, busy_timeout does not apply). Writing first makes
    concurrent local writers queue on the lock instead. PostgreSQL needs nothing.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(AlertGroup).where(AlertGroup.id.is_(None)).values(version=AlertGroup.version))


# --- alerts -------------------------------------------------------------------------------


def alerts_by_fingerprint(session: Session, fingerprints: Sequence[str]) -> dict[str, Any]:
    """fingerprint → row with id, starts_at, ends_at, last_event_at (what a merge needs)."""
    found: dict[str, Any] = {}
    columns = (Alert.id, Alert.fingerprint, Alert.starts_at, Alert.ends_at, Alert.last_event_at)
    for part in chunks(fingerprints):
        for row in session.execute(select(*columns).where(Alert.fingerprint.in_(part))):
            found[row.fingerprint] = row
    return found


def insert_alerts(session: Session, rows: list[dict[str, Any]]) -> None:
    # Core executemany: the ORM's bulk path costs more than the database for 10,000 rows.
    for part in chunks(rows):
        session.execute(insert(_table(Alert)), list(part))


def update_alerts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk UPDATE by primary key; each dict carries `id` and the columns to set."""
    table = _table(Alert)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(row)
    for columns, group in by_columns.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns})
        )
        params = [{**{k: v for k, v in row.items() if k != "id"}, "_id": row["id"]} for row in group]
        for part in chunks(params):
            session.execute(statement, list(part))


def get_alert(session: Session, alert_id: str) -> Alert | None:
    alert = session.get(Alert, alert_id)
    if alert is None and len(alert_id) == 64:
        alert = session.scalars(select(Alert).where(Alert.fingerprint == alert_id)).first()
    return alert


def _active_clause(now: datetime) -> Any:
    return or_(Alert.ends_at.is_(None), Alert.ends_at > now)


def active_alerts(session: Session, now: datetime) -> list[Alert]:
    return list(
        session.scalars(select(Alert).where(_active_clause(now)).order_by(Alert.starts_at.desc(), Alert.id))
    )


def firing_labels(
    session: Session, now: datetime, severities: frozenset[str] | None = None
) -> list[tuple[str, dict[str, str]]]:
    """(fingerprint, labels) of firing alerts, only those of `severities` when given."""
    query = select(Alert.fingerprint, Alert.labels).where(_active_clause(now))
    if severities is not None:
        query = query.where(Alert.severity.in_(sorted(severities)))
    return [(fp, labels) for fp, labels in session.execute(query)]


def resolved_alerts(
    session: Session, now: datetime, *, severity: str | None, limit: int, offset: int
) -> tuple[list[Alert], int]:
    where = [Alert.ends_at.is_not(None), Alert.ends_at <= now]
    if severity:
        where.append(Alert.severity == severity)
    total = session.scalar(select(func.count()).select_from(Alert).where(*where)) or 0
    rows = session.scalars(
        select(Alert).where(*where).order_by(Alert.ends_at.desc(), Alert.id).limit(limit).offset(offset)
    )
    return list(rows), int(total)


# --- groups ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSpec:
    key: str
    route_id: str
    labels: dict[str, str]
    first_flush_at: datetime  # when a new (or idle) group's first message is due


def ensure_groups(session: Session, specs: Mapping[str, GroupSpec], now: datetime) -> dict[str, str]:
    """Create missing groups and arm idle ones; returns group_key → id.

    The UPDATE takes each group's row lock (in key order, so ingests never deadlock) before
    members are added: a flush holding the same lock finishes first, and one starting later
    sees the new members.
    """
    keys = sorted(specs)
    _insert_ignoring_conflicts(
        session,
        AlertGroup,
        [
            {
                "id": new_id(),
                "group_key": key,
                "route_id": specs[key].route_id,
                "group_labels": specs[key].labels,
                "next_flush_at": specs[key].first_flush_at,
                "has_flushed": False,
                "version": 0,
                "created_at": now,
                "updated_at": now,
            }
            for key in keys
        ],
    )
    ids: dict[str, str] = {}
    for part in chunks(keys):
        for group_id, key in session.execute(
            select(AlertGroup.id, AlertGroup.group_key).where(AlertGroup.group_key.in_(part))
        ):
            ids[key] = group_id
    groups = _table(AlertGroup)
    due = bindparam("due", type_=UTCDateTime())
    arm = (
        update(groups)
        .where(groups.c.id == bindparam("_id"))
        .values(
            # Idle group: a fresh group_wait. Not yet flushed: an old alert may pull the first
            # message forward (Alertmanager flushes at once if starts_at + group_wait passed).
            next_flush_at=case(
                (groups.c.next_flush_at.is_(None), due),
                (and_(groups.c.has_flushed.is_(False), groups.c.next_flush_at > due), due),
                else_=groups.c.next_flush_at,
            ),
            has_flushed=case((groups.c.next_flush_at.is_(None), False), else_=groups.c.has_flushed),
            updated_at=bindparam("now", type_=UTCDateTime()),
        )
    )
    params = [{"_id": ids[key], "due": specs[key].first_flush_at, "now": now} for key in keys]
    for rows in chunks(params):
        session.execute(arm, list(rows))
    return ids


def add_members(session: Session, pairs: Iterable[tuple[str, str]], now: datetime) -> None:
    _insert_ignoring_conflicts(
        session,
        AlertGroupMember,
        [{"group_id": g, "alert_id": a, "notified_state": None, "added_at": now} for g, a in pairs],
    )


def due_groups(session: Session, now: datetime, limit: int) -> list[tuple[str, int]]:
    rows = session.execute(
        select(AlertGroup.id, AlertGroup.version)
        .where(AlertGroup.next_flush_at.is_not(None), AlertGroup.next_flush_at <= now)
        .order_by(AlertGroup.next_flush_at)
        .limit(limit)
    )
    return [(group_id, version) for group_id, version in rows]


def claim_group(session: Session, group_id: str, version: int, now: datetime) -> AlertGroup | None:
    """Take this tick of the group's timer; None if another flush run took it first."""
    result = session.execute(
        update(AlertGroup)
        .where(
            AlertGroup.id == group_id,
            AlertGroup.version == version,
            AlertGroup.next_flush_at.is_not(None),
            AlertGroup.next_flush_at <= now,
        )
        .values(version=version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    group = session.get(AlertGroup, group_id, populate_existing=True)
    return group


@dataclass(frozen=True)
class MemberView:
    alert_id: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    severity: str | None
    starts_at: datetime
    ends_at: datetime | None
    acknowledged_by: str | None
    notified_state: str | None

    def is_firing(self, now: datetime) -> bool:
        return self.ends_at is None or self.ends_at > now


def group_members(session: Session, group_id: str) -> list[MemberView]:
    rows = session.execute(
        select(
            Alert.id,
            Alert.fingerprint,
            Alert.labels,
            Alert.annotations,
            Alert.severity,
            Alert.starts_at,
            Alert.ends_at,
            Alert.acknowledged_by,
            AlertGroupMember.notified_state,
        )
        .join(AlertGroupMember, AlertGroupMember.alert_id == Alert.id)
        .where(AlertGroupMember.group_id == group_id)
        .order_by(Alert.starts_at, Alert.id)
    )
    return [MemberView(*row) for row in rows]


def set_notified_states(session: Session, group_id: str, states: Mapping[str | None, Sequence[str]]) -> None:
    for state, alert_ids in states.items():
        for part in chunks(list(alert_ids)):
            session.execute(
                update(AlertGroupMember)
                .where(AlertGroupMember.group_id == group_id, AlertGroupMember.alert_id.in_(part))
                .values(notified_state=state)
                .execution_options(synchronize_session=False)
            )


def remove_members(session: Session, group_id: str, alert_ids: Sequence[str]) -> None:
    for part in chunks(list(alert_ids)):
        session.execute(
            delete(AlertGroupMember)
            .where(AlertGroupMember.group_id == group_id, AlertGroupMember.alert_id.in_(part))
            .execution_options(synchronize_session=False)
        )


# --- notifications and deliveries ---------------------------------------------------------


def add_notification(session: Session, row: dict[str, Any], items: list[dict[str, Any]]) -> None:
    session.execute(insert(_table(AlertNotification)), [row])
    for part in chunks(items):
        session.execute(insert(_table(AlertNotificationItem)), list(part))


def pending_notifications(session: Session, limit: int) -> list[str]:
    return list(
        session.scalars(
            select(AlertNotification.id)
            .where(AlertNotification.status == "pending")
            .order_by(AlertNotification.created_at)
            .limit(limit)
        )
    )


def mark_enqueued(session: Session, ids: Sequence[str], now: datetime) -> None:
    for part in chunks(list(ids)):
        session.execute(
            update(AlertNotification)
            .where(AlertNotification.id.in_(part), AlertNotification.status == "pending")
            .values(status="enqueued", enqueued_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def get_notification(session: Session, notification_id: str) -> AlertNotification | None:
    return session.get(AlertNotification, notification_id, populate_existing=True)


def transition_notification(
    session: Session, notification_id: str, from_status: str, values: dict[str, Any]
) -> bool:
    """Compare-and-set on the notification's status; False if someone else moved it."""
    result = session.execute(
        update(AlertNotification)
        .where(AlertNotification.id == notification_id, AlertNotification.status == from_status)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def newer_delivered_exists(session: Session, group_id: str, seq: int) -> bool:
    found = session.scalar(
        select(AlertNotification.id)
        .where(
            AlertNotification.group_id == group_id,
            AlertNotification.seq > seq,
            AlertNotification.status.in_(("delivered", "logged", "recovered")),
        )
        .limit(1)
    )
    return found is not None


def last_posted_message(session: Session, group_id: str, seq: int) -> tuple[str, str] | None:
    """(channel id, ts) of the group's latest Slack message before this notification."""
    row = session.execute(
        select(AlertNotification.slack_channel, AlertNotification.slack_ts)
        .where(
            AlertNotification.group_id == group_id,
            AlertNotification.seq < seq,
            AlertNotification.slack_ts.is_not(None),
            AlertNotification.slack_channel.is_not(None),
        )
        .order_by(AlertNotification.seq.desc())
        .limit(1)
    ).first()
    return (str(row[0]), str(row[1])) if row else None


def known_channel_id(session: Session, channel: str) -> str | None:
    """The Slack channel id a previous post to `channel` (maybe a #name) resolved to."""
    return session.scalar(
        select(AlertNotification.slack_channel)
        .where(AlertNotification.channel == channel, AlertNotification.slack_channel.is_not(None))
        .order_by(AlertNotification.created_at.desc())
        .limit(1)
    )


def add_delivery(session: Session, row: dict[str, Any]) -> None:
    session.execute(insert(AlertDelivery), [row])


def deliveries_for_alert(session: Session, alert_id: str) -> list[tuple[AlertDelivery, str]]:
    rows = session.execute(
        select(AlertDelivery, AlertNotification.kind)
        .join(AlertNotification, AlertNotification.id == AlertDelivery.notification_id)
        .join(AlertNotificationItem, AlertNotificationItem.notification_id == AlertNotification.id)
        .where(AlertNotificationItem.alert_id == alert_id)
        .order_by(AlertDelivery.at, AlertDelivery.attempt)
    )
    return [(delivery, kind) for delivery, kind in rows]


# --- silences -------------------------------------------------------------------------------


def active_silences(session: Session, now: datetime) -> list[Silence]:
    return list(session.scalars(select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)))


def list_silences(session: Session) -> list[Silence]:
    return list(session.scalars(select(Silence).order_by(Silence.ends_at.desc(), Silence.id)))
