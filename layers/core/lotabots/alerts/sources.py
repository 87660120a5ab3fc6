"""Events from EventBridge, normalised into alerts.

- `aws.cloudwatch` "CloudWatch Alarm State Change": ALARM fires, OK resolves (at the state
  timestamp); INSUFFICIENT_DATA changes nothing. Labels `alertname=<alarmName>`,
  `source=cloudwatch`, `severity` from the alarm name (a `critical`/`crit`/`p1`/`sev1` word →
  critical, `warning`/`warn`/`p2`/`sev2` → warning, `info`/`p3`/`sev3` → info, else warning);
  annotations carry the reason and description. DLQ-depth alarms arrive this way.
- `lotabots.jobs` "GpuJobFailed" {job_id, type, backend, error}: one alert per failed job.
- `lotabots.attestation` "AttestationFailed" and `lotabots.aiops` "AIOpsFinding": alerts from
  their detail's identifying fields, with optional `labels`, `annotations`, `severity` and
  `status: resolved` in the detail.

Failure events stay firing until an operator acknowledges or resolves them (or the source
sends `status: resolved`); acknowledged alerts stop repeat notifications.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lotabots.alerts.engine import IncomingAlert
from lotabots.alerts.matchers import LABEL_NAME
from lotabots.alerts.schemas import MAX_ANNOTATION_VALUE, MAX_LABEL_VALUE, MAX_SEVERITY
from lotabots.db.base import as_utc

CLOUDWATCH_ALARM = ("aws.cloudwatch", "CloudWatch Alarm State Change")
GPU_JOB_FAILED = ("lotabots.jobs", "GpuJobFailed")
ATTESTATION_FAILED = ("lotabots.attestation", "AttestationFailed")
AIOPS_FINDING = ("lotabots.aiops", "AIOpsFinding")

_SEVERITY_WORDS = {
    "critical": "critical",
    "crit": "critical",
    "sev1": "critical",
    "p1": "critical",
    "warning": "warning",
    "warn": "warning",
    "sev2": "warning",
    "p2": "warning",
    "info": "info",
    "sev3": "info",
    "p3": "info",
}
DEFAULT_ALARM_SEVERITY = "warning"
# Scalar detail fields that identify what failed: they become labels (so each failure is its
# own alert); everything else readable becomes an annotation.
_IDENTITY_FIELDS = (
    "job_id",
    "type",
    "backend",
    "attestation_id",
    "subject",
    "subject_id",
    "policy",
    "policy_id",
    "finding_id",
    "kind",
    "resource",
    "service",
    "function",
    "model",
    "device",
)
_TEXT_FIELDS = ("summary", "description", "error", "reason", "message", "details", "correlation_id")


class UnsupportedEvent(ValueError):
    """An event that stands for no alert change (INSUFFICIENT_DATA, unknown type): dropped."""


class InvalidEvent(ValueError):
    """A known event type whose detail is unusable: it fails, is retried and ends in the DLQ."""


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="ignore")
    value: str
    reason: str = ""
    timestamp: datetime | None = None


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    alarm_name: str = Field(alias="alarmName", min_length=1)
    state: AlarmState
    previous_state: AlarmState | None = Field(None, alias="previousState")
    configuration: dict[str, Any] = Field(default_factory=dict)


class GpuJobFailedDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    job_id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    backend: str = Field(min_length=1)
    error: str = ""


def alarm_severity(alarm_name: str) -> str:
    for word in re.split(r"[^a-z0-9]+", alarm_name.lower()):
        if word in _SEVERITY_WORDS:
            return _SEVERITY_WORDS[word]
    return DEFAULT_ALARM_SEVERITY


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


def _from_alarm(event: EventBridgeModel) -> list[IncomingAlert]:
    detail = AlarmDetail.model_validate(event.detail)
    state = detail.state.value.upper()
    at = as_utc(detail.state.timestamp or event.time)
    labels = {
        "alertname": detail.alarm_name[:MAX_LABEL_VALUE],
        "source": "cloudwatch",
        "severity": alarm_severity(detail.alarm_name),
    }
    annotations = {"reason": detail.state.reason, "state": state}
    description = detail.configuration.get("description")
    if description:
        annotations["description"] = _text(description, MAX_ANNOTATION_VALUE)
    if event.resources:
        annotations["alarm_arn"] = event.resources[0]
    annotations["region"] = event.region
    annotations["account"] = event.account
    if state == "ALARM":
        return [
            IncomingAlert(labels, annotations, starts_at=at, ends_at=None, event_at=at, source="cloudwatch")
        ]
    if state == "OK":
        started = detail.previous_state.timestamp if detail.previous_state else None
        starts = as_utc(started) if started and started <= at else at
        return [
            IncomingAlert(labels, annotations, starts_at=starts, ends_at=at, event_at=at, source="cloudwatch")
        ]
    raise UnsupportedEvent(f"alarm state {state} changes no alert")


def _from_job_failure(event: EventBridgeModel) -> list[IncomingAlert]:
    detail = GpuJobFailedDetail.model_validate(event.detail)
    at = as_utc(event.time)
    labels = {
        "alertname": "GpuJobFailed",
        "source": "jobs",
        "severity": "warning",
        "job_id": detail.job_id[:MAX_LABEL_VALUE],
        "job_type": detail.type[:MAX_LABEL_VALUE],
        "backend": detail.backend[:MAX_LABEL_VALUE],
    }
    annotations = {"summary": f"GPU job {detail.job_id} ({detail.type} on {detail.backend}) failed"}
    if detail.error:
        annotations["error"] = _text(detail.error, MAX_ANNOTATION_VALUE)
    extra = detail.model_extra or {}
    if extra.get("correlation_id"):
        annotations["correlation_id"] = _text(extra["correlation_id"], 200)
    return [IncomingAlert(labels, annotations, starts_at=at, ends_at=None, event_at=at, source="jobs")]


def _string_map(value: Any, *, limit: int) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {
        str(k): _text(v, limit)
        for k, v in value.items()
        if LABEL_NAME.match(str(k)) and isinstance(v, str | int | float | bool) and str(v) != ""
    }


def _from_generic(
    event: EventBridgeModel, *, alertname: str, source: str, severity: str
) -> list[IncomingAlert]:
    detail = event.detail if isinstance(event.detail, Mapping) else {}
    at = as_utc(event.time)
    labels: dict[str, str] = {"alertname": alertname, "source": source, "severity": severity}
    for name in _IDENTITY_FIELDS:
        value = detail.get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value) != "":
            labels[name] = str(value)[:MAX_LABEL_VALUE]
    labels.update(_string_map(detail.get("labels"), limit=MAX_LABEL_VALUE))
    if isinstance(detail.get("alertname"), str) and detail["alertname"]:
        labels["alertname"] = detail["alertname"][:MAX_LABEL_VALUE]
    if isinstance(detail.get("severity"), str) and detail["severity"]:
        labels["severity"] = detail["severity"].lower()[:MAX_SEVERITY]
    annotations = {
        name: _text(detail[name], MAX_ANNOTATION_VALUE)
        for name in _TEXT_FIELDS
        if detail.get(name) not in (None, "")
    }
    annotations.update(_string_map(detail.get("annotations"), limit=MAX_ANNOTATION_VALUE))
    resolved = str(detail.get("status", "")).lower() in ("resolved", "ok", "cleared")
    return [
        IncomingAlert(
            labels,
            annotations,
            starts_at=at,
            ends_at=at if resolved else None,
            event_at=at,
            source=source,
        )
    ]


def from_event(event: EventBridgeModel) -> list[IncomingAlert]:
    """The alerts an EventBridge event stands for; UnsupportedEvent for anything else."""
    kind = (event.source, event.detail_type)
    try:
        if kind == CLOUDWATCH_ALARM:
            return _from_alarm(event)
        if kind == GPU_JOB_FAILED:
            return _from_job_failure(event)
        if kind == ATTESTATION_FAILED:
            return _from_generic(
                event, alertname="AttestationFailed", source="attestation", severity="critical"
            )
        if kind == AIOPS_FINDING:
            return _from_generic(event, alertname="AIOpsFinding", source="aiops", severity="warning")
    except ValidationError as exc:
        raise InvalidEvent(f"{event.detail_type} event has an unusable detail: {exc.errors()}") from None
    raise UnsupportedEvent(f"no alert mapping for {event.source} / {event.detail_type}")
