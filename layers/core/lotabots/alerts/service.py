"""Alerting use cases: ingest, list/get, acknowledge, resolve, delivery log, silences.

Ingest is set-based: the whole batch is deduplicated by fingerprint, existing alerts are read
in one query per 1,000, new ones inserted and changed ones updated with executemany, then the
routing tree assigns each firing alert to its groups (created or re-armed as needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lotabots import audit
from lotabots.access import Principal
from lotabots.alerts import configuration, repository
from lotabots.alerts.configuration import AlertsConfig
from lotabots.alerts.engine import IncomingAlert, Inhibitor, Silencer, SilenceRule, dedupe, normalise_posted
from lotabots.alerts.matchers import Matcher, MatcherError
from lotabots.alerts.models import Alert, Silence
from lotabots.alerts.schemas import (
    AcceptedAlert,
    AlertBatch,
    AlertIn,
    AlertList,
    AlertOut,
    AlertState,
    AlertStateFilter,
    DeliveryList,
    DeliveryOut,
    MatcherOut,
    PostAlertsResult,
    SilenceIn,
    SilenceList,
    SilenceOut,
    SilenceState,
)
from lotabots.db.base import new_id, utcnow
from lotabots.errors import Conflict, NotFound
from lotabots.observability import logger
from lotabots.pagination import decode_time_cursor, encode_cursor, page

# --- ingest -------------------------------------------------------------------------------


@dataclass
class IngestResult:
    alerts: list[AcceptedAlert] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    ignored: int = 0

    def as_response(self) -> PostAlertsResult:
        return PostAlertsResult(
            accepted=len(self.alerts),
            created=self.created,
            updated=self.updated,
            ignored=self.ignored,
            alerts=self.alerts,
        )


def _merge(old: Any, new: IncomingAlert, now: datetime) -> dict[str, Any]:
    """Column values after applying `new` to the stored alert `old` (Alertmanager's merge)."""
    old_firing = old.ends_at is None or old.ends_at > now
    values: dict[str, Any] = {
        "id": old.id,
        "annotations": new.annotations,
        "ends_at": new.ends_at,
        "last_event_at": new.event_at,
        "updated_at": now,
    }
    if old_firing or not new.is_firing(now):
        values["starts_at"] = min(old.starts_at, new.starts_at)
    else:
        # A resolved alert fires again: a new instance unless the two overlap in time.
        continuing = old.ends_at is not None and new.starts_at <= old.ends_at
        values["starts_at"] = old.starts_at if continuing else new.starts_at
        values.update(acknowledged_at=None, acknowledged_by=None, resolved_by=None)
    return values


INGEST_ATTEMPTS = 3


def ingest(
    session: Session,
    incoming: Sequence[IncomingAlert],
    *,
    now: datetime | None = None,
    cfg: AlertsConfig | None = None,
) -> IngestResult:
    """Store a batch of alerts (dedup by fingerprint) and put the firing ones in their groups.

    Two writers inserting the same new fingerprint at once: the loser's savepoint rolls back
    on the unique constraint and the batch is applied again, now as an update.
    """
    now = now or utcnow()
    cfg = cfg or configuration.load()
    batch = dedupe(incoming)
    repository.write_transaction(session)
    for attempt in range(1, INGEST_ATTEMPTS + 1):
        try:
            with session.begin_nested():
                return _ingest_once(session, batch, now, cfg)
        except IntegrityError:
            if attempt == INGEST_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _ingest_once(
    session: Session, batch: Sequence[IncomingAlert], now: datetime, cfg: AlertsConfig
) -> IngestResult:
    existing = repository.alerts_by_fingerprint(session, [a.fingerprint for a in batch])
    result = IngestResult()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    routed: list[tuple[str, IncomingAlert]] = []
    for alert in batch:
        old = existing.get(alert.fingerprint)
        firing = alert.is_firing(now)
        if old is None:
            alert_id = new_id()
            inserts.append(
                {
                    "id": alert_id,
                    "fingerprint": alert.fingerprint,
                    "labels": alert.labels,
                    "annotations": alert.annotations,
                    "severity": alert.severity,
                    "source": alert.source,
                    "starts_at": alert.starts_at,
                    "ends_at": alert.ends_at,
                    "last_event_at": alert.event_at,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            result.created += 1
        elif alert.event_at < old.last_event_at:
            result.ignored += 1
            result.alerts.append(AcceptedAlert(id=old.id, fingerprint=alert.fingerprint, state="ignored"))
            continue
        else:
            alert_id = old.id
            updates.append(_merge(old, alert, now))
            result.updated += 1
        result.alerts.append(
            AcceptedAlert(
                id=alert_id, fingerprint=alert.fingerprint, state="firing" if firing else "resolved"
            )
        )
        if firing:
            routed.append((alert_id, alert))
    # Row locks in id order: concurrent batches touching the same alerts never deadlock.
    repository.insert_alerts(session, sorted(inserts, key=lambda row: row["fingerprint"]))
    repository.update_alerts(session, sorted(updates, key=lambda row: row["id"]))
    _assign_groups(session, routed, cfg, now)
    return result


def _assign_groups(
    session: Session, routed: Sequence[tuple[str, IncomingAlert]], cfg: AlertsConfig, now: datetime
) -> None:
    specs: dict[str, repository.GroupSpec] = {}
    pairs: list[tuple[str, str]] = []
    for alert_id, alert in routed:
        for route in cfg.match(alert.labels):
            labels = route.group_labels(alert.labels)
            key = route.group_key(labels)
            wait = timedelta(seconds=route.group_wait)
            # Alertmanager: an alert older than group_wait is announced without waiting.
            first = now if alert.starts_at + wait < now else now + wait
            spec = specs.get(key)
            if spec is None or first < spec.first_flush_at:
                specs[key] = repository.GroupSpec(key, route.id, labels, first)
            pairs.append((key, alert_id))
    if not specs:
        return
    ids = repository.ensure_groups(session, specs, now)
    repository.add_members(session, [(ids[key], alert_id) for key, alert_id in pairs], now)


def post_alerts(
    session: Session, body: AlertIn | AlertBatch | list[AlertIn], *, now: datetime | None = None
) -> PostAlertsResult:
    now = now or utcnow()
    cfg = configuration.load()
    items = body.root if isinstance(body, AlertBatch) else body if isinstance(body, list) else [body]
    incoming = [
        normalise_posted(
            a.labels, a.annotations, a.starts_at, a.ends_at, now=now, resolve_timeout=cfg.resolve_timeout
        )
        for a in items
    ]
    return ingest(session, incoming, now=now, cfg=cfg).as_response()


# --- reading alerts -----------------------------------------------------------------------


@dataclass
class MuteContext:
    """Silences and inhibitions in force at one moment (read once, applied to many alerts)."""

    silencer: Silencer
    inhibitor: Inhibitor


def mute_context(session: Session, now: datetime, cfg: AlertsConfig | None = None) -> MuteContext:
    cfg = cfg or configuration.load()
    silences = [rule for s in repository.active_silences(session, now) if (rule := _silence_rule(s))]
    firing = repository.firing_labels(session, now, _source_severities(cfg)) if cfg.inhibit_rules else []
    return MuteContext(Silencer(silences), Inhibitor(cfg.inhibit_rules, firing))


def _silence_rule(silence: Silence) -> SilenceRule | None:
    """The silence's matchers; None (it mutes nothing) if one no longer compiles, e.g. a regex
    stored before matchers moved to RE2: listing alerts and flushing must not fail on it."""
    try:
        return SilenceRule(silence.id, tuple(Matcher.from_any(m) for m in silence.matchers))
    except MatcherError as exc:
        logger.error(
            "silence ignored: a matcher is not valid", extra={"silence_id": silence.id, "error": str(exc)}
        )
        return None


def _source_severities(cfg: AlertsConfig) -> frozenset[str] | None:
    """The only severities an inhibiting (source) alert can have, when every rule pins one with
    `severity="..."`; None when some rule could match any severity. Keeps the inhibition index
    to the few critical alerts instead of every firing alert."""
    found: set[str] = set()
    for rule in cfg.inhibit_rules:
        pinned = [m.value for m in rule.source if m.name == "severity" and m.is_equal and not m.is_regex]
        if not pinned or not pinned[0]:
            return None
        found.add(pinned[0])
    return frozenset(found)


def _alert_out(alert: Alert, now: datetime, ctx: MuteContext | None) -> AlertOut:
    silenced_by: list[str] = []
    inhibited = False
    state: AlertState
    if not alert.is_firing(now):
        state = "resolved"
    else:
        assert ctx is not None
        silenced_by = ctx.silencer.mutes(alert.labels)
        inhibited = ctx.inhibitor.inhibited(alert.fingerprint, alert.labels)
        if silenced_by:
            state = "silenced"
        elif inhibited:
            state = "inhibited"
        elif alert.acknowledged_at is not None:
            state = "acknowledged"
        else:
            state = "firing"
    return AlertOut(
        id=alert.id,
        fingerprint=alert.fingerprint,
        labels=alert.labels,
        annotations=alert.annotations,
        severity=alert.severity,
        source=alert.source,
        state=state,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        updated_at=alert.updated_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        resolved_by=alert.resolved_by,
        silenced_by=silenced_by,
        inhibited=inhibited,
    )


# A filtered page (silenced, inhibited) reads at most this many rows; when they run out first
# the page is short and `next_cursor` carries on from the last row read.
MAX_ROWS_PER_PAGE = 1000
_MUTE_STATES = frozenset({"firing", "acknowledged", "silenced", "inhibited"})


def list_alerts(
    session: Session,
    *,
    state: AlertStateFilter = "active",
    severity: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
    now: datetime | None = None,
) -> AlertList:
    """Alerts by state, newest first; `active` is everything not resolved, `all` adds the
    resolved ones. SQL narrows by resolved/acknowledged/severity and pages by keyset; whether an
    alert is silenced or inhibited is decided here, against the silences and inhibition rules
    in force, reading further pages until this one is full or MAX_ROWS_PER_PAGE rows were read."""
    now = now or utcnow()
    after = decode_time_cursor(cursor) if cursor else None
    ctx = None if state == "resolved" else mute_context(session, now)
    found: list[tuple[AlertOut, tuple[datetime, str]]] = []
    read = 0
    more = True
    while more and len(found) <= limit and read < MAX_ROWS_PER_PAGE:
        rows = repository.list_alerts(
            session, now, state=state, severity=severity, after=after, limit=limit + 1
        )
        read += len(rows)
        more = len(rows) > limit
        for alert in rows:
            after = (alert.starts_at, alert.id)
            out = _alert_out(alert, now, ctx)
            if state not in _MUTE_STATES or out.state == state:
                found.append((out, after))
                if len(found) > limit:
                    break
    if len(found) > limit:
        next_cursor: str | None = encode_cursor(*found[limit - 1][1])
    else:
        next_cursor = encode_cursor(*after) if more and after is not None else None
    return AlertList(items=[out for out, _ in found[:limit]], next_cursor=next_cursor)


def _require_alert(session: Session, alert_id: str) -> Alert:
    alert = repository.get_alert(session, alert_id)
    if alert is None:
        raise NotFound("no such alert", details={"alert_id": alert_id})
    return alert


def get_alert(session: Session, alert_id: str, *, now: datetime | None = None) -> AlertOut:
    now = now or utcnow()
    alert = _require_alert(session, alert_id)
    return _alert_out(alert, now, mute_context(session, now) if alert.is_firing(now) else None)


def acknowledge(
    session: Session, alert_id: str, principal: Principal, comment: str | None, *, now: datetime | None = None
) -> AlertOut:
    """Someone is on it: the alert stays firing but no longer causes repeat notifications."""
    now = now or utcnow()
    repository.write_transaction(session)
    alert = _require_alert(session, alert_id)
    if not alert.is_firing(now):
        raise Conflict("the alert is resolved; only firing alerts can be acknowledged")
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now
        alert.acknowledged_by = principal.user_id
        alert.updated_at = now
        audit.record(
            session,
            actor_id=principal.user_id,
            action="alert.acknowledge",
            target_type="alert",
            target_id=alert.id,
            details={"fingerprint": alert.fingerprint, "comment": comment},
        )
    session.flush()
    return get_alert(session, alert.id, now=now)


def resolve(
    session: Session, alert_id: str, principal: Principal, comment: str | None, *, now: datetime | None = None
) -> AlertOut:
    """Resolve by hand; the group sends its resolved notification at its next interval.

    A later update from the source that still says firing opens a new instance.
    """
    now = now or utcnow()
    repository.write_transaction(session)
    alert = _require_alert(session, alert_id)
    if alert.is_firing(now):
        alert.ends_at = now
        alert.last_event_at = max(alert.last_event_at, now)
        alert.resolved_by = principal.user_id
        alert.updated_at = now
        audit.record(
            session,
            actor_id=principal.user_id,
            action="alert.resolve",
            target_type="alert",
            target_id=alert.id,
            details={"fingerprint": alert.fingerprint, "comment": comment},
        )
    session.flush()
    return _alert_out(alert, now, None)


def deliveries(
    session: Session, alert_id: str, *, limit: int = 100, cursor: str | None = None
) -> DeliveryList:
    """The delivery log of an alert, oldest first."""
    alert = _require_alert(session, alert_id)
    after = decode_time_cursor(cursor) if cursor else None
    rows = repository.deliveries_for_alert(session, alert.id, after=after, limit=limit + 1)
    found, next_cursor = page(rows, limit, lambda row: (row[0].at, row[0].id))
    return DeliveryList(
        alert_id=alert.id,
        items=[
            DeliveryOut(
                id=d.id,
                notification_id=d.notification_id,
                kind=kind,
                attempt=d.attempt,
                status=d.status,
                method=d.method,
                channel=d.channel,
                slack_ts=d.slack_ts,
                error=d.error,
                http_status=d.http_status,
                at=d.at,
            )
            for d, kind in found
        ],
        next_cursor=next_cursor,
    )


# --- silences -------------------------------------------------------------------------------


def _silence_state(silence: Silence, now: datetime) -> SilenceState:
    if now < silence.starts_at:
        return "pending"
    return "active" if now < silence.ends_at else "expired"


def _silence_out(silence: Silence, now: datetime) -> SilenceOut:
    return SilenceOut(
        id=silence.id,
        matchers=[MatcherOut.model_validate(m) for m in silence.matchers],
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        comment=silence.comment,
        created_by=silence.created_by,
        expired_by=silence.expired_by,
        state=_silence_state(silence, now),
        created_at=silence.created_at,
        updated_at=silence.updated_at,
    )


def create_silence(
    session: Session, body: SilenceIn, principal: Principal, *, now: datetime | None = None
) -> SilenceOut:
    now = now or utcnow()
    # A start in the past means "from now", as in Alertmanager.
    starts = max(body.starts_at or now, now)
    silence = Silence(
        id=new_id(),
        matchers=[m.to_matcher().as_dict() for m in body.matchers],
        starts_at=starts,
        ends_at=body.ends_at,
        comment=body.comment,
        created_by=principal.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(silence)
    session.flush()
    audit.record(
        session,
        actor_id=principal.user_id,
        action="silence.create",
        target_type="silence",
        target_id=silence.id,
        details={"matchers": silence.matchers, "starts_at": starts, "ends_at": body.ends_at},
    )
    return _silence_out(silence, now)


def list_silences(
    session: Session,
    *,
    state: SilenceState | None = None,
    limit: int = 100,
    cursor: str | None = None,
    now: datetime | None = None,
) -> SilenceList:
    """Silences in one state (or all), the latest-ending first."""
    now = now or utcnow()
    after = decode_time_cursor(cursor) if cursor else None
    rows = repository.list_silences(session, now, state=state, after=after, limit=limit + 1)
    found, next_cursor = page(rows, limit, lambda s: (s.ends_at, s.id))
    return SilenceList(items=[_silence_out(s, now) for s in found], next_cursor=next_cursor)


def expire_silence(
    session: Session, silence_id: str, principal: Principal, *, now: datetime | None = None
) -> SilenceOut:
    """Expire now (a pending silence never starts). Expiring an expired silence changes nothing."""
    now = now or utcnow()
    repository.write_transaction(session)
    silence = session.get(Silence, silence_id)
    if silence is None:
        raise NotFound("no such silence", details={"silence_id": silence_id})
    state = _silence_state(silence, now)
    if state != "expired":
        if state == "pending":
            silence.starts_at = now
        silence.ends_at = now
        silence.expired_by = principal.user_id
        silence.updated_at = now
        audit.record(
            session,
            actor_id=principal.user_id,
            action="silence.expire",
            target_type="silence",
            target_id=silence.id,
            details={"previous_state": state},
        )
    session.flush()
    return _silence_out(silence, now)
