"""The health schedule (every minute): every check of the platform, its findings, one stored run.

Checks: the API's `GET /health` (when `AIOPS_API_URL` is set), the database, each queue's depth
and its DLQ (SQS attributes), each function's error rate, throttles and p99 duration over the
last 5 minutes (CloudWatch GetMetricData), the GPU pools' trust state, the GPU jobs' failure
rate over the last hour. A check that fails becomes a condition finding (`findings.Ledger`:
sent once, repeated after `AIOPS_FINDING_REPEAT_SECONDS`, resolved when it clears); a source
that cannot be read (CloudWatch throttling after retries) is an `unknown` check and a
`source_unavailable` finding, never a failed run.
"""

from __future__ import annotations

import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func, select

from lotabots import config
from lotabots.aiops import findings, health, repository, sources
from lotabots.aiops.findings import Finding
from lotabots.config import AIOpsSettings
from lotabots.db import session_scope
from lotabots.observability import logger

CheckStatus = Literal["ok", "warning", "error", "unknown", "skipped"]
LAMBDA_WINDOW_S = 300
JOB_WINDOW = timedelta(hours=1)
MIN_JOBS_FOR_RATE = 5
MIN_ERRORS_FOR_RATE = 3


class Check(BaseModel):
    name: str
    status: CheckStatus
    detail: str = ""
    value: float | None = None


class HealthRunResult(BaseModel):
    status: Literal["ok", "degraded"]
    checks: list[Check]
    findings: dict[str, int]


def _api_check(settings: AIOpsSettings, found: list[Finding]) -> Check:
    # In AWS the URL comes with the inventory parameter: an environment variable would make the
    # function depend on the API's stage, and the alarms watching the function close a cycle.
    api_url = settings.api_url or sources.inventory().api_url
    if not api_url:
        return Check(name="api", status="skipped", detail="no API URL (AIOPS_API_URL or the inventory)")
    url = api_url.rstrip("/") + "/health"
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - configured https URL
            status = int(response.status)
    except Exception as exc:
        status, error = 0, f"{type(exc).__name__}: {str(exc)[:200]}"
    else:
        error = "" if status == 200 else f"HTTP {status}"
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    if error:
        found.append(
            Finding("api_down", "health:api", f"GET /health failed: {error}", "critical", {"service": "api"})
        )
        return Check(name="api", status="error", detail=error, value=latency_ms)
    return Check(name="api", status="ok", detail="GET /health 200", value=latency_ms)


def _database_check(found: list[Finding]) -> Check:
    result = health.check_database()
    if result.status != "ok":
        found.append(
            Finding(
                "database",
                "health:database",
                f"database check failed: {result.error}",
                "critical",
                {"service": "database"},
            )
        )
        return Check(name="database", status="error", detail=result.error or "", value=result.latency_ms)
    return Check(name="database", status="ok", value=result.latency_ms)


def _unavailable(exc: sources.SourceUnavailable, found: list[Finding]) -> None:
    found.append(findings.source_unavailable(exc.source, exc.reason))


def _queue_checks(settings: AIOpsSettings, found: list[Finding]) -> list[Check]:
    try:
        depths = sources.queue_depths()
    except sources.SourceUnavailable as exc:
        _unavailable(exc, found)
        return [Check(name="queues", status="unknown", detail=str(exc))]
    checks = []
    for depth in depths:
        status: CheckStatus = "ok"
        if depth.visible > settings.queue_depth_threshold:
            status = "warning"
            found.append(
                Finding(
                    "queue_backlog",
                    f"health:queue:{depth.queue}",
                    f"{depth.visible} messages wait in {depth.queue} "
                    f"(threshold {settings.queue_depth_threshold})",
                    "warning",
                    {"resource": depth.queue},
                )
            )
        checks.append(
            Check(
                name=f"queue:{depth.queue}",
                status=status,
                detail=f"{depth.visible} visible, {depth.in_flight} in flight",
                value=depth.visible,
            )
        )
        dlq_status: CheckStatus = "ok"
        if depth.dlq_visible:
            dlq_status = "error"
            found.append(
                Finding(
                    "dlq",
                    f"health:dlq:{depth.queue}",
                    f"{depth.dlq_visible} messages in the {depth.queue} DLQ",
                    "critical",
                    {"resource": f"{depth.queue}-dlq"},
                )
            )
        checks.append(
            Check(
                name=f"dlq:{depth.queue}",
                status=dlq_status,
                detail=f"{depth.dlq_visible} messages",
                value=depth.dlq_visible,
            )
        )
    return checks


def _lambda_checks(settings: AIOpsSettings, now: datetime, found: list[Finding]) -> list[Check]:
    names = list(sources.inventory().functions)
    queries = []
    for i, name in enumerate(names):
        queries += [
            sources.lambda_query(f"i{i}", name, "Invocations", "Sum"),
            sources.lambda_query(f"e{i}", name, "Errors", "Sum"),
            sources.lambda_query(f"t{i}", name, "Throttles", "Sum"),
        ]
    start, end = sources.window(LAMBDA_WINDOW_S, now)
    try:
        series = sources.metric_series(queries, start, end, LAMBDA_WINDOW_S)
    except sources.SourceUnavailable as exc:
        _unavailable(exc, found)
        return [Check(name="lambda", status="unknown", detail=str(exc))]
    # Percentiles in a call of their own: a source without them (moto) still gets the counts.
    latency = [sources.lambda_query(f"d{i}", name, "Duration", "p99") for i, name in enumerate(names)]
    try:
        series.update(sources.metric_series(latency, start, end, LAMBDA_WINDOW_S))
    except sources.SourceUnavailable as exc:
        found.append(
            Finding(
                "source_unavailable",
                "source:cloudwatch:GetMetricData:p99",
                f"p99 durations could not be read ({exc.reason}); the latency checks are skipped",
                "info",
                {"resource": "cloudwatch:p99"},
            )
        )

    def total(qid: str) -> float:
        return sum(v for _, v in series.get(qid, []))

    checks = []
    for i, name in enumerate(names):
        invocations, errors, throttles = total(f"i{i}"), total(f"e{i}"), total(f"t{i}")
        p99 = max((v for _, v in series.get(f"d{i}", [])), default=None)
        problems: list[str] = []
        rate = errors / invocations if invocations else 0.0
        if errors >= MIN_ERRORS_FOR_RATE and rate > settings.error_rate_threshold:
            problems.append(f"error rate {rate:.0%}")
            found.append(
                Finding(
                    "lambda_errors",
                    f"health:errors:{name}",
                    f"{name}: {errors:.0f} errors in {invocations:.0f} invocations ({rate:.0%}) in 5 min",
                    "critical" if rate > 0.5 else "warning",
                    {"function": name},
                    {"errors": errors, "invocations": invocations},
                )
            )
        if throttles > 0:
            problems.append(f"{throttles:.0f} throttles")
            found.append(
                Finding(
                    "lambda_throttles",
                    f"health:throttles:{name}",
                    f"{name}: {throttles:.0f} throttled invocations in 5 min",
                    "warning",
                    {"function": name},
                )
            )
        if p99 is not None and p99 > settings.p99_ms_threshold:
            problems.append(f"p99 {p99:.0f} ms")
            found.append(
                Finding(
                    "lambda_latency",
                    f"health:latency:{name}",
                    f"{name}: p99 duration {p99:.0f} ms over 5 min "
                    f"(threshold {settings.p99_ms_threshold:.0f})",
                    "warning",
                    {"function": name},
                )
            )
        detail = f"{invocations:.0f} invocations, {errors:.0f} errors, {throttles:.0f} throttles"
        if p99 is not None:
            detail += f", p99 {p99:.0f} ms"
        checks.append(
            Check(
                name=f"lambda:{name}",
                status="warning" if problems else "ok",
                detail=detail,
                value=rate,
            )
        )
    return checks


def _gpu_checks(now: datetime, found: list[Finding]) -> list[Check]:
    from lotabots.attestation.models import GpuPool, TrustState
    from lotabots.jobs.models import Job, JobStatus

    checks = []
    with session_scope() as session:
        for pool in session.scalars(select(GpuPool).order_by(GpuPool.name)):
            trusted = pool.trust_state == TrustState.TRUSTED
            if not trusted:
                found.append(
                    Finding(
                        "gpu_pool",
                        f"health:pool:{pool.name}",
                        f"GPU pool {pool.name} is {pool.trust_state}: "
                        f"{pool.trust_reason or 'no reason recorded'}",
                        "critical" if pool.trust_state == TrustState.UNTRUSTED else "warning",
                        {"resource": pool.name},
                    )
                )
            checks.append(
                Check(
                    name=f"gpu_pool:{pool.name}",
                    status="ok" if trusted else "error",
                    detail=str(pool.trust_state),
                )
            )
        since = now - JOB_WINDOW
        counts = dict(
            session.execute(
                select(Job.status, func.count())
                .where(Job.finished_at >= since, Job.status.in_([JobStatus.SUCCEEDED, JobStatus.FAILED]))
                .group_by(Job.status)
            ).all()
        )
    failed, succeeded = int(counts.get(JobStatus.FAILED, 0)), int(counts.get(JobStatus.SUCCEEDED, 0))
    finished = failed + succeeded
    rate = failed / finished if finished else 0.0
    threshold = config.load(AIOpsSettings).job_failure_rate_threshold
    status: CheckStatus = "ok"
    if finished >= MIN_JOBS_FOR_RATE and rate > threshold:
        status = "warning"
        found.append(
            Finding(
                "job_failures",
                "health:job-failures",
                f"{failed} of {finished} GPU jobs failed in the last hour ({rate:.0%})",
                "warning",
                {"resource": "gpu-jobs"},
            )
        )
    checks.append(
        Check(name="gpu_jobs", status=status, detail=f"{failed}/{finished} failed in 1 h", value=rate)
    )
    return checks


def run(now: datetime | None = None) -> HealthRunResult:
    now = now or datetime.now(UTC)
    settings = config.load(AIOpsSettings)
    found: list[Finding] = []
    checks = [_api_check(settings, found), _database_check(found)]
    checks += _queue_checks(settings, found)
    checks += _lambda_checks(settings, now, found)
    if checks[1].status == "ok":
        checks += _gpu_checks(now, found)
    ledger = findings.Ledger.load("health")
    if ledger.reset_problem:
        found.append(state_reset_finding("health findings", ledger.reset_problem))
    counts = ledger.reconcile(found, now.timestamp(), settings.finding_repeat_s)
    ledger.save()
    status: Literal["ok", "degraded"] = (
        "ok" if all(c.status in ("ok", "skipped") for c in checks) else "degraded"
    )
    dumped: list[dict[str, Any]] = [c.model_dump() for c in checks]
    if checks[1].status == "ok":
        repository.record_health_run(now, status, dumped)
    else:
        logger.warning("health run not stored: the database is unreachable")
    return HealthRunResult(status=status, checks=checks, findings=counts)


def state_reset_finding(what: str, problem: str) -> Finding:
    return Finding(
        "state_reset",
        f"state-reset:{what}:{int(time.time())}",
        f"the {what} state could not be read and was replaced: {problem}",
        "warning",
        {"resource": what},
        condition=False,
    )
