"""Reads behind the `/aiops/*` routes (the schedules write; the API only reads)."""

from __future__ import annotations

from lotabots.aiops import repository, store
from lotabots.aiops.models import Anomaly, LogCluster
from lotabots.aiops.monitor import Check
from lotabots.aiops.schemas import (
    AnomalyOut,
    AnomalyPage,
    ForecastOut,
    HealthRunOut,
    LogClusterOut,
    LogClusterPage,
    ReportOut,
)
from lotabots.db import session_scope
from lotabots.db.base import as_utc
from lotabots.errors import NotFound
from lotabots.pagination import decode_time_cursor, encode_cursor


def latest_health() -> HealthRunOut:
    with session_scope() as session:
        run = repository.latest_health_run(session)
        if run is None:
            raise NotFound("no health run yet: the aiops-health schedule runs every minute")
        return HealthRunOut(
            status="ok" if run.status == "ok" else "degraded",
            at=as_utc(run.at),
            checks=[Check.model_validate(c) for c in run.checks],
        )


def _cluster_out(row: LogCluster) -> LogClusterOut:
    return LogClusterOut(
        id=row.id,
        function=row.function,
        template_id=row.template_id,
        template=row.template,
        level=row.level,
        count=row.count,
        first_seen=as_utc(row.first_seen),
        last_seen=as_utc(row.last_seen),
        examples=list(row.examples),
    )


def list_clusters(filters: repository.ClusterFilter, *, limit: int, cursor: str | None) -> LogClusterPage:
    after = decode_time_cursor(cursor) if cursor else None
    with session_scope() as session:
        rows, more = repository.cluster_page(session, filters, limit=limit, after=after)
        return LogClusterPage(
            items=[_cluster_out(r) for r in rows],
            next_cursor=encode_cursor(as_utc(rows[-1].last_seen), rows[-1].id) if more and rows else None,
        )


def _anomaly_out(row: Anomaly) -> AnomalyOut:
    return AnomalyOut(id=row.id, series=row.series, at=as_utc(row.at), value=row.value, score=row.score)


def list_anomalies(filters: repository.AnomalyFilter, *, limit: int, cursor: str | None) -> AnomalyPage:
    after = decode_time_cursor(cursor) if cursor else None
    with session_scope() as session:
        rows, more = repository.anomaly_page(session, filters, limit=limit, after=after)
        return AnomalyPage(
            items=[_anomaly_out(r) for r in rows],
            next_cursor=encode_cursor(as_utc(rows[-1].at), rows[-1].id) if more and rows else None,
        )


def latest_forecast() -> ForecastOut:
    with session_scope() as session:
        row = repository.latest_forecast(session)
        if row is None:
            raise NotFound("no forecast yet: the aiops-forecast schedule runs hourly")
        return ForecastOut.model_validate(
            {
                "id": row.id,
                "created_at": as_utc(row.created_at),
                "horizon_hours": row.horizon_hours,
                "series": row.series,
                "plan": row.plan,
                "chart_url": store.presigned_url(row.chart_key) if row.chart_key else None,
            }
        )


def latest_report() -> ReportOut:
    with session_scope() as session:
        row = repository.latest_report(session)
        if row is None:
            raise NotFound("no report yet: the aiops-report schedule runs daily")
        return ReportOut(
            day=row.day,
            created_at=as_utc(row.created_at),
            summary=row.summary,
            delivery_status=row.delivery_status,  # type: ignore[arg-type]
            attempts=row.attempts,
            last_error=row.last_error,
            delivered_at=as_utc(row.delivered_at) if row.delivered_at else None,
            report_url=store.presigned_url(row.report_key),
            chart_url=store.presigned_url(row.chart_key) if row.chart_key else None,
        )
