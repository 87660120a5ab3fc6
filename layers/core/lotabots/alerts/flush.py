"""Grouping timers, run by a schedule instead of a long-lived process.

`flush_due()` claims every group whose timer is due (a conditional UPDATE on its `version`:
two overlapping runs never both take a tick), decides with Alertmanager's rules whether the
group needs a message, and if so writes ONE notification for the group (a summary: counts
and the first N alerts, however many alerts the group holds) with the deterministic id
uuid5(group id, version). Notifications are an outbox: they are committed with the group's
new state, then sent to the notify queue; anything left `pending` (a crash between commit and
send) is sent by the next run. A notification sent twice is harmless: delivery is keyed by
its id.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from lotabots import aws
from lotabots import config as settings_module
from lotabots.alerts import configuration, repository
from lotabots.alerts.configuration import AlertsConfig
from lotabots.alerts.engine import decide
from lotabots.alerts.repository import MemberView
from lotabots.alerts.service import MuteContext, mute_context
from lotabots.config import AlertSettings
from lotabots.db import session_scope, utcnow
from lotabots.observability import logger

NOTIFICATION_NAMESPACE = uuid.UUID("6f1c2a52-3d8e-4b7a-9a57-0c1f5e2b9d41")
ANNOTATION_PAYLOAD_LIMIT = 4000  # per annotation value kept in a notification (Slack shows less)


def notification_id(group_id: str, version: int) -> str:
    return uuid.uuid5(NOTIFICATION_NAMESPACE, f"{group_id}:{version}").hex


@dataclass
class FlushReport:
    groups_claimed: int = 0
    groups_skipped: int = 0  # claimed by an overlapping run
    notifications: list[str] = field(default_factory=list)
    enqueued: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "groups_claimed": self.groups_claimed,
            "groups_skipped": self.groups_skipped,
            "notifications": len(self.notifications),
            "enqueued": self.enqueued,
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
    created: str | None = None
    if kind is not None:
        announced_resolved = resolved if route.send_resolved else []
        # Nothing left to show (everything announced is now silenced or inhibited, or resolved
        # without send_resolved): the states are updated, no message is sent (as Alertmanager).
        if firing or announced_resolved:
            created = notification_id(group_id, group.version)
            limit = cfg.max_alerts_per_message
            payload = {
                "notification_id": created,
                "group_id": group_id,
                "group_key": group.group_key,
                "route_id": route.id,
                "receiver": route.receiver,
                "channel": route.channel,
                "kind": kind,
                "group_labels": group.group_labels,
                "common_labels": _common_labels(firing + announced_resolved),
                "counts": {
                    "firing": len(firing),
                    "resolved": len(announced_resolved),
                    "acknowledged": sum(1 for m in firing if m.acknowledged_by is not None),
                },
                "firing": [_summary(m) for m in firing[:limit]],
                "resolved": [_summary(m) for m in announced_resolved[:limit]],
                "created_at": now.isoformat(),
            }
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
                [{"notification_id": created, "alert_id": m.alert_id, "state": "firing"} for m in firing]
                + [
                    {"notification_id": created, "alert_id": m.alert_id, "state": "resolved"}
                    for m in announced_resolved
                ],
            )
        firing_ids = {m.alert_id for m in firing}
        resolved_ids = {m.alert_id for m in announced_resolved}
        repository.set_notified_states(
            session,
            group_id,
            {
                "firing": sorted(firing_ids),
                "resolved": sorted(resolved_ids),
                None: sorted(
                    m.alert_id
                    for m in members
                    if m.alert_id not in firing_ids
                    and m.alert_id not in resolved_ids
                    and m.notified_state is not None
                ),
            },
        )
        group.last_notified_at = now
    # Resolved alerts leave the group once this tick has seen them (Alertmanager does the same).
    gone = [m.alert_id for m in members if not m.is_firing(now)]
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
    logger.info("alert groups flushed", extra=report.as_dict())
    return report


def enqueue_pending(*, now: datetime | None = None, limit: int = 500) -> int:
    """Send pending notifications to the notify queue (10 per SendMessageBatch call)."""
    queue_url = settings_module.load(AlertSettings).notify_queue_url
    if not queue_url:
        raise RuntimeError("NOTIFY_QUEUE_URL is not set: notifications cannot be queued")
    now = now or utcnow()
    with session_scope() as session:
        ids = repository.pending_notifications(session, limit)
    sent: list[str] = []
    sqs = aws.client("sqs")
    for start in range(0, len(ids), 10):
        part = ids[start : start + 10]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"notification_id": nid})}
                for i, nid in enumerate(part)
            ],
        )
        for ok in response.get("Successful", []):
            sent.append(part[int(ok["Id"])])
        for failed in response.get("Failed", []):
            logger.error("notification not queued; the next flush retries", extra={"error": failed})
    if sent:
        with session_scope() as session:
            repository.mark_enqueued(session, sent, now)
    return len(sent)
