"""Creating jobs: from the API (with Idempotency-Key), from `DocumentIngested` events (one
`embed` job per document version) and for the platform itself (attestation jobs). Every path
validates the input against its type's model and leaves the job `queued`; `queueing` then
puts the dispatch request on the gpu-jobs queue after the commit."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lotabots import audit
from lotabots.access import Principal
from lotabots.db.base import new_id
from lotabots.errors import Conflict, PayloadTooLarge, UnprocessableEntity
from lotabots.jobs import repository as repo
from lotabots.jobs.models import Job, JobStatus
from lotabots.jobs.schemas import (
    INTERNAL_JOB_TYPES,
    JOB_INPUTS,
    DocumentIngestedDetail,
    EmbedInput,
    JobCreate,
)
from lotabots.jobs.service import settings
from lotabots.observability import logger, metrics


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
