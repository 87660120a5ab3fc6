"""The forecast schedule (hourly): 24 h ahead for each function's invocations and the GPU jobs.

History: hourly `AWS/Lambda` Invocations (Sum) per function over `AIOPS_FORECAST_HISTORY_HOURS`
(an hour without data after the first one with data is 0), and GPU jobs created per hour
(the jobs table). The current hour counts as its rate so far (its count x 3600 / seconds
elapsed, once a minute has passed), so a young deployment already gets a forecast.
Each series is forecast by `forecasting.forecast` (season detected), the
plan comes from `scaling`, the chart from `charts`; all three are stored (`aiops_forecasts`,
the PNG in the state bucket) for `GET /aiops/forecasts`. CloudWatch throttling after retries
leaves the function series out of this run and becomes a `source_unavailable` finding.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import select

from lotabots import config
from lotabots.aiops import charts, findings, forecasting, repository, scaling, sources, store
from lotabots.aiops.findings import Finding
from lotabots.aiops.models import Forecast
from lotabots.config import AIOpsSettings
from lotabots.db import session_scope
from lotabots.observability import logger

HOUR = 3600
HISTORY_STORED_HOURS = 72
JOBS_SERIES = "gpu-jobs/created"


class ForecastRunResult(BaseModel):
    forecast_id: str
    series: int
    actions: int
    batch_desired_vcpus: int
    mode: str
    applied: bool
    chart_key: str
    unavailable: list[str]


MIN_PARTIAL_S = 60


def _hourly(points: list[tuple[float, float]], start: float, now: float) -> list[tuple[float, float]]:
    """Hourly buckets from the first hour with data up to `now`; missing hours are 0; the current
    (partial) hour as its rate so far, or left out during its first minute."""
    buckets: dict[float, float] = {}
    for t, v in points:
        bucket = math.floor(t / HOUR) * HOUR
        buckets[bucket] = buckets.get(bucket, 0.0) + v
    current = math.floor(now / HOUR) * HOUR
    elapsed = now - current
    if current in buckets:
        if elapsed < MIN_PARTIAL_S:
            del buckets[current]
        else:
            buckets[current] *= HOUR / elapsed
    if not buckets:
        return []
    first = max(min(buckets), start)
    last = current + HOUR if current in buckets else current
    return [(float(t), buckets.get(float(t), 0.0)) for t in range(int(first), int(last), HOUR)]


def _jobs_history(start: datetime, end: datetime) -> list[tuple[float, float]]:
    from lotabots.jobs.models import Job

    with session_scope() as session:
        created = session.scalars(
            select(Job.created_at).where(Job.created_at >= start, Job.created_at < end)
        ).all()
    points = [((c if c.tzinfo else c.replace(tzinfo=UTC)).timestamp(), 1.0) for c in created]
    return _hourly(points, start.timestamp(), end.timestamp())


def run(now: datetime | None = None) -> ForecastRunResult:
    now = now or datetime.now(UTC)
    settings = config.load(AIOpsSettings)
    horizon = settings.forecast_horizon_hours
    start, _ = sources.window(settings.forecast_history_hours * HOUR, now, HOUR)
    end = now
    inventory = sources.inventory()
    names = list(inventory.functions)
    found: list[Finding] = []
    unavailable: list[str] = []
    queries = [sources.lambda_query(f"i{i}", n, "Invocations", "Sum") for i, n in enumerate(names)]
    queries += [sources.lambda_query(f"d{i}", n, "Duration", "Average") for i, n in enumerate(names)]
    try:
        raw = sources.metric_series(queries, start, end, HOUR)
    except sources.SourceUnavailable as exc:
        unavailable.append(exc.source)
        found.append(findings.source_unavailable(exc.source, exc.reason))
        raw = {}
    next_hour = (math.floor(now.timestamp() / HOUR) + 1) * HOUR
    future = [float(next_hour + h * HOUR) for h in range(horizon)]
    histories = {
        f"{name}/invocations": _hourly(raw.get(f"i{i}", []), start.timestamp(), end.timestamp())
        for i, name in enumerate(names)
    }
    histories[JOBS_SERIES] = _jobs_history(start, end)
    predicted: dict[str, list[float]] = {}
    stored_series = []
    for name, history in histories.items():
        values = [v for _, v in history]
        if not values or not any(values):
            continue
        forecast = [max(0.0, v) for v in forecasting.forecast(values, horizon)]
        predicted[name] = forecast
        stored_series.append(
            {
                "name": name,
                "history": [[t, v] for t, v in history[-HISTORY_STORED_HOURS:]],
                "forecast": [[t, round(v, 3)] for t, v in zip(future, forecast, strict=True)],
            }
        )
    durations = {
        name: (sum(v for _, v in raw.get(f"d{i}", [])) / len(raw[f"d{i}"])) if raw.get(f"d{i}") else 0.0
        for i, name in enumerate(names)
    }
    scaling_plan = scaling.plan(
        settings,
        hours=future,
        functions={
            name: (
                inventory.functions[name],
                predicted.get(f"{name}/invocations", [0.0] * horizon),
                durations[name],
            )
            for name in names
        },
        jobs_forecast=predicted.get(JOBS_SERIES, []),
    )
    scaling_plan = scaling.apply(scaling_plan, settings)
    for error in scaling_plan.errors:
        found.append(Finding("source_unavailable", "scaling:apply", f"scaling plan not applied: {error}"))
    row = Forecast(
        created_at=now,
        horizon_hours=horizon,
        series=stored_series,
        plan=scaling_plan.model_dump(mode="json"),
        applied=scaling_plan.applied,
    )
    chart_key = store.key("charts", f"forecast-{now:%Y%m%dT%H%M%S}.png")
    png = charts.forecast_png(stored_series, f"Forecast {now:%Y-%m-%d %H:%M} UTC (next {horizon} h dashed)")
    store.put_bytes(chart_key, png, "image/png")
    row.chart_key = chart_key
    with session_scope() as session:
        repository.add_forecast(session, row)
        forecast_id = row.id
    ledger = findings.Ledger.load("forecast")
    ledger.reconcile(found, time.time(), settings.finding_repeat_s)
    ledger.save()
    result = ForecastRunResult(
        forecast_id=forecast_id,
        series=len(stored_series),
        actions=len(scaling_plan.actions),
        batch_desired_vcpus=scaling_plan.batch.desired_vcpus,
        mode=scaling_plan.mode,
        applied=scaling_plan.applied,
        chart_key=chart_key,
        unavailable=unavailable,
    )
    logger.info("forecast run", extra={"result": result.model_dump()})
    return result
