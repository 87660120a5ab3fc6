"""Jobs service: the job settings, the API's view of a job, reading and listing.

The rest of a job's life has a module each: `creation` (API, events, the platform's own
jobs), `queueing` (dispatch requests on the gpu-jobs queue), `dispatch` (the queue → exactly
one backend submission), `lifecycle` (cancel and the terminal transitions that dispatch and
results share) and `results` (what a finished job reports)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from lotabots import config
from lotabots.config import JobSettings
from lotabots.db.base import as_utc
from lotabots.errors import NotFound
from lotabots.jobs import repository as repo
from lotabots.jobs.models import Job, JobStatus
from lotabots.jobs.schemas import JobList, JobOut
from lotabots.pagination import decode_time_cursor, page


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
    found, next_cursor = page(jobs, limit, lambda j: (j.created_at, j.id))
    return JobList(items=[job_out(j) for j in found], next_cursor=next_cursor)
