"""A job's state changes after creation: cancel (API), and the terminal transitions that
dispatch and results share (`fail_job` raises the `GpuJobFailed` alert). Each moves the row
only from the states it expects (`repository.transition`), so a late or duplicate caller
changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from lotabots import audit, events
from lotabots.access import Principal
from lotabots.db.base import utcnow
from lotabots.errors import Conflict
from lotabots.jobs import repository as repo
from lotabots.jobs.models import ACTIVE, Job, JobStatus
from lotabots.jobs.schemas import INTERNAL_JOB_TYPES
from lotabots.jobs.service import aware, get_job
from lotabots.jobs.spec import FAILED, SOURCE_JOBS
from lotabots.observability import logger, metrics

MAX_ERROR_CHARS = 4000


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
