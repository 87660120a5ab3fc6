"""Alertmanager semantics without a database: fingerprints, defaults, dedup, silences,
inhibition and the notify decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lotabots.alerts.configuration import InhibitRule
from lotabots.alerts.engine import (
    IncomingAlert,
    Inhibitor,
    Silencer,
    SilenceRule,
    decide,
    dedupe,
    fingerprint,
    normalise_posted,
)
from lotabots.alerts.flush import notification_id
from lotabots.alerts.matchers import Matcher

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_fingerprint_is_the_hash_of_the_sorted_label_set() -> None:
    a = fingerprint({"b": "2", "a": "1"})
    assert a == fingerprint({"a": "1", "b": "2"})
    assert len(a) == 64 and a != fingerprint({"a": "1", "b": "3"})
    assert fingerprint({"a": "1b"}) != fingerprint({"a1": "b"})


def test_posted_alert_defaults() -> None:
    alert = normalise_posted({"a": "1"}, {}, None, None, now=NOW, resolve_timeout=300)
    assert alert.starts_at == NOW and alert.ends_at == NOW + timedelta(minutes=5)
    assert normalise_posted({"a": "1"}, {}, None, None, now=NOW, resolve_timeout=0).ends_at is None
    ended = NOW - timedelta(minutes=1)
    past = normalise_posted({"a": "1"}, {}, None, ended, now=NOW, resolve_timeout=300)
    assert past.starts_at == ended and not past.is_firing(NOW)


def test_dedupe_keeps_the_newest_update_and_the_earliest_start() -> None:
    older = IncomingAlert(
        {"a": "1"}, {"v": "old"}, NOW - timedelta(minutes=5), None, NOW - timedelta(minutes=5), "api"
    )
    newer = IncomingAlert({"a": "1"}, {"v": "new"}, NOW, None, NOW, "api")
    [kept] = dedupe([newer, older])
    assert kept.annotations == {"v": "new"} and kept.starts_at == NOW - timedelta(minutes=5)


def test_silencer_needs_every_matcher() -> None:
    silencer = Silencer([SilenceRule("s1", (Matcher.parse('team="db"'), Matcher.parse('env=~"prod|stage"')))])
    assert silencer.mutes({"team": "db", "env": "prod"}) == ["s1"]
    assert silencer.mutes({"team": "db", "env": "dev"}) == []


RULE = InhibitRule(
    source=(Matcher.parse('severity="critical"'),),
    target=(Matcher.parse('severity="warning"'),),
    equal=("alertname",),
)


def test_inhibition_needs_a_firing_source_with_equal_labels() -> None:
    critical = {"alertname": "Latency", "severity": "critical"}
    inhibitor = Inhibitor([RULE], [(fingerprint(critical), critical)])
    assert inhibitor.inhibited("t", {"alertname": "Latency", "severity": "warning"})
    assert not inhibitor.inhibited("t", {"alertname": "Other", "severity": "warning"})
    assert not inhibitor.inhibited(fingerprint(critical), critical)  # not a target
    assert not Inhibitor([RULE], []).inhibited("t", {"alertname": "Latency", "severity": "warning"})


def test_an_alert_never_inhibits_itself_and_two_sided_matches_are_excluded() -> None:
    both = InhibitRule(source=(Matcher.parse('team="x"'),), target=(Matcher.parse('team="x"'),), equal=())
    one = {"team": "x", "n": "1"}
    two = {"team": "x", "n": "2"}
    inhibitor = Inhibitor([both], [(fingerprint(one), one), (fingerprint(two), two)])
    assert not inhibitor.inhibited(fingerprint(one), one)
    assert not inhibitor.inhibited(fingerprint(two), two)


def _decide(**overrides: object) -> str | None:
    args: dict[str, object] = {
        "firing": {"a"},
        "resolved": set(),
        "notified_firing": {"a"},
        "notified_resolved": set(),
        "unacknowledged_firing": True,
        "send_resolved": True,
        "last_notified_at": NOW - timedelta(minutes=5),
        "repeat_interval": 3600.0,
        "now": NOW,
    }
    args.update(overrides)
    return decide(**args)  # type: ignore[arg-type]


def test_decide_new_firing_alert_notifies() -> None:
    assert _decide(notified_firing=set(), last_notified_at=None) == "firing"
    assert _decide(firing={"a", "b"}) == "firing"


def test_decide_nothing_changed_waits_for_repeat_interval() -> None:
    assert _decide() is None
    assert _decide(last_notified_at=NOW - timedelta(hours=1)) == "firing"
    assert _decide(last_notified_at=NOW - timedelta(hours=2), unacknowledged_firing=False) is None


def test_decide_resolutions() -> None:
    assert _decide(firing=set(), resolved={"a"}) == "resolved"
    assert _decide(firing=set(), resolved={"a"}, notified_firing=set()) is None  # never announced
    assert _decide(firing={"b"}, resolved={"a"}, notified_firing={"a", "b"}) == "firing"
    assert _decide(firing={"b"}, resolved={"a"}, notified_firing={"a", "b"}, send_resolved=False) is None


def test_notification_ids_are_deterministic_per_group_tick() -> None:
    assert notification_id("g1", 3) == notification_id("g1", 3)
    assert notification_id("g1", 3) != notification_id("g1", 4) != notification_id("g2", 3)
    assert len(notification_id("g1", 3)) == 32
