"""The anomaly schedule (every 5 minutes): streaming anomaly scores on the platform's key series.

Series (period `AIOPS_METRIC_PERIOD_SECONDS`): per function `invocations`, `errors`,
`throttles` (Sum; a period without data is 0, as for Lambda) and `duration` (Average);
per queue the age of its oldest message and its DLQ's depth (AWS/SQS); GPU job failures per
period (the jobs table). One `StreamingDetector` per series (daily and weekly seasonality)
sees each point once, in order: its state and the last point it saw are persisted (`store`),
so reruns and overlapping windows never score a point twice. A point scoring at or above the
threshold is stored (`GET /aiops/anomalies`) and reported as one `anomaly` finding per series
and run (its worst point). An unreadable state, whole or one detector's, is replaced and reported.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from lotabots import config, topology
from lotabots.aiops import anomaly, findings, repository, sources, store
from lotabots.aiops.anomaly import StreamingDetector
from lotabots.aiops.findings import Finding
from lotabots.aiops.monitor import state_reset_finding
from lotabots.aiops.state import StateError
from lotabots.config import AIOpsSettings
from lotabots.db import session_scope
from lotabots.observability import logger

STATE = "anomaly"
_LAMBDA = (
    ("invocations", "Invocations", "Sum"),
    ("errors", "Errors", "Sum"),
    ("throttles", "Throttles", "Sum"),
)


class AnomalyRunResult(BaseModel):
    series: int
    points: int
    anomalies: int
    unavailable: list[str]
    reset: list[str]
    findings: dict[str, int]


def _queries() -> tuple[list[sources.MetricQuery], dict[str, tuple[str, bool]]]:
    """The CloudWatch queries and, per query id, (series name, absent means zero)."""
    queries: list[sources.MetricQuery] = []
    names: dict[str, tuple[str, bool]] = {}
    for i, function in enumerate(sources.inventory().functions):
        for short, metric, stat in _LAMBDA:
            qid = f"{short[0]}{i}"
            queries.append(sources.lambda_query(qid, function, metric, stat))
            names[qid] = (f"{function}/{short}", True)
        queries.append(sources.lambda_query(f"d{i}", function, "Duration", "Average"))
        names[f"d{i}"] = (f"{function}/duration", False)
    for i, queue in enumerate(topology.QUEUES):
        queries.append(sources.sqs_query(f"q{i}", queue.name, "ApproximateAgeOfOldestMessage"))
        names[f"q{i}"] = (f"queue:{queue.name}/age", False)
        queries.append(sources.sqs_query(f"l{i}", f"{queue.name}-dlq", "ApproximateNumberOfMessagesVisible"))
        names[f"l{i}"] = (f"dlq:{queue.name}/depth", False)
    return queries, names


def _job_failures(start: datetime, end: datetime, period_s: int) -> list[tuple[float, float]]:
    from lotabots.jobs.models import Job, JobStatus

    with session_scope() as session:
        finished = session.scalars(
            select(Job.finished_at).where(
                Job.status == JobStatus.FAILED, Job.finished_at >= start, Job.finished_at < end
            )
        ).all()
    buckets = _zero_buckets(start, end, period_s)
    for at in finished:
        if at is None:
            continue
        stamp = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
        bucket = math.floor(stamp / period_s) * period_s
        if bucket in buckets:
            buckets[bucket] += 1
    return sorted(buckets.items())


def _zero_buckets(start: datetime, end: datetime, period_s: int) -> dict[float, float]:
    first = math.ceil(start.timestamp() / period_s) * period_s
    return {float(t): 0.0 for t in range(int(first), int(end.timestamp()), period_s)}


def _load() -> tuple[dict[str, Any], dict[str, float], str | None, str | None]:
    stored = store.load(STATE)
    body = stored.body
    if body is None:
        return {}, {}, stored.etag, stored.problem
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("detectors"), dict)
        or not isinstance(body.get("last"), dict)
    ):
        return {}, {}, stored.etag, "anomaly state is not an object with detectors and last points"
    last: dict[str, float] = {}
    for key, value in body["last"].items():
        if isinstance(value, int | float) and math.isfinite(value):
            last[key] = float(value)
    return body["detectors"], last, stored.etag, None


def run(now: datetime | None = None) -> AnomalyRunResult:
    now = now or datetime.now(UTC)
    settings = config.load(AIOpsSettings)
    threshold = settings.anomaly_threshold or anomaly.ANOMALY_THRESHOLD
    period = settings.metric_period_s
    start, end = sources.window(settings.metric_lookback_s, now, period)
    detector_states, last, etag, problem = _load()
    found: list[Finding] = []
    reset: list[str] = []
    if problem:
        found.append(state_reset_finding("anomaly detectors", problem))
        reset.append("*")

    series: dict[str, list[tuple[float, float]]] = {}
    unavailable: list[str] = []
    queries, names = _queries()
    try:
        raw = sources.metric_series(queries, start, end, period)
    except sources.SourceUnavailable as exc:
        unavailable.append(exc.source)
        found.append(findings.source_unavailable(exc.source, exc.reason))
        raw = {}
    for qid, points in raw.items():
        name, absent_is_zero = names[qid]
        if absent_is_zero:
            filled = _zero_buckets(start, end, period)
            filled.update({math.floor(t / period) * period: v for t, v in points})
            points = sorted(filled.items())
        series[name] = points
    series["jobs/failures"] = _job_failures(start, end, period)

    detectors: dict[str, StreamingDetector] = {}
    rows: list[tuple[str, datetime, float, float]] = []
    worst: dict[str, tuple[float, float, float]] = {}
    scored = 0
    for name, points in series.items():
        fresh = [(t, v) for t, v in points if t > last.get(name, -math.inf)]
        if not fresh and name not in detector_states:
            continue
        detector = _detector(name, detector_states.get(name), reset, found)
        for t, v in fresh:
            score = detector.update(t, v)
            scored += 1
            if score >= threshold:
                rows.append((name, datetime.fromtimestamp(t, UTC), v, score))
                if name not in worst or score > worst[name][2]:
                    worst[name] = (t, v, score)
        if fresh:
            last[name] = fresh[-1][0]
        detectors[name] = detector
    for name, (t, v, score) in worst.items():
        subject, _, metric = name.partition("/")
        found.append(
            Finding(
                "anomaly",
                f"anomaly:{name}:{int(t)}",
                f"{name} = {v:g} at {datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M} UTC is anomalous "
                f"(score {score:.2f})",
                "warning",
                {"resource": subject, "metric": metric},
                {"series": name, "score": round(score, 4), "value": v},
                condition=False,
            )
        )
    state = {
        "detectors": {**detector_states, **{n: d.to_state() for n, d in detectors.items()}},
        "last": last,
    }
    with session_scope() as session:
        added = repository.add_anomalies(session, rows)
        store.save(STATE, state, etag)
    ledger = findings.Ledger.load("anomaly")
    if ledger.reset_problem:
        found.append(state_reset_finding("anomaly findings", ledger.reset_problem))
    counts = ledger.reconcile(found, time.time(), settings.finding_repeat_s)
    ledger.save()
    result = AnomalyRunResult(
        series=len(series),
        points=scored,
        anomalies=added,
        unavailable=unavailable,
        reset=reset,
        findings=counts,
    )
    logger.info("anomaly run", extra={"result": result.model_dump()})
    return result


def _detector(name: str, state: Any, reset: list[str], found: list[Finding]) -> StreamingDetector:
    warmup_s = config.load(AIOpsSettings).anomaly_warmup_s
    if state is None:
        return StreamingDetector(warmup_s=warmup_s)
    try:
        return StreamingDetector.from_state(state)
    except (StateError, ValueError, TypeError, KeyError) as exc:
        reset.append(name)
        found.append(state_reset_finding(f"detector {name}", str(exc)[:200]))
        return StreamingDetector(warmup_s=warmup_s)
