"""The report schedule (daily): the last 24 h in one document, stored in S3, posted to Slack.

Contents: top error clusters, anomalies, forecast vs actual (the forecast made about a day ago
against the hours that have since passed), GPU usage and estimated job cost, attestation
status. The JSON and the chart (PNG) go to the state bucket; `aiops_reports` records the day
and its Slack delivery state.

Delivery never drops a report: every run first retries every report still `pending` (Slack
was down, rate limited, the token was wrong), oldest first, and a report stays pending until
Slack accepts it. A retry first looks in the channel's recent history for the report's marker
(`aiops-report:<day>`), so a post whose answer was lost is recorded, not posted twice. Without
a bot token (local stack by default) the report is `logged`. A failed delivery is a
`report_delivery` finding, resolved once the report is posted.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lotabots import config
from lotabots.aiops import charts, findings, repository, sources, store
from lotabots.aiops.findings import Finding
from lotabots.aiops.models import Anomaly, Report
from lotabots.config import AIOpsSettings
from lotabots.db import session_scope
from lotabots.db.base import as_utc
from lotabots.observability import logger

DAY = timedelta(days=1)
TOP = 10
# Rough on-demand USD per GPU hour, for the report's cost estimate only (not billing).
GPU_HOURLY_USD = {"L4": 0.80, "A10G": 1.10, "A100": 3.00, "H100": 4.00, "H200": 4.50, "T4": 0.60}
DEFAULT_GPU_HOURLY_USD = 1.0
HISTORY_SCAN_S = 7 * 86400


class ReportRunResult(BaseModel):
    day: str
    created: bool
    delivered: list[str]
    pending: list[str]
    logged: list[str]


def marker(day: str) -> str:
    return f"aiops-report:{day}"


# --- building ------------------------------------------------------------------------------


def _clusters(session: Any, since: datetime) -> list[dict[str, Any]]:
    rows = repository.top_clusters(session, level="ERROR", since=since, limit=TOP)
    return [
        {
            "function": r.function,
            "template": r.template[:300],
            "count": r.count,
            "last_seen": as_utc(r.last_seen),
        }
        for r in rows
    ]


def _anomalies(session: Any, since: datetime) -> dict[str, Any]:
    total = session.scalar(select(func.count()).select_from(Anomaly).where(Anomaly.at >= since)) or 0
    top = session.scalars(
        select(Anomaly)
        .where(Anomaly.at >= since)
        .order_by(Anomaly.score.desc(), Anomaly.at.desc())
        .limit(TOP)
    ).all()
    return {
        "count": int(total),
        "top": [
            {"series": a.series, "at": as_utc(a.at), "value": a.value, "score": round(a.score, 3)}
            for a in top
        ],
    }


def _forecast_vs_actual(session: Any, now: datetime) -> list[dict[str, Any]]:
    """The forecast made closest to a day ago, against CloudWatch for the hours since then."""
    candidates = repository.forecasts_since(session, now - DAY - timedelta(hours=2))
    if not candidates:
        return []
    made = min(candidates, key=lambda f: abs((as_utc(f.created_at) - (now - DAY)).total_seconds()))
    names = list(sources.inventory().functions)
    past = {s["name"]: [(t, v) for t, v in s.get("forecast", []) if t < now.timestamp()] for s in made.series}
    queries = [
        sources.lambda_query(f"i{i}", n, "Invocations", "Sum")
        for i, n in enumerate(names)
        if past.get(f"{n}/invocations")
    ]
    if not queries:
        return []
    start = datetime.fromtimestamp(min(t for pts in past.values() for t, _ in pts), UTC)
    try:
        actual = sources.metric_series(queries, start, now, 3600)
    except sources.SourceUnavailable:
        return []
    rows = []
    for i, name in enumerate(names):
        points = past.get(f"{name}/invocations")
        if not points:
            continue
        predicted = sum(v for _, v in points)
        observed = sum(v for t, v in actual.get(f"i{i}", []) if t < now.timestamp())
        error = abs(predicted - observed) / observed if observed else None
        rows.append(
            {
                "series": f"{name}/invocations",
                "hours": len(points),
                "forecast": round(predicted, 1),
                "actual": round(observed, 1),
                "abs_pct_error": round(error * 100, 1) if error is not None else None,
            }
        )
    return rows


def _gpu(session: Any, since: datetime) -> dict[str, Any]:
    from lotabots.jobs.models import Job

    jobs = session.scalars(select(Job).where(Job.finished_at >= since)).all()
    by_status: dict[str, int] = {}
    gpu_hours: dict[str, float] = {}
    for job in jobs:
        by_status[job.status] = by_status.get(job.status, 0) + 1
        if job.started_at and job.finished_at:
            hours = max(0.0, (as_utc(job.finished_at) - as_utc(job.started_at)).total_seconds() / 3600)
            gpu = (job.gpu or "unknown").rstrip("!").upper()
            gpu_hours[gpu] = gpu_hours.get(gpu, 0.0) + hours
    cost = sum(h * GPU_HOURLY_USD.get(g, DEFAULT_GPU_HOURLY_USD) for g, h in gpu_hours.items())
    return {
        "jobs": by_status,
        "gpu_hours": {g: round(h, 3) for g, h in gpu_hours.items()},
        "estimated_cost_usd": round(cost, 2),
    }


def _attestation(session: Any, since: datetime) -> dict[str, Any]:
    from lotabots.attestation.models import Attestation, GpuPool

    pools = {p.name: str(p.trust_state) for p in session.scalars(select(GpuPool).order_by(GpuPool.name))}
    counts = dict(
        session.execute(
            select(Attestation.status, func.count())
            .where(Attestation.created_at >= since)
            .group_by(Attestation.status)
        ).all()
    )
    return {"pools": pools, "attestations": {str(k): int(v) for k, v in counts.items()}}


def build(session: Session, now: datetime) -> dict[str, Any]:
    """The day's summary, read in the caller's session (a second session in the same process
    would wait on the first one's write lock under SQLite's BEGIN IMMEDIATE)."""
    since = now - DAY
    summary = {
        "period": {"from": since, "to": now},
        "top_error_clusters": _clusters(session, since),
        "anomalies": _anomalies(session, since),
        "forecast_vs_actual": _forecast_vs_actual(session, now),
        "gpu": _gpu(session, since),
        "attestation": _attestation(session, since),
    }
    latest = repository.latest_forecast(session)
    if latest is not None:
        summary["scaling_plan"] = latest.plan
        summary["forecast_series"] = latest.series
    return json.loads(
        json.dumps(summary, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    )


def text(day: str, summary: dict[str, Any]) -> str:
    """The Slack message that goes with the chart (plain mrkdwn, well under Slack's limits)."""
    lines = [f"*LotaBots AIOps daily report {day}* ({marker(day)})"]
    clusters = summary.get("top_error_clusters", [])
    lines.append(f"*Top error clusters:* {len(clusters) or 'none'}")
    lines += [f"• {c['count']}x `{c['function']}` {c['template'][:150]}" for c in clusters[:5]]
    anomalies = summary.get("anomalies", {})
    lines.append(f"*Anomalies:* {anomalies.get('count', 0)}")
    lines += [f"• {a['series']} score {a['score']} at {a['at'][:16]}" for a in anomalies.get("top", [])[:5]]
    fva = summary.get("forecast_vs_actual", [])
    if fva:
        lines.append(
            "*Forecast vs actual:* "
            + ", ".join(f"{r['series']} {r['forecast']}/{r['actual']}" for r in fva[:5])
        )
    gpu = summary.get("gpu", {})
    lines.append(f"*GPU jobs:* {gpu.get('jobs', {})}, est. ${gpu.get('estimated_cost_usd', 0)}")
    attestation = summary.get("attestation", {})
    lines.append(
        f"*Attestation:* pools {attestation.get('pools', {})}, {attestation.get('attestations', {})}"
    )
    return "\n".join(lines)[:3900]


# --- delivery ------------------------------------------------------------------------------


class _SlackDown(RuntimeError):
    pass


def _post(report: Report, channel: str, token: str, deadline: float) -> str | None:
    """Upload the chart with the report text; the file id. Raises _SlackDown on any failure."""
    from slack_sdk.errors import SlackApiError, SlackClientError

    from lotabots.alerts import slack

    client = slack.client(token, deadline=deadline, posting=True)
    try:
        if report.attempts:
            found = _already_posted(client, channel, report.day)
            if found:
                return found
        png = store.get_bytes(report.chart_key) if report.chart_key else None
        response = client.files_upload_v2(
            channel=channel,
            content=None if png else text(report.day, report.summary),
            file=png,
            filename=f"aiops-report-{report.day}.png" if png else f"aiops-report-{report.day}.txt",
            title=f"AIOps report {report.day}",
            initial_comment=text(report.day, report.summary),
        )
    except (SlackApiError, SlackClientError, OSError) as exc:
        raise _SlackDown(f"{type(exc).__name__}: {str(exc)[:300]}") from None
    file = response.get("file") or {}
    return str(file.get("id", "")) or None


def _already_posted(client: Any, channel: str, day: str) -> str | None:
    history = client.conversations_history(
        channel=channel, oldest=str(time.time() - HISTORY_SCAN_S), limit=200
    )
    for message in history.get("messages", []):
        if marker(day) in str(message.get("text", "")):
            return str(message.get("ts", "posted"))
    return None


def deliver(report: Report, deadline: float) -> str:
    """One delivery attempt; the report's new status (`delivered`, `pending`, `logged`)."""
    from lotabots.alerts import slack

    settings = config.load(AIOpsSettings)
    try:
        token = slack.bot_token()
    except Exception as exc:  # the secret could not be read: try again next run
        token, error = None, f"Slack token unavailable: {type(exc).__name__}"
        report.attempts += 1
        report.last_error = error
        return report.delivery_status
    if not token:
        logger.info("AIOps report (no Slack token: logged)", extra={"day": report.day})
        report.delivery_status = "logged"
        return report.delivery_status
    report.attempts += 1
    try:
        file_id = _post(report, settings.report_channel, token, deadline)
    except _SlackDown as exc:
        report.last_error = str(exc)[:500]
        logger.warning("AIOps report not delivered", extra={"day": report.day, "error": report.last_error})
        return report.delivery_status
    report.delivery_status = "delivered"
    report.delivered_at = datetime.now(UTC)
    report.slack_file_id = file_id
    report.last_error = None
    return report.delivery_status


def run(now: datetime | None = None, deadline: float | None = None) -> ReportRunResult:
    now = now or datetime.now(UTC)
    deadline = deadline or time.monotonic() + 60
    day = f"{now:%Y-%m-%d}"
    created = False
    with session_scope() as session:
        if repository.report_for_day(session, day) is None:
            summary = build(session, now)
            report_key = store.key("reports", f"{day}.json")
            chart_key = store.key("reports", f"{day}.png")
            store.put_bytes(report_key, json.dumps(summary, indent=1).encode(), "application/json")
            store.put_bytes(
                chart_key,
                charts.forecast_png(summary.get("forecast_series", []), f"AIOps report {day}: forecast"),
                "image/png",
            )
            session.add(Report(day=day, report_key=report_key, chart_key=chart_key, summary=summary))
            created = True
    delivered: list[str] = []
    pending: list[str] = []
    logged: list[str] = []
    found: list[Finding] = []
    with session_scope() as session:
        for report in repository.pending_reports(session):
            status = deliver(report, deadline)
            session.commit()  # each outcome is recorded before the next post
            {"delivered": delivered, "logged": logged}.get(status, pending).append(report.day)
            if status == "pending":
                found.append(
                    Finding(
                        "report_delivery",
                        "report:delivery",
                        f"AIOps report {report.day} not posted to Slack yet ({report.attempts} attempts): "
                        f"{report.last_error}",
                        "warning",
                        {"resource": "slack"},
                    )
                )
    settings = config.load(AIOpsSettings)
    ledger = findings.Ledger.load("report")
    ledger.reconcile(found, time.time(), settings.finding_repeat_s)
    ledger.save()
    return ReportRunResult(day=day, created=created, delivered=delivered, pending=pending, logged=logged)
