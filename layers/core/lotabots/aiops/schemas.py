"""API contract of the AIOps routes (pydantic models = the OpenAPI spec)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from lotabots.aiops.monitor import Check
from lotabots.aiops.scaling import ScalingPlan


class HealthRunOut(BaseModel):
    status: Literal["ok", "degraded"]
    at: datetime = Field(description="when the health schedule ran (every minute)")
    checks: list[Check]


class LogClusterOut(BaseModel):
    id: str
    function: str
    template_id: str
    template: str = Field(description="the log template, `<*>` where the lines differ")
    level: str = Field(description="the most severe level seen for this template")
    count: int
    first_seen: datetime
    last_seen: datetime
    examples: list[str] = Field(description="up to 3 real lines (the latest)")


class LogClusterPage(BaseModel):
    items: list[LogClusterOut]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for the next page")


class AnomalyOut(BaseModel):
    id: str
    series: str = Field(
        description="`<function>/<metric>`, `queue:<name>/age`, `dlq:<name>/depth`, `jobs/failures`"
    )
    at: datetime
    value: float
    score: float = Field(ge=0, le=1)


class AnomalyPage(BaseModel):
    items: list[AnomalyOut]
    next_cursor: str | None = None


class ForecastSeries(BaseModel):
    name: str
    history: list[tuple[float, float]] = Field(description="(epoch seconds, value) per hour, last 72 h")
    forecast: list[tuple[float, float]]


class ForecastOut(BaseModel):
    id: str
    created_at: datetime
    horizon_hours: int
    series: list[ForecastSeries]
    plan: ScalingPlan
    chart_url: str | None = Field(description="presigned URL of the PNG chart (15 minutes)")


class ReportOut(BaseModel):
    day: str
    created_at: datetime
    summary: dict[str, Any]
    delivery_status: Literal["pending", "delivered", "logged"]
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    report_url: str | None
    chart_url: str | None
