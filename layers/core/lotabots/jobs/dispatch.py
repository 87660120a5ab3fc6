"""Dispatch: turn a gpu-jobs queue message into exactly one backend submission.

Messages are dispatch requests `{job_id}` (API, sweeper) or raw `DocumentIngested` events
(→ one `embed` job per document version). Before submitting, a record keyed by the job is
written to DynamoDB with `attribute_not_exists(id)`: a redelivered or duplicated message
finds it and never starts a second GPU job. A backend that is unavailable releases the
record and the message comes back after an exponential back-off (`lotabots.retry`);
after `max_attempts` tries the job fails and an alert is raised.

Why a claim of our own and not Powertools Idempotency (which `jobs.results` does use, for
Batch state changes): a dispatcher can die after the backend accepted the job and before the
handle was recorded. Powertools treats an expired in-progress record as never started and
runs the function again as a fresh call, so the retry would submit a second GPU job (AWS
Batch's SubmitJob has no idempotency token). `DispatchMap.claim` tells a fresh claim from a
take-over of a crashed one (`taken_over`), and only a take-over first asks the backend for the
earlier submission (`Backend.find`, by job name) before submitting. Its lease is a setting of
its own (JOB_DISPATCH_LEASE_SECONDS, checked against the function timeout by an infra test)
rather than the invocation's remaining time. The job row in the database stays the source of
truth for the job's status; this map only guards the submission.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from lotabots import aws, config, retry, storage_keys
from lotabots.attestation import service as attestation
from lotabots.db import session_scope
from lotabots.db.base import utcnow
from lotabots.jobs import creation, lifecycle, service
from lotabots.jobs import repository as repo
from lotabots.jobs.backends import BackendRejected, BackendUnavailable, get_backend
from lotabots.jobs.models import Job, JobStatus
from lotabots.jobs.schemas import DispatchRequest, DocumentIngestedEvent, GpuJobsRecord
from lotabots.jobs.spec import JobSpec, s3_uri
from lotabots.observability import logger, metrics
from lotabots.retry import RetryLater

MAX_BACKOFF_S = 900
RECORD_TTL_S = 90 * 24 * 3600


class JobInputError(Exception):
    """The job cannot run as asked (e.g. its document has no text): fail it, do not retry."""


# --- the conditional-write map job → backend submission -----------------------------------


@dataclass(frozen=True)
class Claim:
    outcome: Literal["acquired", "submitted", "busy", "taken_over"]
    handle: str | None = None
    backend: str | None = None


class DispatchMap:
    """DynamoDB table (`JOB_DISPATCH_TABLE`, hash key `id`): one item per job, `submitting`
    under a lease, then `submitted` with the backend's handle. Not Powertools Idempotency: see
    the module docstring (a take-over must know it is one)."""

    def __init__(self, table: str, lease_s: int) -> None:
        self.table = table
        self.lease_s = lease_s

    @staticmethod
    def key(job_id: str) -> dict[str, Any]:
        return {"id": {"S": f"job#{job_id}"}}

    def claim(self, job_id: str, backend: str, attempt: int) -> Claim:
        ddb = aws.client("dynamodb")
        now = int(time.time())
        item = {
            **self.key(job_id),
            "state": {"S": "submitting"},
            "backend": {"S": backend},
            "attempt": {"N": str(attempt)},
            "lease_until": {"N": str(now + self.lease_s)},
            "created_at": {"N": str(now)},
            "expiration": {"N": str(now + RECORD_TTL_S)},
        }
        try:
            ddb.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(id)")
            return Claim("acquired")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        current = ddb.get_item(TableName=self.table, Key=self.key(job_id), ConsistentRead=True).get("Item")
        if current is None:  # released between our put and get: try once more
            return self.claim(job_id, backend, attempt)
        if current["state"]["S"] == "submitted":
            return Claim("submitted", handle=current["handle"]["S"], backend=current["backend"]["S"])
        lease_until = int(current["lease_until"]["N"])
        if lease_until > now:
            return Claim("busy")
        # The previous dispatcher died mid-submit: take its lease over (only one taker wins).
        try:
            ddb.update_item(
                TableName=self.table,
                Key=self.key(job_id),
                UpdateExpression="SET lease_until = :new, attempt = :attempt",
                ConditionExpression="#state = :submitting AND lease_until = :old",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":new": {"N": str(now + self.lease_s)},
                    ":old": {"N": str(lease_until)},
                    ":attempt": {"N": str(attempt)},
                    ":submitting": {"S": "submitting"},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return Claim("busy")
            raise
        return Claim("taken_over")

    def complete(self, job_id: str, backend: str, handle: str) -> None:
        aws.client("dynamodb").update_item(
            TableName=self.table,
            Key=self.key(job_id),
            UpdateExpression="SET #state = :submitted, handle = :handle, backend = :backend",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":submitted": {"S": "submitted"},
                ":handle": {"S": handle},
                ":backend": {"S": backend},
            },
        )

    def release(self, job_id: str) -> None:
        """Forget an unfinished claim so the next delivery may submit."""
        ddb = aws.client("dynamodb")
        try:
            ddb.delete_item(
                TableName=self.table,
                Key=self.key(job_id),
                ConditionExpression="#state = :submitting",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":submitting": {"S": "submitting"}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


def dispatch_map() -> DispatchMap:
    cfg = service.settings()
    return DispatchMap(cfg.dispatch_table, cfg.dispatch_lease_seconds)


# --- building what the backend runs --------------------------------------------------------


def build_spec(session: Any, job: Job, attempt: int) -> JobSpec:
    """The spec a backend runs; for `embed`, the document text is staged in S3 first."""
    cfg = service.settings()
    job_input: dict[str, Any] = dict(job.input)
    if job.type == "embed":
        from lotabots.documents import service as documents

        text = documents.load_text(session, job_input["document_id"])
        if not text:
            raise JobInputError(
                f"document {job_input['document_id']} has no extracted text (not ready or deleted)"
            )
        key = storage_keys.job_input_key(job.id)
        aws.client("s3").put_object(
            Bucket=cfg.artifacts_bucket,
            Key=key,
            Body=text.encode("utf-8"),
            ContentType="text/plain; charset=utf-8",
            ServerSideEncryption="AES256",
        )
        job_input["text_uri"] = s3_uri(cfg.artifacts_bucket, key)
        baseline = attestation.embed_model_baseline(session)
        if baseline is not None:
            job_input["model_baseline"] = baseline
    return JobSpec(
        job_id=job.id,
        type=job.type,
        attempt=attempt,
        input=job_input,
        artifacts_bucket=cfg.artifacts_bucket,
        event_bus_name=config.core().event_bus_name,
        gpu=job.gpu or (cfg.default_gpu if job.backend == "modal" else None),
        timeout_s=job.timeout_s,
        correlation_id=logger.get_correlation_id(),
    )


def backoff_seconds(receive_count: int) -> int:
    """The wait before the next delivery while a backend is unavailable (`lotabots.retry`)."""
    base_s = service.settings().retry_base_seconds
    return retry.backoff_seconds(receive_count, base_s=base_s, cap_s=MAX_BACKOFF_S)


# --- the dispatch itself --------------------------------------------------------------------


def dispatch_job(job_id: str, *, receive_count: int = 1) -> str:
    """Submit one queued job; returns what happened (for logs and tests).

    Raises `RetryLater` when the message should come back later.
    """
    dmap = dispatch_map()
    with session_scope() as session:
        job = repo.get(session, job_id)
        if job is None:
            logger.warning("dispatch request for an unknown job; dropped", extra={"job_id": job_id})
            return "unknown_job"
        if job.status != JobStatus.QUEUED:
            logger.info(
                "job is no longer queued; nothing to dispatch", extra={"job_id": job_id, "status": job.status}
            )
            return "not_queued"
        refusal = attestation.dispatch_refusal(session, job)
        if refusal is not None:
            # The pool lost (or never earned) its trust: fail the job, which raises the alert.
            lifecycle.fail_job(session, job, f"refused: {refusal}")
            metrics.add_metric(name="DispatchRefusedUntrustedPool", unit="Count", value=1)
            logger.warning("job refused: its pool is not trusted", extra={"job_id": job_id, "pool": job.pool})
            return "refused"
        backend_name = job.backend
        attempt = job.attempts + 1
        claim = dmap.claim(job_id, backend_name, attempt)
        if claim.outcome == "submitted":
            # A duplicate delivery: the GPU job was started before. Make sure the job row says so.
            _mark_dispatched(
                session, job, claim.backend or backend_name, claim.handle or "", attempt=job.attempts
            )
            metrics.add_metric(name="DispatchDuplicates", unit="Count", value=1)
            return "duplicate"
        if claim.outcome == "busy":
            raise RetryLater("another dispatcher is submitting this job", delay_s=dmap.lease_s)
        repo.set_fields(session, job_id, only_if=[JobStatus.QUEUED], attempts=attempt)
        try:
            spec = build_spec(session, job, attempt)
        except JobInputError as exc:
            dmap.release(job_id)
            lifecycle.fail_job(session, job, str(exc))
            return "failed"
        except Exception:
            dmap.release(job_id)
            raise

    backend = get_backend(backend_name)
    started = time.perf_counter()
    try:
        handle = backend.find(spec) if claim.outcome == "taken_over" else None
        handle = handle or backend.submit(spec)
    except BackendUnavailable as exc:
        dmap.release(job_id)
        return _unavailable(job_id, backend_name, attempt, receive_count, exc)
    except BackendRejected as exc:
        dmap.release(job_id)
        with session_scope() as session:
            job = service.get_job(session, job_id)
            lifecycle.fail_job(session, job, f"{backend_name} rejected the job: {exc}")
        return "failed"
    except Exception:
        dmap.release(job_id)
        raise
    metrics.add_metric(
        name="BackendSubmitMs", unit="Milliseconds", value=(time.perf_counter() - started) * 1000
    )
    dmap.complete(job_id, backend_name, handle)

    with session_scope() as session:
        job = service.get_job(session, job_id)
        if not _mark_dispatched(session, job, backend_name, handle, attempt=attempt):
            # Cancelled while we were submitting: stop what we just started.
            logger.info("job cancelled during dispatch; stopping it", extra={"job_id": job_id})
            lifecycle.stop_on_backend(backend_name, handle)
            return "cancelled"
    metrics.add_metric(name="JobsDispatched", unit="Count", value=1)
    logger.info("job dispatched", extra={"job_id": job_id, "backend": backend_name, "handle": handle})
    return "dispatched"


def _mark_dispatched(session: Any, job: Job, backend_name: str, handle: str, *, attempt: int) -> bool:
    return repo.transition(
        session,
        job.id,
        from_statuses=[JobStatus.QUEUED],
        to_status=JobStatus.DISPATCHED,
        backend=backend_name,
        backend_handle=handle,
        dispatched_at=utcnow(),
        attempts=max(attempt, job.attempts),
        error=None,
    )


def _unavailable(job_id: str, backend_name: str, attempt: int, receive_count: int, exc: Exception) -> str:
    metrics.add_metric(name="BackendUnavailable", unit="Count", value=1)
    with session_scope() as session:
        job = service.get_job(session, job_id)
        if job.status != JobStatus.QUEUED:
            return "not_queued"
        if attempt >= job.max_attempts:
            lifecycle.fail_job(
                session, job, f"backend {backend_name} unavailable after {attempt} attempts: {exc}"
            )
            return "failed"
        repo.set_fields(session, job_id, only_if=[JobStatus.QUEUED], error=f"attempt {attempt}: {exc}"[:4000])
    delay = backoff_seconds(receive_count)
    logger.warning(
        "backend unavailable; will retry",
        extra={"job_id": job_id, "backend": backend_name, "attempt": attempt, "retry_in_s": delay},
    )
    raise RetryLater(f"backend {backend_name} unavailable: {exc}", delay_s=delay)


def handle_record(record: GpuJobsRecord) -> str:
    """One gpu-jobs message; raises `RetryLater` (with the visibility already extended) to retry."""
    receive_count = int(record.attributes.ApproximateReceiveCount or 1)
    body = record.body
    correlation_id = (
        body.detail.correlation_id if isinstance(body, DocumentIngestedEvent) else body.correlation_id
    )
    logger.set_correlation_id(correlation_id or record.messageId)
    if isinstance(body, DocumentIngestedEvent):
        with session_scope() as session:
            job = creation.create_embed_job_for_document(session, body.detail)
            job_id = job.id
    else:
        assert isinstance(body, DispatchRequest)
        job_id = body.job_id
    try:
        return dispatch_job(job_id, receive_count=receive_count)
    except RetryLater as exc:
        retry.delay_message(service.settings().queue_url, record.receiptHandle, exc.delay_s)
        raise
