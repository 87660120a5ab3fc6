"""Grouping timers, dedup, repeat, resolution, silences, inhibition, the 10,000-alert flood and
concurrent flush runs: ingest → flush → notify queue → alert_notify (no Slack token: logged)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from lotabots.alerts import flush, service
from lotabots.alerts.engine import normalise_posted
from lotabots.alerts.models import AlertDelivery, AlertGroup, AlertNotification, AlertNotificationItem
from lotabots.alerts.schemas import MatcherIn, SilenceIn
from lotabots.db import session_scope
from tests.support import alerts_helpers
from tests.support.alerts_helpers import (
    AUDITOR,
    OPERATOR,
    notify_from_queue,
    receive_all,
    run_worker,
)
from tests.support.api import api_event, invoke

GROUP_WAIT = timedelta(seconds=30)  # default_config.yaml, root route
GROUP_INTERVAL = timedelta(minutes=5)

alerting = alerts_helpers.alerting  # the fixture


def _ingest(labels_list: list[dict[str, str]], now: datetime, **annotations: str) -> list[str]:
    alerts = [
        normalise_posted(labels, annotations, None, None, now=now, resolve_timeout=0)
        for labels in labels_list
    ]
    with session_scope() as session:
        result = service.ingest(session, alerts, now=now)
    return [a.id for a in result.alerts]


def _notifications() -> list[AlertNotification]:
    with session_scope() as session:
        return list(session.scalars(select(AlertNotification).order_by(AlertNotification.created_at)))


def _flush(at: datetime) -> flush.FlushReport:
    return flush.flush_due(now=at)


def test_group_waits_then_sends_one_logged_notification(alerting: dict[str, str]) -> None:
    t0 = datetime.now(UTC)
    ids = _ingest([{"alertname": "HighCPU", "source": "api", "host": "a"}], t0, summary="cpu hot")
    assert _flush(t0 + GROUP_WAIT - timedelta(seconds=1)).notifications == []

    report = _flush(t0 + GROUP_WAIT)
    assert len(report.notifications) == 1 and report.enqueued == 1
    messages = receive_all(alerting["NOTIFY_QUEUE_URL"])
    assert [json.loads(m["Body"]) for m in messages] == [{"notification_id": report.notifications[0]}]

    result = run_worker("alert_notify", _sqs([m["Body"] for m in messages]))
    assert result == {"batchItemFailures": []}
    status, _, log = invoke("alerts", api_event("GET", f"/alerts/{ids[0]}/deliveries", principal=AUDITOR))
    assert status == 200
    assert [(d["status"], d["method"], d["kind"]) for d in log["items"]] == [("logged", "log", "firing")]


def _sqs(bodies: list[str]) -> dict[str, Any]:
    from tests.support.alerts_helpers import sqs_event

    return sqs_event(bodies, queue="alert-notify")


def test_unchanged_group_is_quiet_until_repeat_interval_and_ack_stops_repeats(
    alerting: dict[str, str],
) -> None:
    t0 = datetime.now(UTC)
    labels = {"alertname": "Disk", "source": "api"}
    [alert_id] = _ingest([labels], t0)
    t1 = t0 + GROUP_WAIT
    assert len(_flush(t1).notifications) == 1
    assert notify_from_queue(alerting["NOTIFY_QUEUE_URL"]) == {"batchItemFailures": []}
    _ingest([labels], t1 + timedelta(seconds=10))  # the source sends it again: dedup, no change
    assert _flush(t1 + GROUP_INTERVAL).notifications == []
    repeat_at = t1 + timedelta(hours=4, minutes=1)
    assert len(_flush(repeat_at).notifications) == 1  # repeat_interval (4h) passed
    status, _, _ = invoke("alerts", api_event("POST", f"/alerts/{alert_id}/ack", principal=OPERATOR))
    assert status == 200
    assert _flush(repeat_at + timedelta(hours=5)).notifications == []


def test_new_alert_in_group_is_announced_at_next_interval(alerting: dict[str, str]) -> None:
    t0 = datetime.now(UTC)
    _ingest([{"alertname": "Disk", "source": "api", "host": "a"}], t0)
    t1 = t0 + GROUP_WAIT
    _flush(t1)
    _ingest([{"alertname": "Disk", "source": "api", "host": "b"}], t1 + timedelta(seconds=5))
    assert _flush(t1 + timedelta(seconds=60)).notifications == []  # group_interval not over
    report = _flush(t1 + GROUP_INTERVAL)
    assert len(report.notifications) == 1
    [_, second] = _notifications()
    assert second.payload["counts"]["firing"] == 2


def test_resolution_sends_resolved_notification_and_idles_the_group(alerting: dict[str, str]) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=10)  # resolved before Slack accepts the message
    [alert_id] = _ingest([{"alertname": "Gone", "source": "api"}], t0)
    t1 = t0 + GROUP_WAIT
    _flush(t1)
    notify_from_queue(alerting["NOTIFY_QUEUE_URL"])
    with session_scope() as session:
        service.resolve(session, alert_id, OPERATOR, "fixed", now=t1 + timedelta(seconds=1))
    report = _flush(t1 + GROUP_INTERVAL)
    assert len(report.notifications) == 1
    resolved = _notifications()[-1]
    assert resolved.kind == "resolved" and resolved.payload["counts"] == {
        "firing": 0,
        "resolved": 1,
        "acknowledged": 0,
    }
    # The resolved alert stays in the group until Slack has accepted the message announcing it.
    assert _members() == {alert_id: "firing"}
    notify_from_queue(alerting["NOTIFY_QUEUE_URL"])
    assert _members() == {}
    with session_scope() as session:
        group = session.scalars(select(AlertGroup)).one()
        assert group.next_flush_at is None  # idle until an alert arrives
    assert _flush(t1 + 3 * GROUP_INTERVAL).notifications == []


def _members() -> dict[str, str | None]:
    from lotabots.alerts.models import AlertGroupMember

    with session_scope() as session:
        return {m.alert_id: m.notified_state for m in session.scalars(select(AlertGroupMember))}


def test_an_announcement_slack_never_showed_is_dropped_when_the_alert_resolves(
    alerting: dict[str, str],
) -> None:
    """Alertmanager's semantics with accepted-only bookkeeping: no resolved message for a
    firing message that never reached Slack; the undone firing one is superseded."""
    t0 = datetime.now(UTC)
    [alert_id] = _ingest([{"alertname": "NeverShown", "source": "api"}], t0)
    t1 = t0 + GROUP_WAIT
    [firing] = _flush(t1).notifications
    assert _members() == {alert_id: None}  # not notified: Slack has not accepted anything yet
    with session_scope() as session:
        service.resolve(session, alert_id, OPERATOR, None, now=t1 + timedelta(seconds=1))
    assert _flush(t1 + GROUP_INTERVAL).notifications == []
    [row] = _notifications()
    assert row.id == firing and row.status == "superseded" and row.next_attempt_at is None
    assert notify_from_queue(alerting["NOTIFY_QUEUE_URL"]) == {"batchItemFailures": []}  # the late message
    with session_scope() as session:
        assert list(session.scalars(select(AlertDelivery.status))) == ["superseded"]


def test_alert_that_fires_and_resolves_within_group_wait_sends_nothing(alerting: dict[str, str]) -> None:
    t0 = datetime.now(UTC)
    [alert_id] = _ingest([{"alertname": "Blip", "source": "api"}], t0)
    with session_scope() as session:
        service.resolve(session, alert_id, OPERATOR, None, now=t0 + timedelta(seconds=5))
    assert _flush(t0 + GROUP_WAIT).notifications == []


def test_silence_mutes_until_it_expires(alerting: dict[str, str]) -> None:
    t0 = datetime.now(UTC)
    with session_scope() as session:
        silence = service.create_silence(
            session,
            SilenceIn(
                matchers=[MatcherIn(name="alertname", value="Noisy")],
                starts_at=t0,
                ends_at=t0 + timedelta(hours=1),
                comment="known issue",
            ),
            OPERATOR,
            now=t0,
        )
    _ingest([{"alertname": "Noisy", "source": "api"}], t0)
    assert _flush(t0 + GROUP_WAIT).notifications == []
    with session_scope() as session:
        service.expire_silence(session, silence.id, OPERATOR, now=t0 + timedelta(minutes=1))
    # The group keeps ticking every group_interval; the unmuted alert is now new to it.
    assert len(_flush(t0 + GROUP_WAIT + GROUP_INTERVAL).notifications) == 1


def test_silencing_an_announced_alert_sends_no_resolved_message(alerting: dict[str, str]) -> None:
    t0 = datetime.now(UTC)
    _ingest([{"alertname": "Announced", "source": "api"}], t0)
    assert len(_flush(t0 + GROUP_WAIT).notifications) == 1
    with session_scope() as session:
        service.create_silence(
            session,
            SilenceIn(
                matchers=[MatcherIn(name="alertname", value="Announced")],
                starts_at=t0,
                ends_at=t0 + timedelta(hours=1),
                comment="muted after the page",
            ),
            OPERATOR,
            now=t0 + GROUP_WAIT,
        )
    assert _flush(t0 + GROUP_WAIT + GROUP_INTERVAL).notifications == []


def test_critical_alert_inhibits_matching_warning(alerting: dict[str, str]) -> None:
    t0 = datetime.now(UTC)
    _ingest(
        [
            {"alertname": "Latency", "source": "api", "severity": "critical"},
            {"alertname": "Latency", "source": "api", "severity": "warning"},
            {"alertname": "Other", "source": "api", "severity": "warning"},
        ],
        t0,
    )
    _flush(t0 + GROUP_WAIT)
    sent = {
        n.payload["firing"][0]["labels"]["alertname"] + "/" + n.payload["firing"][0]["labels"]["severity"]
        for n in _notifications()
    }
    assert sent == {"Latency/critical", "Other/warning"}
    status, _, listing = invoke(
        "alerts", api_event("GET", "/alerts", principal=AUDITOR, query={"state": "inhibited"})
    )
    assert status == 200
    assert [(a["labels"]["alertname"], a["labels"]["severity"]) for a in listing["items"]] == [
        ("Latency", "warning")
    ]


def test_routing_sends_critical_to_its_channel_with_its_own_group_wait(alerting: dict[str, str]) -> None:
    t0 = datetime.now(UTC)
    _ingest([{"alertname": "DBDown", "source": "api", "severity": "critical"}], t0)
    report = _flush(t0 + timedelta(seconds=10))  # the critical route waits 10 s
    assert len(report.notifications) == 1
    assert _notifications()[0].channel == "#lotabots-critical"


def test_flood_of_10000_alerts_is_one_summarised_notification(alerting: dict[str, str]) -> None:
    body = [
        {"labels": {"alertname": "Flood", "source": "api", "instance": f"i-{i:05d}"}} for i in range(10_000)
    ]
    started = time.perf_counter()
    status, _, result = invoke("alerts", api_event("POST", "/alerts", body=body, principal=OPERATOR))
    elapsed = time.perf_counter() - started
    assert status == 200, result
    assert result["created"] == 10_000
    assert elapsed < 30, f"ingesting 10,000 alerts took {elapsed:.1f} s"

    report = _flush(datetime.now(UTC) + GROUP_WAIT)
    assert len(report.notifications) == 1
    [notification] = _notifications()
    assert notification.payload["counts"]["firing"] == 10_000
    assert len(notification.payload["firing"]) == 10  # max_alerts_per_message
    with session_scope() as session:
        items = session.scalar(select(func.count()).select_from(AlertNotificationItem))
    assert items == 10_000  # every alert's delivery log knows about the message
    assert notify_from_queue(alerting["NOTIFY_QUEUE_URL"]) == {"batchItemFailures": []}
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(AlertDelivery)) == 1


def test_overlapping_flush_runs_never_notify_twice(alerting: dict[str, str]) -> None:
    t0 = datetime.now(UTC)
    _ingest([{"alertname": f"Race{i}", "source": "api"} for i in range(20)], t0)
    at = t0 + GROUP_WAIT
    reports: list[flush.FlushReport] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            reports.append(flush.flush_due(now=at, enqueue=False))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(r.groups_claimed for r in reports) == 20
    assert len(_notifications()) == 20
    assert len({n.group_id for n in _notifications()}) == 20


def test_concurrent_ingests_of_the_same_new_alerts_both_succeed(alerting: dict[str, str]) -> None:
    from lotabots.alerts.models import Alert, AlertGroupMember

    t0 = datetime.now(UTC)
    labels = [{"alertname": "Both", "source": "api", "n": str(i)} for i in range(50)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            _ingest(labels, t0)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 50
        assert session.scalar(select(func.count()).select_from(AlertGroupMember)) == 50


def test_notification_left_pending_by_a_failed_enqueue_is_sent_by_the_next_run(
    alerting: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lotabots import config

    t0 = datetime.now(UTC)
    _ingest([{"alertname": "Outbox", "source": "api"}], t0)
    monkeypatch.setenv("NOTIFY_QUEUE_URL", alerting["NOTIFY_QUEUE_URL"] + "-missing")
    config.reset()
    with pytest.raises(Exception, match=r"NonExistentQueue|QueueDoesNotExist|does not exist"):
        _flush(t0 + GROUP_WAIT)
    [pending] = _notifications()
    assert pending.status == "pending"  # committed with the group's state, not lost
    monkeypatch.setenv("NOTIFY_QUEUE_URL", alerting["NOTIFY_QUEUE_URL"])
    config.reset()
    report = _flush(t0 + GROUP_WAIT + timedelta(seconds=1))
    assert report.notifications == [] and report.enqueued == 1
    assert [json.loads(m["Body"])["notification_id"] for m in receive_all(alerting["NOTIFY_QUEUE_URL"])] == [
        pending.id
    ]


def test_flush_function_runs_on_the_schedule_event(alerting: dict[str, str]) -> None:
    t0 = datetime.now(UTC) - GROUP_WAIT - timedelta(seconds=1)
    _ingest([{"alertname": "Scheduled", "source": "api"}], t0)
    scheduled = {
        "version": "0",
        "id": "1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/flush-alert-groups"],
        "detail": {},
    }
    result = run_worker("alert_flush", scheduled)
    assert result["notifications"] == 1 and result["enqueued"] == 1
