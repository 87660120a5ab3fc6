"""Database access of the AIOps domain (sessions come from the services)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from lotabots.aiops.models import Anomaly, Forecast, HealthRun, LogCluster, Report
from lotabots.db import session_scope

HEALTH_KEPT = timedelta(days=1)
MAX_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 500


def record_health_run(at: datetime, status: str, checks: list[dict[str, Any]]) -> None:
    with session_scope() as session:
        session.add(HealthRun(at=at, status=status, checks=checks))
        session.execute(delete(HealthRun).where(HealthRun.at < at - HEALTH_KEPT))


def latest_health_run(session: Session) -> HealthRun | None:
    return session.scalars(select(HealthRun).order_by(HealthRun.at.desc()).limit(1)).first()


@dataclass
class ClusterUpdate:
    """What one logs run saw of one (function, template)."""

    function: str
    template_id: str
    template: str
    level: str
    count: int
    first_seen: datetime
    last_seen: datetime
    examples: list[str]


def merge_clusters(session: Session, updates: list[ClusterUpdate]) -> dict[tuple[str, str], int]:
    """Add counts, widen first/last seen, keep a few examples; returns the previous counts."""
    previous: dict[tuple[str, str], int] = {}
    for update in updates:
        row = session.scalars(
            select(LogCluster).where(
                LogCluster.function == update.function, LogCluster.template_id == update.template_id
            )
        ).first()
        examples = [e[:MAX_EXAMPLE_CHARS] for e in update.examples]
        if row is None:
            session.add(
                LogCluster(
                    function=update.function,
                    template_id=update.template_id,
                    template=update.template,
                    level=update.level,
                    count=update.count,
                    first_seen=update.first_seen,
                    last_seen=update.last_seen,
                    examples=examples[:MAX_EXAMPLES],
                )
            )
            previous[(update.function, update.template_id)] = 0
            continue
        previous[(update.function, update.template_id)] = row.count
        row.count += update.count
        row.template = update.template  # the miner generalises templates as it learns
        if severity(update.level) > severity(row.level):
            row.level = update.level
        row.last_seen = max(_aware(row.last_seen), update.last_seen)
        row.first_seen = min(_aware(row.first_seen), update.first_seen)
        row.examples = (list(row.examples) + examples)[-MAX_EXAMPLES:]
    session.flush()
    return previous


_LEVELS = {"DEBUG": 0, "INFO": 1, "WARNING": 2, "ERROR": 3, "CRITICAL": 4}


def severity(level: str) -> int:
    return _LEVELS.get(level.upper(), 1)


def _aware(value: datetime) -> datetime:
    from lotabots.db.base import as_utc

    return as_utc(value)


@dataclass(frozen=True)
class ClusterFilter:
    function: str | None = None
    level: str | None = None


def cluster_page(
    session: Session, filters: ClusterFilter, *, limit: int, after: tuple[datetime, str] | None
) -> tuple[list[LogCluster], bool]:
    """Newest last_seen first, then id; `after` is the last (last_seen, id) of the previous page."""
    conditions = []
    if filters.function:
        conditions.append(LogCluster.function == filters.function)
    if filters.level:
        conditions.append(LogCluster.level == filters.level.upper())
    if after is not None:
        at, item_id = after
        conditions.append(
            or_(LogCluster.last_seen < at, and_(LogCluster.last_seen == at, LogCluster.id < item_id))
        )
    rows = list(
        session.scalars(
            select(LogCluster)
            .where(*conditions)
            .order_by(LogCluster.last_seen.desc(), LogCluster.id.desc())
            .limit(limit + 1)
        )
    )
    return rows[:limit], len(rows) > limit


def top_clusters(session: Session, *, level: str, since: datetime, limit: int) -> list[LogCluster]:
    return list(
        session.scalars(
            select(LogCluster)
            .where(LogCluster.level == level, LogCluster.last_seen >= since)
            .order_by(LogCluster.count.desc(), LogCluster.id)
            .limit(limit)
        )
    )


def add_anomalies(session: Session, rows: list[tuple[str, datetime, float, float]]) -> int:
    """Insert (series, at, value, score) rows not stored yet; returns how many were new."""
    added = 0
    for series, at, value, score in rows:
        exists = session.scalars(select(Anomaly.id).where(Anomaly.series == series, Anomaly.at == at)).first()
        if exists is None:
            session.add(Anomaly(series=series, at=at, value=value, score=score))
            added += 1
    session.flush()
    return added


@dataclass(frozen=True)
class AnomalyFilter:
    series: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def anomaly_page(
    session: Session, filters: AnomalyFilter, *, limit: int, after: tuple[datetime, str] | None
) -> tuple[list[Anomaly], bool]:
    conditions = []
    if filters.series:
        conditions.append(Anomaly.series == filters.series)
    if filters.since:
        conditions.append(Anomaly.at >= filters.since)
    if filters.until:
        conditions.append(Anomaly.at < filters.until)
    if after is not None:
        at, item_id = after
        conditions.append(or_(Anomaly.at < at, and_(Anomaly.at == at, Anomaly.id < item_id)))
    rows = list(
        session.scalars(
            select(Anomaly).where(*conditions).order_by(Anomaly.at.desc(), Anomaly.id.desc()).limit(limit + 1)
        )
    )
    return rows[:limit], len(rows) > limit


def add_forecast(session: Session, forecast: Forecast) -> None:
    session.add(forecast)
    session.flush()


def latest_forecast(session: Session) -> Forecast | None:
    return session.scalars(select(Forecast).order_by(Forecast.created_at.desc()).limit(1)).first()


def forecasts_since(session: Session, since: datetime) -> list[Forecast]:
    return list(
        session.scalars(select(Forecast).where(Forecast.created_at >= since).order_by(Forecast.created_at))
    )


def report_for_day(session: Session, day: str) -> Report | None:
    return session.scalars(select(Report).where(Report.day == day)).first()


def pending_reports(session: Session) -> list[Report]:
    return list(
        session.scalars(select(Report).where(Report.delivery_status == "pending").order_by(Report.day))
    )


def latest_report(session: Session) -> Report | None:
    return session.scalars(select(Report).order_by(Report.day.desc()).limit(1)).first()
