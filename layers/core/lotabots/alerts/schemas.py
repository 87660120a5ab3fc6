"""API contract of the alerting endpoints (pydantic models = the OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    field_validator,
    model_validator,
)

from lotabots.alerts.matchers import LABEL_NAME, Matcher, MatcherError
from lotabots.timestamps import AwareUtcDateTime

MAX_LABELS = 64
MAX_LABEL_VALUE = 1024
MAX_SEVERITY = 64
MAX_ANNOTATIONS = 64
MAX_ANNOTATION_VALUE = 256 * 1024
MAX_ALERTS_PER_REQUEST = 10_000

AlertState = Literal["firing", "acknowledged", "silenced", "inhibited", "resolved"]
AlertStateFilter = Literal["active", "firing", "acknowledged", "silenced", "inhibited", "resolved", "all"]
SilenceState = Literal["pending", "active", "expired"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AlertIn(_In):
    """One alert. Severity is the `severity` label; times are RFC 3339 with an offset."""

    labels: dict[str, str] = Field(
        description="Identity of the alert; at least one label. The fingerprint is their hash.",
        examples=[{"alertname": "HighLatency", "severity": "warning", "service": "api"}],
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, examples=[{"summary": "p99 latency above 2 s", "runbook": "https://…"}]
    )
    starts_at: AwareUtcDateTime | None = Field(None, validation_alias=AliasChoices("starts_at", "startsAt"))
    ends_at: AwareUtcDateTime | None = Field(None, validation_alias=AliasChoices("ends_at", "endsAt"))
    generator_url: str | None = Field(
        None, max_length=2048, validation_alias=AliasChoices("generator_url", "generatorURL")
    )

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, value: dict[str, str]) -> dict[str, str]:
        # As in Alertmanager, an empty value means the label is absent.
        labels = {k: v for k, v in value.items() if v != ""}
        if not labels:
            raise ValueError("an alert needs at least one label with a value (e.g. alertname)")
        if len(labels) > MAX_LABELS:
            raise ValueError(f"an alert may have at most {MAX_LABELS} labels")
        for name, label_value in labels.items():
            if not LABEL_NAME.match(name):
                raise ValueError(f"invalid label name {name!r}: use letters, digits and underscores")
            if len(label_value) > MAX_LABEL_VALUE:
                raise ValueError(f"label {name!r} is longer than {MAX_LABEL_VALUE} characters")
        if len(labels.get("severity", "")) > MAX_SEVERITY:
            raise ValueError(f"the severity label is longer than {MAX_SEVERITY} characters")
        return labels

    @field_validator("annotations")
    @classmethod
    def _valid_annotations(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_ANNOTATIONS:
            raise ValueError(f"an alert may have at most {MAX_ANNOTATIONS} annotations")
        for name, text in value.items():
            if not LABEL_NAME.match(name):
                raise ValueError(f"invalid annotation name {name!r}: use letters, digits and underscores")
            if len(text) > MAX_ANNOTATION_VALUE:
                raise ValueError(f"annotation {name!r} is longer than {MAX_ANNOTATION_VALUE} characters")
        return value

    @model_validator(mode="after")
    def _ends_after_starts(self) -> AlertIn:
        if self.starts_at and self.ends_at and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        return self


class AlertBatch(RootModel[list[AlertIn]]):
    """Several alerts in one request (as Alertmanager's POST /api/v2/alerts takes them)."""

    root: list[AlertIn] = Field(min_length=1, max_length=MAX_ALERTS_PER_REQUEST)


class AcceptedAlert(BaseModel):
    id: str
    fingerprint: str
    state: Literal["firing", "resolved", "ignored"] = Field(
        description="ignored: an update older than the last one applied to this alert"
    )


class PostAlertsResult(BaseModel):
    accepted: int
    created: int
    updated: int
    ignored: int
    alerts: list[AcceptedAlert]


class AlertOut(BaseModel):
    id: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    severity: str | None
    source: str
    state: AlertState
    starts_at: datetime
    ends_at: datetime | None
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_by: str | None
    silenced_by: list[str] = Field(description="ids of the active silences that mute this alert")
    inhibited: bool


class AlertList(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` to get the next page")


class AlertActionIn(_In):
    comment: str | None = Field(None, max_length=1000)


class MatcherIn(_In):
    name: str = Field(min_length=1, max_length=100)
    value: str = Field(max_length=1024)
    isRegex: bool = False
    isEqual: bool = True

    def to_matcher(self) -> Matcher:
        return Matcher.create(self.name, self.value, is_regex=self.isRegex, is_equal=self.isEqual)

    @model_validator(mode="after")
    def _compiles(self) -> MatcherIn:
        try:
            self.to_matcher()
        except MatcherError as exc:
            raise ValueError(str(exc)) from None
        return self


class SilenceIn(_In):
    matchers: list[MatcherIn] = Field(min_length=1, max_length=32)
    starts_at: AwareUtcDateTime | None = Field(
        None, description="default: now", validation_alias=AliasChoices("starts_at", "startsAt")
    )
    ends_at: AwareUtcDateTime = Field(validation_alias=AliasChoices("ends_at", "endsAt"))
    comment: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _sane(self) -> SilenceIn:
        now = datetime.now(UTC)
        starts = self.starts_at or now
        if self.ends_at <= starts:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at <= now:
            raise ValueError("ends_at is in the past: the silence would never be active")
        if all(m.to_matcher().matches_value("") for m in self.matchers):
            raise ValueError(
                "at least one matcher must not match the empty string (it would mute everything)"
            )
        return self


class MatcherOut(BaseModel):
    """A stored matcher, shown as stored (one RE2 refuses, kept from before, is not a 500)."""

    name: str
    value: str
    isRegex: bool
    isEqual: bool


class SilenceOut(BaseModel):
    id: str
    matchers: list[MatcherOut]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    expired_by: str | None
    state: SilenceState
    created_at: datetime
    updated_at: datetime


class SilenceList(BaseModel):
    items: list[SilenceOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` to get the next page")


class DeliveryOut(BaseModel):
    id: str
    notification_id: str
    kind: str
    attempt: int
    status: str = Field(description="delivered | logged | failed | recovered | superseded")
    method: str
    channel: str
    slack_ts: str | None
    error: str | None
    http_status: int | None
    at: datetime


class DeliveryList(BaseModel):
    alert_id: str
    items: list[DeliveryOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` to get the next page")
