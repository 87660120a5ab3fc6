"""AIOps results the API serves: health runs, log clusters, anomalies, forecasts, reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lotabots.db.base import Base, new_id, utcnow


class HealthRun(Base):
    """One run of the health schedule with every check's outcome (kept a day)."""

    __tablename__ = "aiops_health_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, nullable=False)


class LogCluster(Base):
    """A log template of one function: how often, since when, how bad, and a few real lines."""

    __tablename__ = "aiops_log_clusters"
    __table_args__ = (
        UniqueConstraint("function", "template_id", name="uq_aiops_log_clusters_function_template"),
        Index("ix_aiops_log_clusters_last_seen_id", "last_seen", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    function: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    template_id: Mapped[str] = mapped_column(String(64), nullable=False)
    template: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    examples: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)


class Anomaly(Base):
    """A point of a metric series whose anomaly score passed the threshold."""

    __tablename__ = "aiops_anomalies"
    __table_args__ = (
        UniqueConstraint("series", "at", name="uq_aiops_anomalies_series_at"),
        Index("ix_aiops_anomalies_at_id", "at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    series: Mapped[str] = mapped_column(String(160), nullable=False, index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class Forecast(Base):
    """One hourly forecast run: the series (history and forecast), the scaling plan, the chart."""

    __tablename__ = "aiops_forecasts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False, index=True
    )
    horizon_hours: Mapped[int] = mapped_column(Integer, nullable=False)
    series: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, nullable=False)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    applied: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    chart_key: Mapped[str | None] = mapped_column(String(300))


class Report(Base):
    """The daily report: stored in S3, posted to Slack until Slack accepts it (never dropped)."""

    __tablename__ = "aiops_reports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    day: Mapped[str] = mapped_column(String(10), nullable=False, unique=True)  # YYYY-MM-DD (UTC)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    report_key: Mapped[str] = mapped_column(String(300), nullable=False)
    chart_key: Mapped[str | None] = mapped_column(String(300))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    delivery_status: Mapped[str] = mapped_column(String(16), default="pending", nullable=False, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    slack_file_id: Mapped[str | None] = mapped_column(String(64))
