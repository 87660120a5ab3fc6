"""Pure alerting logic: identity, normalisation, muting and the notify decision.

Nothing here touches the database or the network, so the Alertmanager semantics can be
tested directly:
- fingerprint = SHA-256 of the sorted label set;
- silences mute alerts whose labels match all of a silence's matchers while it is active;
- an inhibition rule mutes a target alert when a firing source alert (not the target itself,
  and not one that also matches the targets when the target matches the sources) has the
  same values for the `equal` labels;
- a group is notified when it has a firing alert not yet announced, when an announced alert
  resolved (if the receiver wants resolved messages, or when nothing fires any more), or when
  `repeat_interval` has passed and some firing alert is still unacknowledged.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from lotabots.alerts.configuration import InhibitRule
from lotabots.alerts.matchers import Matcher
from lotabots.alerts.schemas import MAX_SEVERITY
from lotabots.db.base import as_utc

NotificationKind = Literal["firing", "resolved"]


def fingerprint(labels: Mapping[str, str]) -> str:
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class IncomingAlert:
    """An alert from any source, normalised: what the repository stores."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    event_at: datetime  # source time of this update; older updates than the stored one lose
    source: str
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        self.starts_at = as_utc(self.starts_at)
        self.ends_at = as_utc(self.ends_at) if self.ends_at else None
        self.event_at = as_utc(self.event_at)
        self.fingerprint = fingerprint(self.labels)

    @property
    def severity(self) -> str | None:
        value = self.labels.get("severity")
        return value[:MAX_SEVERITY] if value else None

    def is_firing(self, now: datetime) -> bool:
        return self.ends_at is None or self.ends_at > now


def normalise_posted(
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    starts_at: datetime | None,
    ends_at: datetime | None,
    *,
    now: datetime,
    resolve_timeout: float,
    source: str = "api",
) -> IncomingAlert:
    """Alertmanager's defaults for a posted alert.

    No start: now (or the end, if that is already past). No end: firing for `resolve_timeout`
    unless sent again (0: until resolved).
    """
    if starts_at is None:
        starts_at = ends_at if ends_at is not None and ends_at < now else now
    if ends_at is None and resolve_timeout > 0:
        ends_at = now + timedelta(seconds=resolve_timeout)
    return IncomingAlert(
        labels=dict(labels),
        annotations=dict(annotations),
        starts_at=starts_at,
        ends_at=ends_at,
        event_at=now,
        source=source,
    )


def dedupe(alerts: Iterable[IncomingAlert]) -> list[IncomingAlert]:
    """One update per fingerprint: the newest by source time (the later one on a tie), keeping
    the earliest start of updates that overlap it."""
    latest: dict[str, IncomingAlert] = {}
    for alert in alerts:
        seen = latest.get(alert.fingerprint)
        if seen is None:
            latest[alert.fingerprint] = alert
            continue
        newer, older = (alert, seen) if alert.event_at >= seen.event_at else (seen, alert)
        overlaps = older.ends_at is None or older.ends_at >= newer.starts_at
        if overlaps and older.starts_at < newer.starts_at:
            newer.starts_at = older.starts_at
        latest[alert.fingerprint] = newer
    return list(latest.values())


@dataclass(frozen=True)
class SilenceRule:
    id: str
    matchers: tuple[Matcher, ...]


class Silencer:
    def __init__(self, silences: Iterable[SilenceRule]) -> None:
        self._silences = list(silences)

    def mutes(self, labels: Mapping[str, str]) -> list[str]:
        return [s.id for s in self._silences if all(m.matches(labels) for m in s.matchers)]


class Inhibitor:
    """Inhibition over the currently firing alerts, indexed once per rule."""

    def __init__(self, rules: Sequence[InhibitRule], firing: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        self._rules = list(rules)
        # per rule: equal-label values → [(source fingerprint, source also matches targets)]
        self._index: list[dict[tuple[str, ...], list[tuple[str, bool]]]] = [
            defaultdict(list) for _ in self._rules
        ]
        if not self._rules:
            return
        for fp, labels in firing:
            for rule, index in zip(self._rules, self._index, strict=True):
                if all(m.matches(labels) for m in rule.source):
                    key = tuple(labels.get(name, "") for name in rule.equal)
                    index[key].append((fp, all(m.matches(labels) for m in rule.target)))

    def inhibited(self, fp: str, labels: Mapping[str, str]) -> bool:
        for rule, index in zip(self._rules, self._index, strict=True):
            if not all(m.matches(labels) for m in rule.target):
                continue
            two_sided = all(m.matches(labels) for m in rule.source)
            key = tuple(labels.get(name, "") for name in rule.equal)
            for source_fp, source_matches_target in index.get(key, ()):
                if source_fp == fp or (two_sided and source_matches_target):
                    continue
                return True
        return False


def decide(
    *,
    firing: set[str],
    resolved: set[str],
    notified_firing: set[str],
    notified_resolved: set[str],
    unacknowledged_firing: bool,
    send_resolved: bool,
    last_notified_at: datetime | None,
    repeat_interval: float,
    now: datetime,
) -> NotificationKind | None:
    """Alertmanager's dedup stage over one group's unmuted alerts (sets of alert ids)."""
    if not firing:
        # Everything announced before has resolved (or been muted): clear it.
        return "resolved" if notified_firing else None
    if not firing <= notified_firing:
        return "firing"
    if send_resolved and not resolved <= notified_resolved:
        return "firing"
    if not unacknowledged_firing:
        return None
    if last_notified_at is None or last_notified_at + timedelta(seconds=repeat_interval) <= now:
        return "firing"
    return None
