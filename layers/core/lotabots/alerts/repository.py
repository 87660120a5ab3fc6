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

from lotabots import pagination
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


def firing_labels(
    session: Session, now: datetime, severities: frozenset[str] | None = None
) -> list[tuple[str, dict[str, str]]]:
    """(fingerprint, labels) of firing alerts, only those of `severities` when given."""
    query = select(Alert.fingerprint, Alert.labels).where(_active_clause(now))
    if severities is not None:
        query = query.where(Alert.severity.in_(sorted(severities)))
    return [(fp, labels) for fp, labels in session.execute(query)]


def list_alerts(
    session: Session,
    now: datetime,
    *,
    state: str,
    severity: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Alert]:
    """Newest first (starts_at, id), keyset-paginated. `state` narrows what SQL can tell
    (resolved or not, acknowledged or not); silenced/inhibited need the service's mute context."""
    where: list[Any] = []
    if state == "resolved":
        where += [Alert.ends_at.is_not(None), Alert.ends_at <= now]
    elif state != "all":
        where.append(_active_clause(now))
    if state == "firing":
        where.append(Alert.acknowledged_at.is_(None))
    elif state == "acknowledged":
        where.append(Alert.acknowledged_at.is_not(None))
    if severity:
        where.append(Alert.severity == severity)
    if after is not None:
        where.append(pagination.after(session, Alert.starts_at, Alert.id, after))
    query = select(Alert).where(*where).order_by(Alert.starts_at.desc(), Alert.id.desc()).limit(limit)
    return list(session.scalars(query))


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

# Slack accepted it (or, without a token, it was logged): the only statuses that count as notified.
ACCEPTED_STATUSES = ("delivered", "logged", "recovered")
# Not done yet: the outbox keeps sending these until one of the final statuses is reached.
UNDONE_STATUSES = ("pending", "enqueued", "sending", "failed", "uncertain")
# Undone and certainly never shown in Slack: a newer snapshot of the group may replace them.
UNPOSTED_STATUSES = ("pending", "enqueued", "failed")
# Undone and already handed to the notify queue once (pending ones are sent by enqueue_pending).
QUEUED_UNDONE_STATUSES = ("enqueued", "sending", "failed", "uncertain")


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


def mark_enqueued(session: Session, ids: Sequence[str], now: datetime, resend_at: datetime) -> None:
    for part in chunks(list(ids)):
        session.execute(
            update(AlertNotification)
            .where(AlertNotification.id.in_(part), AlertNotification.status == "pending")
            .values(status="enqueued", enqueued_at=now, next_attempt_at=resend_at, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def due_notifications(session: Session, until: datetime, limit: int) -> list[tuple[str, datetime]]:
    """(id, next_attempt_at) of undone, already queued notifications due by `until`, soonest first."""
    rows = session.execute(
        select(AlertNotification.id, AlertNotification.next_attempt_at)
        .where(
            AlertNotification.status.in_(QUEUED_UNDONE_STATUSES),
            AlertNotification.next_attempt_at.is_not(None),
            AlertNotification.next_attempt_at <= until,
        )
        .order_by(AlertNotification.next_attempt_at)
        .limit(limit)
    )
    return [(nid, at) for nid, at in rows if at is not None]


def reschedule(session: Session, moves: Sequence[tuple[str, datetime, datetime]]) -> None:
    """(id, expected next_attempt_at, new one): skipped where an outcome was recorded meanwhile
    (a done notification has no next_attempt_at; a new attempt wrote its own)."""
    table = _table(AlertNotification)
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("_id"),
            table.c.next_attempt_at == bindparam("_expected", type_=UTCDateTime()),
        )
        .values(next_attempt_at=bindparam("_new", type_=UTCDateTime()))
    )
    params = [{"_id": nid, "_expected": old, "_new": new} for nid, old, new in moves]
    for part in chunks(params):
        session.execute(statement, list(part))


def defer_notification(session: Session, notification_id: str, at: datetime) -> bool:
    """A delivery that did not start (rate-limit pause, no time left): retry at `at`.

    False if there was nothing to defer (done, being sent, or no such notification)."""
    result = session.execute(
        update(AlertNotification)
        .where(
            AlertNotification.id == notification_id,
            AlertNotification.status.in_(("enqueued", "failed", "uncertain")),
        )
        .values(next_attempt_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class UndoneNotification:
    id: str
    seq: int
    status: str
    kind: str
    attempts: int
    channel: str


def undone_notifications(session: Session, group_id: str) -> list[UndoneNotification]:
    rows = session.execute(
        select(
            AlertNotification.id,
            AlertNotification.seq,
            AlertNotification.status,
            AlertNotification.kind,
            AlertNotification.attempts,
            AlertNotification.channel,
        )
        .where(AlertNotification.group_id == group_id, AlertNotification.status.in_(UNDONE_STATUSES))
        .order_by(AlertNotification.seq)
    )
    return [UndoneNotification(*row) for row in rows]


def notification_items(session: Session, notification_id: str) -> set[tuple[str, str]]:
    """(alert id, firing|resolved) of every alert a notification covers."""
    rows = session.execute(
        select(AlertNotificationItem.alert_id, AlertNotificationItem.state).where(
            AlertNotificationItem.notification_id == notification_id
        )
    )
    return {(alert_id, state) for alert_id, state in rows}


def supersede(
    session: Session, notifications: Sequence[UndoneNotification], now: datetime, *, posted_too: bool = False
) -> None:
    """Mark undone notifications replaced: by default only those that never reached Slack (a newer
    snapshot, or nothing left to say); `posted_too` also those that may have (`sending`,
    `uncertain`), once a newer one of their group is known to be in the channel."""
    for row in notifications:
        if not posted_too and row.status not in UNPOSTED_STATUSES:
            continue
        if transition_notification(
            session, row.id, row.status, {"status": "superseded", "next_attempt_at": None, "updated_at": now}
        ):
            add_delivery(
                session,
                {
                    "id": new_id(),
                    "notification_id": row.id,
                    "attempt": row.attempts + 1,
                    "status": "superseded",
                    "method": "none",
                    "channel": row.channel,
                    "at": now,
                },
            )


def apply_accepted(session: Session, group_id: str, seq: int, notification_id: str, now: datetime) -> bool:
    """Slack accepted notification `seq` of the group: its members' notified states, the group's
    last_notified_at and the removal of the resolved alerts it announced follow it now (unless a
    newer notification of the group was accepted first). Takes the group's row lock first, the
    same order as a flush, so the two never deadlock."""
    applied = session.execute(
        update(AlertGroup)
        .where(
            AlertGroup.id == group_id,
            or_(AlertGroup.notified_seq.is_(None), AlertGroup.notified_seq < seq),
        )
        .values(notified_seq=seq, last_notified_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if applied.rowcount != 1:  # type: ignore[attr-defined]
        return False
    items = notification_items(session, notification_id)
    session.execute(
        update(AlertGroupMember)
        .where(AlertGroupMember.group_id == group_id, AlertGroupMember.notified_state.is_not(None))
        .values(notified_state=None)
        .execution_options(synchronize_session=False)
    )
    resolved = sorted(alert_id for alert_id, state in items if state == "resolved")
    set_notified_states(
        session,
        group_id,
        {"firing": sorted(alert_id for alert_id, state in items if state == "firing"), "resolved": resolved},
    )
    still_resolved = select(Alert.id).where(Alert.ends_at.is_not(None), Alert.ends_at <= now)
    for part in chunks(resolved):
        session.execute(
            delete(AlertGroupMember)
            .where(
                AlertGroupMember.group_id == group_id,
                AlertGroupMember.alert_id.in_(part),
                AlertGroupMember.alert_id.in_(still_resolved),
            )
            .execution_options(synchronize_session=False)
        )
    remaining = session.scalar(
        select(func.count()).select_from(AlertGroupMember).where(AlertGroupMember.group_id == group_id)
    )
    if not remaining:  # nothing left to watch: idle until an alert arrives (as after a flush)
        session.execute(
            update(AlertGroup)
            .where(AlertGroup.id == group_id)
            .values(next_flush_at=None, has_flushed=False)
            .execution_options(synchronize_session=False)
        )
    return True


def delivery_backlog(session: Session, now: datetime) -> tuple[int, float]:
    """(undone notifications, seconds the oldest group has been waiting for Slack to accept one).

    A group waits from its oldest notification after its last accepted one, counting snapshots
    that replaced one another while Slack refused them, as long as it still has one undone.
    """
    undone = int(
        session.scalar(
            select(func.count())
            .select_from(AlertNotification)
            .where(AlertNotification.status.in_(UNDONE_STATUSES))
        )
        or 0
    )
    if not undone:
        return 0, 0.0
    waiting = select(AlertNotification.group_id).where(AlertNotification.status.in_(UNDONE_STATUSES))
    last_accepted = (
        select(AlertNotification.group_id, func.max(AlertNotification.seq).label("seq"))
        .where(AlertNotification.status.in_(ACCEPTED_STATUSES), AlertNotification.group_id.in_(waiting))
        .group_by(AlertNotification.group_id)
        .subquery()
    )
    oldest = session.scalar(
        select(func.min(AlertNotification.created_at))
        .outerjoin(last_accepted, last_accepted.c.group_id == AlertNotification.group_id)
        .where(
            AlertNotification.group_id.in_(waiting),
            AlertNotification.status.not_in(ACCEPTED_STATUSES),
            or_(last_accepted.c.seq.is_(None), AlertNotification.seq > last_accepted.c.seq),
        )
    )
    if oldest is None:
        return undone, 0.0
    return undone, max(0.0, (now - oldest).total_seconds())


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
            AlertNotification.status.in_(ACCEPTED_STATUSES),
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


def deliveries_for_alert(
    session: Session, alert_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[tuple[AlertDelivery, str]]:
    """Oldest first (at, id), keyset-paginated."""
    query = (
        select(AlertDelivery, AlertNotification.kind)
        .join(AlertNotification, AlertNotification.id == AlertDelivery.notification_id)
        .join(AlertNotificationItem, AlertNotificationItem.notification_id == AlertNotification.id)
        .where(AlertNotificationItem.alert_id == alert_id)
    )
    if after is not None:
        query = query.where(
            pagination.after(session, AlertDelivery.at, AlertDelivery.id, after, descending=False)
        )
    rows = session.execute(query.order_by(AlertDelivery.at, AlertDelivery.id).limit(limit))
    return [(delivery, kind) for delivery, kind in rows]


# --- silences -------------------------------------------------------------------------------


def active_silences(session: Session, now: datetime) -> list[Silence]:
    return list(session.scalars(select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)))


def list_silences(
    session: Session, now: datetime, *, state: str | None, after: tuple[datetime, str] | None, limit: int
) -> list[Silence]:
    """Latest-ending first (ends_at, id), keyset-paginated; `state` as of `now`."""
    where: list[Any] = []
    if state == "pending":
        where.append(Silence.starts_at > now)
    elif state == "active":
        where += [Silence.starts_at <= now, Silence.ends_at > now]
    elif state == "expired":
        where.append(Silence.ends_at <= now)
    if after is not None:
        where.append(pagination.after(session, Silence.ends_at, Silence.id, after))
    query = select(Silence).where(*where).order_by(Silence.ends_at.desc(), Silence.id.desc()).limit(limit)
    return list(session.scalars(query))
