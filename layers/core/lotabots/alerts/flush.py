"""Grouping timers, run by a schedule instead of a long-lived process, and the outbox.

`flush_due()` claims every group whose timer is due (a conditional UPDATE on its `version`:
two overlapping runs never both take a tick), decides with Alertmanager's rules whether the
group needs a message, and if so writes ONE notification for the group (a summary: counts
and the first N alerts, however many alerts the group holds) with the deterministic id
uuid5(group id, version). Notifications are an outbox: they are committed with the group's
new state, then sent to the notify queue; anything left `pending` (a crash between commit and
send) is sent by the next run. A notification sent twice is harmless: delivery is keyed by
its id.

What the group has "notified" is only what Slack accepted (Alertmanager's notification log):
`lotabots.alerts.notify` writes the members' notified states and `last_notified_at` when a
delivery is accepted, never here. So while Slack is down the group keeps deciding against what
Slack really shows: a tick whose message would say what an undone notification already says
adds nothing (that one is still on its way), a tick with something new writes the newer
snapshot and supersedes undone ones Slack never showed, and a tick with nothing left to say
(the alert resolved or was silenced before any message got through) supersedes them too.
Resolved alerts stay in the group until the message announcing them is accepted.

Retries of an outage of any length are a scheduled resend from this outbox, not a DLQ redrive:
the database already knows which notifications are undone and when each is due again
(`next_attempt_at`), a redrive would need someone (or something) to notice Slack is back, and
a DLQ keeps messages 14 days at most. Every run sends due notifications to the notify queue
again (with SQS DelaySeconds for those due before the next run), so a notification is retried
until Slack accepts it, with capped exponential backoff, however long the outage; the notify
queue's DLQ is left to messages no attempt can ever handle. `delivery_backlog()` measures how
long groups have waited for Slack: the alert_flush function publishes it as a metric, whose
CloudWatch alarm (and the local stack's watcher) raises the outage by SNS/e-mail, not Slack.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from lotabots import aws, retry
from lotabots import config as settings_module
from lotabots.alerts import configuration, repository
from lotabots.alerts.configuration import AlertsConfig, Route
from lotabots.alerts.engine import decide
from lotabots.alerts.models import AlertGroup
from lotabots.alerts.repository import MemberView
from lotabots.alerts.service import MuteContext, mute_context
from lotabots.config import AlertSettings
from lotabots.db import session_scope, utcnow
from lotabots.observability import logger

NOTIFICATION_NAMESPACE = uuid.UUID("6f1c2a52-3d8e-4b7a-9a57-0c1f5e2b9d41")
ANNOTATION_PAYLOAD_LIMIT = 4000  # per annotation value kept in a notification (Slack shows less)
# The flush schedule runs every minute: notifications due before the next run are sent now,
# delayed by SQS (at most 15 minutes) to their due time.
RESEND_LOOKAHEAD = timedelta(seconds=60)


def notification_id(group_id: str, version: int) -> str:
    return uuid.uuid5(NOTIFICATION_NAMESPACE, f"{group_id}:{version}").hex


@dataclass
class FlushReport:
    groups_claimed: int = 0
    groups_skipped: int = 0  # claimed by an overlapping run
    notifications: list[str] = field(default_factory=list)
    enqueued: int = 0
    resent: int = 0  # undone notifications sent to the queue again (retries, lost messages)
    undelivered: int = 0  # notifications not yet accepted by Slack after this run
    delivery_lag_s: float = 0.0  # how long the longest-waiting group has waited for Slack

    def as_dict(self) -> dict[str, Any]:
        return {
            "groups_claimed": self.groups_claimed,
            "groups_skipped": self.groups_skipped,
            "notifications": len(self.notifications),
            "enqueued": self.enqueued,
            "resent": self.resent,
            "undelivered": self.undelivered,
            "delivery_lag_s": round(self.delivery_lag_s, 1),
        }


def _summary(member: MemberView) -> dict[str, Any]:
    return {
        "id": member.alert_id,
        "fingerprint": member.fingerprint,
        "labels": member.labels,
        "annotations": {k: v[:ANNOTATION_PAYLOAD_LIMIT] for k, v in member.annotations.items()},
        "severity": member.severity,
        "starts_at": member.starts_at.isoformat(),
        "ends_at": member.ends_at.isoformat() if member.ends_at else None,
        "acknowledged_by": member.acknowledged_by,
    }


def _common_labels(members: Sequence[MemberView]) -> dict[str, str]:
    if not members:
        return {}
    common = dict(members[0].labels)
    for member in members[1:]:
        for name in [n for n, v in common.items() if member.labels.get(n) != v]:
            del common[name]
        if not common:
            break
    return dict(sorted(common.items()))


def _payload(
    created: str,
    group: AlertGroup,
    route: Route,
    kind: str,
    firing: list[MemberView],
    resolved: list[MemberView],
    limit: int,
    now: datetime,
) -> dict[str, Any]:
    return {
        "notification_id": created,
        "group_id": group.id,
        "group_key": group.group_key,
        "route_id": route.id,
        "receiver": route.receiver,
        "channel": route.channel,
        "kind": kind,
        "group_labels": group.group_labels,
        "common_labels": _common_labels(firing + resolved),
        "counts": {
            "firing": len(firing),
            "resolved": len(resolved),
            "acknowledged": sum(1 for m in firing if m.acknowledged_by is not None),
        },
        "firing": [_summary(m) for m in firing[:limit]],
        "resolved": [_summary(m) for m in resolved[:limit]],
        "created_at": now.isoformat(),
    }


def _flush_group(
    session: Session,
    group_id: str,
    version: int,
    now: datetime,
    cfg: AlertsConfig,
    mutes: MuteContext,
) -> tuple[bool, str | None]:
    """(claimed, notification id or None) for one group tick."""
    group = repository.claim_group(session, group_id, version, now)
    if group is None:
        return False, None
    route = cfg.route(group.route_id)
    members = repository.group_members(session, group_id)
    firing: list[MemberView] = []
    resolved: list[MemberView] = []
    for member in members:
        if mutes.silencer.mutes(member.labels) or mutes.inhibitor.inhibited(
            member.fingerprint, member.labels
        ):
            continue
        (firing if member.is_firing(now) else resolved).append(member)
    # notified_state and last_notified_at say what Slack accepted (see the module docstring).
    kind = decide(
        firing={m.alert_id for m in firing},
        resolved={m.alert_id for m in resolved},
        notified_firing={m.alert_id for m in members if m.notified_state == "firing"},
        notified_resolved={m.alert_id for m in members if m.notified_state == "resolved"},
        unacknowledged_firing=any(m.acknowledged_by is None for m in firing),
        send_resolved=route.send_resolved,
        last_notified_at=group.last_notified_at,
        repeat_interval=route.repeat_interval,
        now=now,
    )
    announced_resolved = resolved if route.send_resolved else []
    wanted = {(m.alert_id, "firing") for m in firing} | {(m.alert_id, "resolved") for m in announced_resolved}
    undone = repository.undone_notifications(session, group_id)
    created: str | None = None
    if kind is not None and wanted:
        latest = undone[-1] if undone else None
        if (
            latest is not None
            and latest.kind == kind
            and repository.notification_items(session, latest.id) == wanted
        ):
            # The undone latest snapshot says exactly this: it is still on its way (never dropped).
            repository.supersede(session, undone[:-1], now)
        else:
            created = notification_id(group_id, group.version)
            payload = _payload(
                created, group, route, kind, firing, announced_resolved, cfg.max_alerts_per_message, now
            )
            repository.add_notification(
                session,
                {
                    "id": created,
                    "group_id": group_id,
                    "group_key": group.group_key,
                    "seq": group.version,
                    "kind": kind,
                    "receiver": route.receiver,
                    "channel": route.channel,
                    "payload": payload,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                },
                [{"notification_id": created, "alert_id": a, "state": state} for a, state in sorted(wanted)],
            )
            repository.supersede(session, undone, now)
    else:
        # Nothing to show: undone snapshots Slack never showed are stale now. If the decision
        # was to notify (everything announced is silenced or inhibited, or resolved without
        # send_resolved), the states are updated without a message, as in Alertmanager.
        repository.supersede(session, undone, now)
        if kind is not None:
            repository.set_notified_states(
                session,
                group_id,
                {None: sorted(m.alert_id for m in members if m.notified_state is not None)},
            )
            group.last_notified_at = now
    # Resolved alerts leave the group once this tick has seen them (Alertmanager does the same),
    # except those a message announces: they leave when Slack has accepted it.
    announcing = (
        {alert_id for alert_id, state in wanted if state == "resolved"} if kind is not None else set()
    )
    gone = [m.alert_id for m in members if not m.is_firing(now) and m.alert_id not in announcing]
    repository.remove_members(session, group_id, gone)
    remaining = len(members) - len(gone)
    group.next_flush_at = now + timedelta(seconds=route.group_interval) if remaining else None
    group.has_flushed = bool(remaining)
    group.updated_at = now
    session.flush()
    return True, created


def flush_due(
    *,
    now: datetime | None = None,
    deadline: float | None = None,
    enqueue: bool = True,
) -> FlushReport:
    """Flush every due group (until `deadline`, a time.monotonic() value), then send the outbox."""
    settings = settings_module.load(AlertSettings)
    cfg = configuration.load()
    now = now or utcnow()
    report = FlushReport()
    with session_scope() as session:
        mutes = mute_context(session, now, cfg)
    while deadline is None or time.monotonic() < deadline:
        with session_scope() as session:
            due = repository.due_groups(session, now, settings.flush_batch_size)
        if not due:
            break
        claimed_before = report.groups_claimed
        for group_id, version in due:
            if deadline is not None and time.monotonic() >= deadline:
                break
            # One transaction per group: its first statement is the claiming UPDATE.
            with session_scope() as session:
                claimed, created = _flush_group(session, group_id, version, now, cfg, mutes)
            if claimed:
                report.groups_claimed += 1
            else:
                report.groups_skipped += 1
            if created:
                report.notifications.append(created)
        if report.groups_claimed == claimed_before:
            break  # everything due was taken by an overlapping run
    if enqueue:
        report.enqueued = enqueue_pending(now=now)
        report.resent = resend_due(now=now)
    report.undelivered, report.delivery_lag_s = delivery_backlog(now=now)
    logger.info("alert groups flushed", extra=report.as_dict())
    return report


def _send(entries: list[tuple[str, int]]) -> list[str]:
    """Send (notification id, delay seconds) to the notify queue; returns the ids SQS took."""
    queue_url = settings_module.load(AlertSettings).notify_queue_url
    if not queue_url:
        raise RuntimeError("NOTIFY_QUEUE_URL is not set: notifications cannot be queued")
    sent: list[str] = []
    sqs = aws.client("sqs")
    for start in range(0, len(entries), 10):
        part = entries[start : start + 10]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"notification_id": nid}), "DelaySeconds": delay}
                for i, (nid, delay) in enumerate(part)
            ],
        )
        for ok in response.get("Successful", []):
            sent.append(part[int(ok["Id"])][0])
        for failed in response.get("Failed", []):
            logger.error("notification not queued; the next flush retries", extra={"error": failed})
    return sent


def enqueue_pending(*, now: datetime | None = None, limit: int = 500) -> int:
    """Send pending notifications to the notify queue (10 per SendMessageBatch call)."""
    settings = settings_module.load(AlertSettings)
    now = now or utcnow()
    with session_scope() as session:
        ids = repository.pending_notifications(session, limit)
    sent = _send([(nid, 0) for nid in ids])
    if sent:
        with session_scope() as session:
            resend_at = now + timedelta(seconds=settings.notify_resend_after_s)
            repository.mark_enqueued(session, sent, now, resend_at)
    return len(sent)


def resend_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Send undone notifications whose next attempt is due before the next run to the queue again.

    Those due later within RESEND_LOOKAHEAD arrive on time through SQS DelaySeconds. Each one
    sent gets a new `next_attempt_at` a full resend interval away: the attempt it triggers
    records its own outcome (and next time) first, unless the message is lost again.
    """
    settings = settings_module.load(AlertSettings)
    now = now or utcnow()
    with session_scope() as session:
        due = repository.due_notifications(session, now + RESEND_LOOKAHEAD, limit)
    if not due:
        return 0
    delays = {nid: retry.send_delay(math.ceil((at - now).total_seconds())) for nid, at in due}
    sent = set(_send(list(delays.items())))
    after = timedelta(seconds=settings.notify_resend_after_s)
    with session_scope() as session:
        repository.reschedule(
            session,
            [(nid, at, now + timedelta(seconds=delays[nid]) + after) for nid, at in due if nid in sent],
        )
    if sent:
        logger.info("undone notifications sent again", extra={"notifications": len(sent)})
    return len(sent)


def delivery_backlog(*, now: datetime | None = None) -> tuple[int, float]:
    """(undone notifications, seconds the longest-waiting group has waited for Slack)."""
    with session_scope() as session:
        return repository.delivery_backlog(session, now or utcnow())
