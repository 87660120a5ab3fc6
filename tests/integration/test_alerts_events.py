"""alert_ingest: CloudWatch alarms fire and resolve alerts, failed GPU jobs / attestation
failures / AIOps findings become alerts; redelivered or late events change nothing; unusable
events fail to the DLQ path; an EventBridge rule carries events to the queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lotabots import aws
from lotabots.alerts.models import Alert, AlertGroupMember
from lotabots.db import session_scope
from tests.support import alerts_helpers
from tests.support.alerts_helpers import (
    alarm_event,
    eventbridge_event,
    receive_all,
    run_worker,
    sqs_event,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"

alerting = alerts_helpers.alerting  # the fixture


def _ingest(*events: Any) -> dict[str, Any]:
    return run_worker("alert_ingest", sqs_event(list(events), queue="alert-events"))


def _alerts() -> list[Alert]:
    with session_scope() as session:
        return list(session.scalars(select(Alert).order_by(Alert.created_at)))


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def test_sample_alarm_events_fire_then_resolve(alerting: dict[str, str]) -> None:
    assert _ingest(_load("alarm_state_alarm.json")) == {"batchItemFailures": []}
    [alert] = _alerts()
    assert alert.labels == {
        "alertname": "lotabots-prod-api-5xx-critical",
        "source": "cloudwatch",
        "severity": "critical",
    }
    assert alert.ends_at is None and alert.annotations["reason"].startswith("Threshold Crossed")
    assert alert.starts_at == datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=UTC)
    with session_scope() as session:
        assert session.scalar(select(AlertGroupMember.alert_id)) == alert.id  # grouped for notification

    assert _ingest(_load("alarm_state_ok.json")) == {"batchItemFailures": []}
    [resolved] = _alerts()
    assert resolved.ends_at == datetime(2026, 11, 25, 10, 20, 0, 789000, tzinfo=UTC)
    assert resolved.starts_at == alert.starts_at


def test_late_alarm_event_does_not_reopen_a_resolved_alert(alerting: dict[str, str]) -> None:
    at = datetime.now(UTC) - timedelta(minutes=10)
    _ingest(alarm_event("queue-depth", "ALARM", at=at))
    _ingest(alarm_event("queue-depth", "OK", at=at + timedelta(minutes=2)))
    _ingest(alarm_event("queue-depth", "ALARM", at=at + timedelta(minutes=1)))  # delivered late
    [alert] = _alerts()
    assert alert.ends_at is not None and alert.ends_at <= datetime.now(UTC)


def test_redelivered_event_is_one_alert(alerting: dict[str, str]) -> None:
    event = alarm_event("disk-warning", "ALARM")
    assert _ingest(event, event) == {"batchItemFailures": []}
    assert _ingest(event) == {"batchItemFailures": []}
    assert len(_alerts()) == 1
    assert _alerts()[0].labels["severity"] == "warning"


def test_insufficient_data_changes_nothing(alerting: dict[str, str]) -> None:
    assert _ingest(alarm_event("x", "INSUFFICIENT_DATA")) == {"batchItemFailures": []}
    assert _alerts() == []


def test_gpu_job_failure_becomes_an_alert_per_job(alerting: dict[str, str]) -> None:
    event = _load("alerts_gpu_job_failed.json")
    other = json.loads(json.dumps(event))
    other["detail"]["job_id"] = "another-job"
    assert _ingest(event, other) == {"batchItemFailures": []}
    alerts = _alerts()
    assert len(alerts) == 2
    first = next(a for a in alerts if a.labels["job_id"] == "8f14e45fceea167a5a36dedd4bea2543")
    assert first.labels == {
        "alertname": "GpuJobFailed",
        "source": "jobs",
        "severity": "warning",
        "job_id": "8f14e45fceea167a5a36dedd4bea2543",
        "job_type": "embedding",
        "backend": "modal",
    }
    assert "out of memory" in first.annotations["error"]
    assert first.ends_at is None  # stays until acknowledged or resolved


def test_attestation_failure_and_aiops_finding(alerting: dict[str, str]) -> None:
    assert _ingest(_load("alerts_attestation_failed.json"), _load("alerts_aiops_finding.json")) == {
        "batchItemFailures": []
    }
    by_name = {a.labels["alertname"]: a for a in _alerts()}
    attestation = by_name["AttestationFailed"]
    assert attestation.labels["severity"] == "critical" and attestation.labels["device"] == "GPU-1f2e3d4c"
    assert attestation.annotations["reason"] == "ECC disabled on GPU-1f2e3d4c"
    finding = by_name["AIOpsFinding"]
    assert finding.labels["service"] == "documents" and finding.severity == "warning"
    resolved = _load("alerts_aiops_finding.json")
    resolved["detail"]["status"] = "resolved"
    resolved["time"] = "2026-11-25T11:30:00Z"
    _ingest(resolved)
    finding = {a.labels["alertname"]: a for a in _alerts()}["AIOpsFinding"]
    assert finding.ends_at == datetime(2026, 11, 25, 11, 30, tzinfo=UTC)


def test_unusable_events_fail_and_good_ones_in_the_batch_succeed(alerting: dict[str, str]) -> None:
    broken_job = eventbridge_event("lotabots.jobs", "GpuJobFailed", {"error": "no job id"})
    event = sqs_event(["not json", broken_job, alarm_event("fine", "ALARM")], queue="alert-events")
    result = run_worker("alert_ingest", event)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed == {event["Records"][0]["messageId"], event["Records"][1]["messageId"]}
    assert [a.labels["alertname"] for a in _alerts()] == ["fine"]


def test_eventbridge_rule_routes_alarm_events_to_the_alert_queue(alerting: dict[str, str]) -> None:
    event = _load("alarm_state_alarm.json")
    aws.client("events").put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event["resources"],
            }
        ]
    )
    messages = receive_all(alerting["ALERT_EVENTS_QUEUE_URL"])
    assert len(messages) == 1
    assert _ingest(messages[0]["Body"]) == {"batchItemFailures": []}
    assert [a.labels["alertname"] for a in _alerts()] == ["lotabots-prod-api-5xx-critical"]


def test_sample_sqs_events_run_through_the_handlers(alerting: dict[str, str]) -> None:
    assert run_worker("alert_ingest", _load("alerts_ingest_sqs.json")) == {"batchItemFailures": []}
    assert len(_alerts()) == 2
    # The sample notify event names a notification that does not exist: it must fail, not vanish.
    assert len(run_worker("alert_notify", _load("alerts_notify_sqs.json"))["batchItemFailures"]) == 1
    # The sample alarm started long ago: its group is announced without waiting for group_wait.
    assert run_worker("alert_flush", _load("alerts_flush_schedule.json"))["notifications"] >= 1
