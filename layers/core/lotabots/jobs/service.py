"""Jobs service: create (API and events), read, list, cancel, and the terminal transitions
shared by dispatch and results. Handlers call these; these call the repository."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lotabots import audit, aws, config, events
from lotabots.access import Principal
from lotabots.config import JobSettings
from lotabots.db.base import as_utc, new_id, utcnow
from lotabots.errors import Conflict, NotFound, PayloadTooLarge, UnprocessableEntity
from lotabots.jobs import repository as repo
from lotabots.jobs.models import ACTIVE, Job, JobStatus
from lotabots.jobs.schemas import (
    INTERNAL_JOB_TYPES,
    JOB_INPUTS,
    DocumentIngestedDetail,
    EmbedInput,
    JobCreate,
    JobList,
    JobOut,
)
from lotabots.jobs.spec import FAILED, SOURCE_JOBS
from lotabots.observability import logger, metrics
from lotabots.pagination import decode_time_cursor, encode_cursor

MAX_ERROR_CHARS = 4000


def settings() -> JobSettings:
    return config.load(JobSettings)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC datetimes; make every timestamp timezone-aware."""
    return None if value is None else as_utc(value)


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        type=job.type,
        status=JobStatus(job.status),
        backend=job.backend,  # type: ignore[arg-type]
        gpu=job.gpu,
        pool=job.pool,
        gpu_used=job.gpu_used,
        input=job.input,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        backend_handle=job.backend_handle,
        result=job.result,
        result_uri=job.result_uri,
        error=job.error,
        timings=job.timings,
        source=job.source,
        requested_by=job.requested_by,
        created_at=aware(job.created_at),  # type: ignore[arg-type]
        updated_at=aware(job.updated_at),  # type: ignore[arg-type]
        dispatched_at=aware(job.dispatched_at),
        started_at=aware(job.started_at),
        finished_at=aware(job.finished_at),
    )


# --- creation -------------------------------------------------------------------------------


def validate_input(job_type: str, job_input: dict[str, Any]) -> BaseModel:
    """Type known, input within the size limit, input valid for its type; else a clear 4xx."""
    if job_type not in JOB_INPUTS:
        raise UnprocessableEntity(
            f"unknown job type {job_type!r}",
            code="unknown_job_type",
            details={"known_types": sorted(set(JOB_INPUTS) - INTERNAL_JOB_TYPES)},
        )
    limit = settings().max_input_bytes
    size = len(json.dumps(job_input, separators=(",", ":"), default=str).encode())
    if size > limit:
        raise PayloadTooLarge(
            f"job input is {size} bytes; the limit is {limit} bytes",
            code="job_input_too_large",
            details={"size_bytes": size, "limit_bytes": limit},
        )
    try:
        return JOB_INPUTS[job_type].model_validate(job_input)
    except ValidationError as exc:
        raise UnprocessableEntity(
            f"input is not valid for a {job_type!r} job",
            code="invalid_job_input",
            details=[
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
                for e in exc.errors()
            ],
        ) from None


def _resolve_input(
    session: Session, principal: Principal, job_type: str, parsed: BaseModel
) -> dict[str, Any]:
    """Check the caller may use what the input names and pin it (e.g. the document version)."""
    if isinstance(parsed, EmbedInput):
        from lotabots.documents import service as documents
        from lotabots.documents.models import DocumentStatus

        # 404 for a document the caller may not see (object-level access applies to operators too).
        document = documents.get_visible_document(session, principal, parsed.document_id)
        if document.status != DocumentStatus.READY:
            raise Conflict(
                f"document {parsed.document_id} is {document.status}; only ready documents can be embedded",
                code="document_not_ready",
            )
        return {"document_id": document.id, "owner_id": document.owner_id, "version": document.version}
    return parsed.model_dump(mode="json")


def create_job(
    session: Session, principal: Principal, request: JobCreate, *, idempotency_key: str | None = None
) -> tuple[Job, bool]:
    """A new queued job (or, for a repeated Idempotency-Key, the job it created); (job, created)."""
    if request.type in INTERNAL_JOB_TYPES:
        raise UnprocessableEntity(
            f"{request.type} jobs answer an attestation's nonce; start them with POST /attestations/...",
            code="job_type_reserved",
        )
    parsed = validate_input(request.type, request.input)
    backend, gpu = _target(session, request)
    dedupe_key = f"api:{principal.user_id}:{idempotency_key}" if idempotency_key else None
    if dedupe_key:
        existing = repo.by_dedupe_key(session, dedupe_key)
        if existing is not None:
            _same_request_or_conflict(existing, request, parsed, backend, gpu)
            return existing, False
    cfg = settings()
    job_input = _resolve_input(session, principal, request.type, parsed)
    job = Job(
        id=new_id(),
        type=request.type,
        status=JobStatus.QUEUED,
        backend=backend,
        gpu=gpu,
        pool=request.pool,
        input=job_input,
        attempts=0,
        max_attempts=cfg.max_attempts,
        timeout_s=cfg.timeout_seconds,
        dedupe_key=dedupe_key,
        requested_by=principal.user_id,
        source="api",
    )
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        # The same Idempotency-Key raced in from a concurrent request.
        existing = repo.by_dedupe_key(session, dedupe_key or "")
        if existing is None:
            raise
        _same_request_or_conflict(existing, request, parsed, backend, gpu)
        return existing, False
    audit.record(
        session,
        actor_id=principal.user_id,
        action="job.create",
        target_type="job",
        target_id=job.id,
        details={
            "type": job.type,
            "backend": job.backend,
            "gpu": job.gpu,
            "pool": job.pool,
            "input": job_input,
        },
    )
    metrics.add_metric(name="JobsCreated", unit="Count", value=1)
    logger.info("job created", extra={"job_id": job.id, "type": job.type, "backend": job.backend})
    return job, True


def _pool(session: Session, name: str) -> Any:
    from lotabots.attestation import repository as attestation_repo

    pool = attestation_repo.pool(session, name)
    if pool is None:
        raise UnprocessableEntity(f"no GPU pool named {name!r}", code="unknown_pool")
    return pool


def create_internal_job(
    session: Session,
    *,
    job_type: str,
    job_input: dict[str, Any],
    backend: str | None,
    gpu: str | None,
    pool: str | None,
    timeout_s: int | None,
    requested_by: str | None,
    source: str,
    dedupe_key: str | None = None,
) -> Job:
    """A job the platform starts for itself (attestations): same input contract as the API's."""
    validate_input(job_type, job_input)
    cfg = settings()
    job = Job(
        id=new_id(),
        type=job_type,
        status=JobStatus.QUEUED,
        backend=backend or cfg.default_backend,
        gpu=gpu,
        pool=pool,
        input=job_input,
        attempts=0,
        max_attempts=cfg.max_attempts,
        timeout_s=timeout_s or cfg.timeout_seconds,
        dedupe_key=dedupe_key,
        requested_by=requested_by,
        source=source,
    )
    session.add(job)
    session.flush()
    metrics.add_metric(name="JobsCreated", unit="Count", value=1)
    return job


def _target(session: Session, request: JobCreate) -> tuple[str, str | None]:
    """(backend, GPU type) the request asks for: given, or its pool's, or the default backend."""
    backend, gpu = request.backend, request.gpu
    if request.pool:
        pool = _pool(session, request.pool)
        backend, gpu = backend or pool.backend, gpu or pool.gpu_type
        if backend != pool.backend:
            raise UnprocessableEntity(
                f"pool {pool.name} runs on {pool.backend}, not {backend}", code="pool_backend_mismatch"
            )
    return backend or settings().default_backend, gpu


def _same_request_or_conflict(
    existing: Job, request: JobCreate, parsed: BaseModel, backend: str, gpu: str | None
) -> None:
    """A reused Idempotency-Key must carry the same request: type, input, pool, backend and GPU."""
    wanted = parsed.model_dump(mode="json")
    same = (
        existing.type == request.type
        and all(existing.input.get(k) == v for k, v in wanted.items())
        and (existing.backend, existing.gpu, existing.pool) == (backend, gpu, request.pool)
    )
    if not same:
        raise Conflict(
            "this Idempotency-Key was already used for a different job request",
            code="idempotency_key_reused",
            details={"job_id": existing.id},
        )


def create_embed_job_for_document(session: Session, detail: DocumentIngestedDetail) -> Job:
    """The `embed` job for one document version; the same job however often the event arrives."""
    key = f"embed:{detail.document_id}:{detail.version}"
    existing = repo.by_dedupe_key(session, key)
    if existing is not None:
        return existing
    cfg = settings()
    job = Job(
        id=new_id(),
        type="embed",
        status=JobStatus.QUEUED,
        backend=cfg.default_backend,
        gpu=None,
        input={"document_id": detail.document_id, "owner_id": detail.owner_id, "version": detail.version},
        attempts=0,
        max_attempts=cfg.max_attempts,
        timeout_s=cfg.timeout_seconds,
        dedupe_key=key,
        requested_by=None,
        source="event",
    )
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        found = repo.by_dedupe_key(session, key)
        if found is None:
            raise
        return found
    metrics.add_metric(name="JobsCreated", unit="Count", value=1)
    logger.info("embed job created for document", extra={"job_id": job.id, "document_id": detail.document_id})
    return job


def enqueue(job_id: str) -> None:
    """Put a dispatch request for the job on the gpu-jobs queue."""
    queue_url = settings().queue_url
    if not queue_url:
        raise RuntimeError("GPU_JOBS_QUEUE_URL is not set")
    aws.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"job_id": job_id, "correlation_id": logger.get_correlation_id()}),
    )


def enqueue_quietly(job_id: str) -> None:
    """After the job is committed: a failure here is logged and repaired by the sweeper."""
    try:
        enqueue(job_id)
    except Exception:
        logger.exception(
            "could not enqueue job; the poll-gpu-jobs sweeper will retry", extra={"job_id": job_id}
        )


# --- reading --------------------------------------------------------------------------------


def get_job(session: Session, job_id: str) -> Job:
    job = repo.get(session, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found", code="job_not_found")
    return job


def list_jobs(
    session: Session, *, status: str | None, job_type: str | None, limit: int, cursor: str | None
) -> JobList:
    after = decode_time_cursor(cursor) if cursor else None
    jobs = repo.list_jobs(session, status=status, job_type=job_type, limit=limit + 1, after=after)
    page = list(jobs[:limit])
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(jobs) > limit and page else None
    return JobList(items=[job_out(j) for j in page], next_cursor=next_cursor)


# --- cancel ---------------------------------------------------------------------------------


def cancel_job(session: Session, principal: Principal, job_id: str) -> tuple[Job, tuple[str, str] | None]:
    """Cancel a job that has not ended; returns it and the (backend, handle) to stop, if any."""
    job = get_job(session, job_id)
    previous = job.status
    if job.is_terminal:
        raise Conflict(f"job {job_id} is already {previous}", code="job_not_cancellable")
    moved = repo.transition(
        session,
        job_id,
        from_statuses=[previous],
        to_status=JobStatus.CANCELLED,
        finished_at=utcnow(),
        error=f"cancelled by {principal.user_id}",
    )
    if not moved:
        session.refresh(job)
        raise Conflict(f"job {job_id} changed to {job.status} meanwhile; try again", code="job_changed")
    audit.record(
        session,
        actor_id=principal.user_id,
        action="job.cancel",
        target_type="job",
        target_id=job_id,
        details={"previous_status": previous, "backend": job.backend, "handle": job.backend_handle},
    )
    metrics.add_metric(name="JobsCancelled", unit="Count", value=1)
    to_stop = (job.backend, job.backend_handle) if previous in ACTIVE and job.backend_handle else None
    return job, to_stop


def stop_on_backend(backend_name: str, handle: str) -> None:
    """Best effort: stop the backend's work for a job that no longer needs it."""
    from lotabots.jobs.backends import BackendError, get_backend

    try:
        get_backend(backend_name).cancel(handle)
    except BackendError:
        logger.exception("could not stop the backend job", extra={"backend": backend_name, "handle": handle})


# --- terminal transitions shared by dispatch and results ----------------------------------


def _timings(job: Job, finished: datetime, reported: dict[str, Any] | None) -> dict[str, Any]:
    timings: dict[str, Any] = dict(job.timings or {})
    created = aware(job.created_at)
    dispatched = aware(job.dispatched_at)
    if created is not None:
        timings["total_s"] = round((finished - created).total_seconds(), 3)
        if dispatched is not None:
            timings["queued_s"] = round((dispatched - created).total_seconds(), 3)
    if reported:
        timings.update({f"job_{k}" if not k.startswith("job_") else k: v for k, v in reported.items()})
    return timings


def _job_telemetry_metrics(timings: dict[str, Any], gpu: dict[str, Any] | None) -> None:
    """Duration of a finished job and the GPU utilisation its own telemetry measured (dashboard)."""
    total = timings.get("total_s")
    if isinstance(total, int | float):
        metrics.add_metric(name="JobDuration", unit="Seconds", value=float(total))
    utilisation = (gpu or {}).get("utilization_mean_pct")
    if isinstance(utilisation, int | float):
        metrics.add_metric(name="GpuUtilization", unit="Percent", value=float(utilisation))


def fail_job(
    session: Session,
    job: Job,
    error: str,
    *,
    gpu: dict[str, Any] | None = None,
    timings: dict[str, Any] | None = None,
    result_uri: str | None = None,
) -> bool:
    """Mark a non-terminal job failed and raise the alert; False if it had already ended."""
    now = utcnow()
    values: dict[str, Any] = {
        "finished_at": now,
        "error": error[:MAX_ERROR_CHARS],
        "timings": _timings(job, now, timings),
    }
    if gpu is not None:
        values["gpu_used"] = gpu
    if result_uri is not None:
        values["result_uri"] = result_uri
    if not repo.transition(
        session, job.id, from_statuses=repo.non_terminal_statuses(), to_status=JobStatus.FAILED, **values
    ):
        return False
    # Published inside the unit of work: if the commit then fails, the retry publishes again
    # (at least once); the alert pipeline groups duplicates.
    events.publish(
        SOURCE_JOBS,
        FAILED,
        {
            "job_id": job.id,
            "type": job.type,
            "backend": job.backend,
            "attempts": job.attempts,
            "error": error[:MAX_ERROR_CHARS],
        },
    )
    if job.type in INTERNAL_JOB_TYPES:
        from lotabots.attestation import appraisal

        appraisal.job_failed(session, job, error)
    metrics.add_metric(name="JobsFailed", unit="Count", value=1)
    _job_telemetry_metrics(values["timings"], gpu)
    logger.warning("job failed", extra={"job_id": job.id, "type": job.type, "error": error[:500]})
    return True


def succeed_job(
    session: Session,
    job: Job,
    *,
    result: dict[str, Any],
    result_uri: str | None,
    gpu: dict[str, Any] | None,
    timings: dict[str, Any] | None,
) -> bool:
    now = utcnow()
    moved = repo.transition(
        session,
        job.id,
        from_statuses=repo.non_terminal_statuses(),
        to_status=JobStatus.SUCCEEDED,
        finished_at=now,
        result=result,
        result_uri=result_uri,
        gpu_used=gpu,
        timings=_timings(job, now, timings),
        error=None,
    )
    if moved:
        metrics.add_metric(name="JobsSucceeded", unit="Count", value=1)
        _job_telemetry_metrics(_timings(job, now, timings), gpu)
        logger.info("job succeeded", extra={"job_id": job.id, "type": job.type})
    return moved
