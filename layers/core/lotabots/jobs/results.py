"""Results: record what GPU jobs report, from every path a completion can take.

- `GpuJobCompleted` / `GpuJobFailed` events (source `lotabots.gpu`) published by the job;
- AWS Batch "Batch Job State Change" SUCCEEDED/FAILED events, deduplicated on (jobId, status)
  with Powertools Idempotency; the job's `report.json` in S3 says what happened;
- the `poll-gpu-jobs` schedule: Modal calls (`FunctionCall.from_id(id).get(timeout=0)`),
  Batch `DescribeJobs` and local workers, timing out jobs past their deadline and putting
  back on the queue jobs whose dispatch message was lost.

A success is recorded only when the job's result object exists and verifies (for `embed`, the
vectors file matches the digest and size in `result.json`): partial output never counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol

from botocore.exceptions import ClientError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from lotabots import aws, config
from lotabots.db import session_scope
from lotabots.db.base import utcnow
from lotabots.jobs import lifecycle, queueing, service
from lotabots.jobs import repository as repo
from lotabots.jobs.backends import BackendError, PollResult, get_backend
from lotabots.jobs.errors import ResultRejected
from lotabots.jobs.models import Job, JobStatus
from lotabots.jobs.schemas import GpuResultsRecord
from lotabots.jobs.spec import COMPLETED, FAILED, SOURCE_GPU, JobReport, parse_s3_uri
from lotabots.observability import logger, metrics
from lotabots.storage_keys import REPORT_NAME, job_key, job_prefix

BATCH_SOURCE = "aws.batch"
BATCH_STATE_CHANGE = "Batch Job State Change"
POLL_LIMIT = 100


class ResultRecorder(Protocol):
    """Per job type: check a result document, then store it in the same unit of work."""

    def verify(self, job: Job, result: dict[str, Any]) -> Any: ...

    def store(self, session: Session, job: Job, prepared: Any) -> dict[str, Any]: ...


def recorders() -> dict[str, ResultRecorder]:
    from lotabots.attestation.appraisal import AttestationRecorder
    from lotabots.embeddings.service import EmbedResultRecorder

    attestation = AttestationRecorder()
    return {
        "embed": EmbedResultRecorder(),
        "attest_hardware": attestation,
        "attest_model": attestation,
        "attest_inference": attestation,
    }


# --- S3 helpers ------------------------------------------------------------------------------


def read_json(uri: str) -> dict[str, Any] | None:
    """An s3:// JSON object, or None if it does not exist."""
    bucket, key = parse_s3_uri(uri)
    try:
        body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ResultRejected(f"{uri} does not hold a JSON object")
    return value


def load_report(job: Job) -> JobReport | None:
    """The `report.json` the job writes before it publishes its completion event."""
    bucket = service.settings().artifacts_bucket
    value = read_json(f"s3://{bucket}/{job_key(job.id, REPORT_NAME)}")
    if value is None:
        return None
    try:
        return JobReport.model_validate(value)
    except ValidationError:
        logger.error("job report in S3 is malformed", extra={"job_id": job.id})
        return None


# --- recording a report -------------------------------------------------------------------


def record_report(report: JobReport, *, via: str) -> str:
    """Apply a job's report; idempotent (a job that has ended ignores further reports)."""
    with session_scope() as session:
        job = repo.get(session, report.job_id)
        if job is None:
            logger.warning("result for an unknown job; ignored", extra={"job_id": report.job_id, "via": via})
            metrics.add_metric(name="UnknownJobResults", unit="Count", value=1)
            return "unknown_job"
        if job.is_terminal:
            logger.info("job already ended; report ignored", extra={"job_id": job.id, "status": job.status})
            return f"already_{job.status}"
        if report.status == "failed":
            lifecycle.fail_job(
                session,
                job,
                report.error or "the job reported a failure without a reason",
                gpu=report.gpu,
                timings=report.timings,
            )
            return "failed"
        try:
            summary, prepared, recorder = _verify_success(job, report)
        except ResultRejected as exc:
            lifecycle.fail_job(
                session, job, f"result rejected: {exc}", gpu=report.gpu, timings=report.timings
            )
            return "failed"
        if not lifecycle.succeed_job(
            session, job, result=summary, result_uri=report.result_uri, gpu=report.gpu, timings=report.timings
        ):
            return "already_terminal"
        if recorder is not None:
            stored = recorder.store(session, job, prepared)
            repo.set_fields(session, job.id, only_if=[JobStatus.SUCCEEDED], result={**summary, **stored})
        return "succeeded"


def _verify_success(job: Job, report: JobReport) -> tuple[dict[str, Any], Any, ResultRecorder | None]:
    if not report.result_uri:
        raise ResultRejected("the job reported success without a result_uri")
    bucket, key = parse_s3_uri(report.result_uri)
    expected_bucket = service.settings().artifacts_bucket
    if bucket != expected_bucket or not key.startswith(job_prefix(job.id)):
        raise ResultRejected(f"result {report.result_uri} is outside this job's artifacts")
    result = read_json(report.result_uri)
    if result is None:
        raise ResultRejected(f"result object {report.result_uri} does not exist")
    if result.get("job_id") != job.id:
        raise ResultRejected("result object belongs to another job")
    recorder = recorders().get(job.type)
    if recorder is None:
        return {k: v for k, v in result.items() if k != "job_id"}, None, None
    prepared = recorder.verify(job, result)
    summary: dict[str, Any] = {
        k: result[k] for k in ("type", "count", "dim", "model", "proofs_uri", "attestation_id") if k in result
    }
    return summary, prepared, recorder


# --- AWS Batch state changes ------------------------------------------------------------------


def _batch_state_change(detail: dict[str, Any]) -> str:
    batch_job_id = str(detail.get("jobId") or "")
    status = str(detail.get("status") or "")
    with session_scope() as session:
        job = repo.by_handle(session, "batch", batch_job_id) if batch_job_id else None
        if job is None:
            logger.warning(
                "Batch state change for an unknown job; ignored", extra={"batch_job_id": batch_job_id}
            )
            metrics.add_metric(name="UnknownJobResults", unit="Count", value=1)
            return "unknown_job"
        if job.is_terminal:
            return f"already_{job.status}"
        report = load_report(job)
        if report is not None and report.job_id == job.id:
            pass
        elif status == "SUCCEEDED":
            lifecycle.fail_job(session, job, "AWS Batch job succeeded but the job wrote no report")
            return "failed"
        else:
            container = detail.get("container") or {}
            reasons = [detail.get("statusReason"), container.get("reason")]
            if container.get("exitCode") is not None:
                reasons.append(f"exit code {container['exitCode']}")
            reason = "; ".join(str(r) for r in reasons if r) or "no reason given"
            lifecycle.fail_job(session, job, f"AWS Batch job failed: {reason}")
            return "failed"
    return record_report(report, via="batch")


@cache
def _idempotent_batch_handler() -> tuple[Callable[..., str], Any]:
    """(jobId, status) seen before → the recorded outcome, without doing anything again."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(
        table_name=config.core().idempotency_table, boto3_client=aws.client("dynamodb")
    )
    idempotency = IdempotencyConfig(event_key_jmespath="[jobId, status]", expires_after_seconds=7 * 24 * 3600)

    @idempotent_function(
        data_keyword_argument="detail", persistence_store=persistence, config=idempotency, key_prefix="batch"
    )
    def handle(*, detail: dict[str, Any]) -> str:
        return _batch_state_change(detail)

    return handle, idempotency


def register_lambda_context(context: Any) -> None:
    """Lets the idempotency records expire with the invocation if it times out mid-way."""
    _idempotent_batch_handler()[1].register_lambda_context(context)


def reset() -> None:
    _idempotent_batch_handler.cache_clear()


def handle_batch_event(detail: dict[str, Any]) -> str:
    return _idempotent_batch_handler()[0](detail=detail)


# --- the gpu-results queue -------------------------------------------------------------------


def handle_record(record: GpuResultsRecord) -> str:
    event = record.body
    if event.source == SOURCE_GPU and event.detail_type in (COMPLETED, FAILED):
        report = JobReport.model_validate(event.detail)  # malformed → the record fails → DLQ
        logger.set_correlation_id(report.correlation_id or record.messageId)
        return record_report(report, via="event")
    if event.source == BATCH_SOURCE and event.detail_type == BATCH_STATE_CHANGE:
        return handle_batch_event(dict(event.detail))
    logger.warning("unexpected event on gpu-results; ignored", extra={"source": event.source})
    return "ignored"


# --- the poll-gpu-jobs schedule ----------------------------------------------------------------


@dataclass
class PollSummary:
    requeued: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    finished: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Active:
    id: str
    backend: str
    handle: str | None
    deadline: datetime
    timeout_s: int


def poll_jobs(now: datetime | None = None) -> PollSummary:
    now = now or utcnow()
    cfg = service.settings()
    summary = PollSummary()

    with session_scope() as session:
        requeue_before = now - timedelta(seconds=cfg.requeue_after_seconds)
        for job in repo.stale_queued(session, created_before=requeue_before, limit=POLL_LIMIT):
            created = service.aware(job.created_at) or now
            updated = service.aware(job.updated_at) or created
            if created + timedelta(seconds=job.timeout_s) < now:
                if lifecycle.fail_job(session, job, f"not dispatched within {job.timeout_s} s"):
                    summary.timed_out.append(job.id)
            elif updated < requeue_before:
                summary.requeued.append(job.id)
        active = [
            _Active(
                id=job.id,
                backend=job.backend,
                handle=job.backend_handle,
                deadline=(service.aware(job.dispatched_at) or service.aware(job.created_at) or now)
                + timedelta(seconds=job.timeout_s),
                timeout_s=job.timeout_s,
            )
            for job in repo.active(session, limit=POLL_LIMIT)
        ]
    for job_id in summary.requeued:
        queueing.enqueue_quietly(job_id)
        with session_scope() as session:
            repo.set_fields(session, job_id, only_if=[JobStatus.QUEUED])  # restart its requeue clock

    for item in active:
        try:
            if now > item.deadline:
                _time_out(item, summary)
            else:
                _poll_one(item, now, summary)
        except BackendError as exc:
            summary.errors[item.id] = str(exc)
            logger.warning("polling a job failed", extra={"job_id": item.id, "error": str(exc)})
    if summary.timed_out:
        metrics.add_metric(name="JobsTimedOut", unit="Count", value=len(summary.timed_out))
    publish_backlog()
    return summary


def publish_backlog() -> None:
    """Gauges for the dashboard, once per poll run: jobs waiting (queued) and on a GPU."""
    with session_scope() as session:
        counts = repo.count_unfinished(session)
    metrics.add_metric(name="JobsQueued", unit="Count", value=counts[JobStatus.QUEUED])
    metrics.add_metric(
        name="JobsRunning", unit="Count", value=counts[JobStatus.DISPATCHED] + counts[JobStatus.RUNNING]
    )


def _time_out(item: _Active, summary: PollSummary) -> None:
    if item.handle:
        lifecycle.stop_on_backend(item.backend, item.handle)
    with session_scope() as session:
        job = repo.get(session, item.id)
        if job is not None and lifecycle.fail_job(session, job, f"timed out after {item.timeout_s} s"):
            summary.timed_out.append(item.id)


def _poll_one(item: _Active, now: datetime, summary: PollSummary) -> None:
    if not item.handle:
        return
    result: PollResult = get_backend(item.backend).poll(item.handle)
    if result.state == "running":
        with session_scope() as session:
            if repo.transition(
                session,
                item.id,
                from_statuses=[JobStatus.DISPATCHED],
                to_status=JobStatus.RUNNING,
                started_at=now,
            ):
                summary.started.append(item.id)
        return
    if result.state not in ("succeeded", "failed"):
        return
    report: JobReport | None = None
    if result.report is not None:
        try:
            report = JobReport.model_validate(result.report)
        except ValidationError:
            report = None
    if report is None:
        with session_scope() as session:
            job = repo.get(session, item.id)
            report = load_report(job) if job is not None else None
    if report is not None and report.job_id == item.id:
        summary.finished[item.id] = record_report(report, via=f"poll:{item.backend}")
        return
    if result.state == "failed":
        error = result.error or f"{item.backend} reports the job failed"
    else:
        error = f"{item.backend} reports the job ended but it wrote no report (crashed or killed)"
    with session_scope() as session:
        job = repo.get(session, item.id)
        if job is not None and lifecycle.fail_job(session, job, error):
            summary.finished[item.id] = "failed"
