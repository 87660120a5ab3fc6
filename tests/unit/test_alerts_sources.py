"""Event → alert mapping: CloudWatch alarms, failed GPU jobs, attestation failures, findings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from lotabots.alerts import sources


def _event(source: str, detail_type: str, detail: dict[str, Any]) -> EventBridgeModel:
    return EventBridgeModel.model_validate(
        {
            "version": "0",
            "id": "1",
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": "2026-11-25T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


@pytest.mark.parametrize(
    ("name", "severity"),
    [
        ("api-5xx-critical", "critical"),
        ("CRIT_queue_depth", "critical"),
        ("p1-db-down", "critical"),
        ("disk-warn", "warning"),
        ("sev3.cost", "info"),
        ("lotabots-prod-alert-notify-dlq-not-empty", "warning"),
        ("criticality-score", "warning"),  # whole words only
    ],
)
def test_alarm_severity_from_name(name: str, severity: str) -> None:
    assert sources.alarm_severity(name) == severity


def test_alarm_fires_and_resolves() -> None:
    state = {"value": "ALARM", "reason": "r", "timestamp": "2026-11-25T10:00:01.000+0000"}
    [firing] = sources.from_event(
        _event("aws.cloudwatch", "CloudWatch Alarm State Change", {"alarmName": "a", "state": state})
    )
    assert firing.labels == {"alertname": "a", "source": "cloudwatch", "severity": "warning"}
    assert firing.ends_at is None and firing.starts_at == datetime(2026, 11, 25, 10, 0, 1, tzinfo=UTC)
    ok = {"value": "OK", "reason": "back", "timestamp": "2026-11-25T10:05:00.000+0000"}
    [resolved] = sources.from_event(
        _event(
            "aws.cloudwatch",
            "CloudWatch Alarm State Change",
            {"alarmName": "a", "state": ok, "previousState": state},
        )
    )
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.ends_at == datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
    assert resolved.starts_at == firing.starts_at


def test_insufficient_data_and_unknown_types_are_ignored() -> None:
    state = {"value": "INSUFFICIENT_DATA", "reason": ""}
    with pytest.raises(sources.UnsupportedEvent):
        sources.from_event(
            _event("aws.cloudwatch", "CloudWatch Alarm State Change", {"alarmName": "a", "state": state})
        )
    with pytest.raises(sources.UnsupportedEvent):
        sources.from_event(_event("lotabots.documents", "DocumentIngested", {}))


def test_unusable_details_are_invalid() -> None:
    with pytest.raises(sources.InvalidEvent):
        sources.from_event(
            _event("aws.cloudwatch", "CloudWatch Alarm State Change", {"state": {"value": "ALARM"}})
        )
    with pytest.raises(sources.InvalidEvent):
        sources.from_event(_event("lotabots.jobs", "GpuJobFailed", {"job_id": "1"}))


def test_generic_detail_maps_identity_to_labels_and_text_to_annotations() -> None:
    detail = {
        "finding_id": "f1",
        "severity": "CRITICAL",
        "summary": "s",
        "labels": {"service": "api", "bad-key": "x", "nested": {"no": 1}},
        "annotations": {"runbook": "https://r"},
        "score": 0.93,
    }
    [alert] = sources.from_event(_event("lotabots.aiops", "AIOpsFinding", detail))
    assert alert.labels == {
        "alertname": "AIOpsFinding",
        "source": "aiops",
        "severity": "critical",
        "finding_id": "f1",
        "service": "api",
    }
    assert alert.annotations == {"summary": "s", "runbook": "https://r"}
