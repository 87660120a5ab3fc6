"""Database access for jobs. State changes are conditional updates, so two workers racing on
the same job (a redelivered message, an event and a poll) can never both move it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lotabots import pagination
from lotabots.db.base import utcnow
from lotabots.jobs.models import ACTIVE, TERMINAL, Job, JobStatus


def get(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def by_dedupe_key(session: Session, key: str) -> Job | None:
    return session.scalars(select(Job).where(Job.dedupe_key == key)).first()


def by_handle(session: Session, backend: str, handle: str) -> Job | None:
    return session.scalars(select(Job).where(Job.backend == backend, Job.backend_handle == handle)).first()


def transition(
    session: Session,
    job_id: str,
    *,
    from_statuses: Iterable[str],
    to_status: str,
    **values: Any,
) -> bool:
    """Move a job to `to_status` only if it is in one of `from_statuses`; True if it moved."""
    allowed = [str(s) for s in from_statuses]
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(allowed))
        .values(status=str(to_status), updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    moved = bool(result.rowcount)  # type: ignore[attr-defined]
    if moved:
        job = session.get(Job, job_id)
        if job is not None:
            session.refresh(job)
    return moved


def set_fields(session: Session, job_id: str, *, only_if: Iterable[str], **values: Any) -> bool:
    """Update fields without changing the status, only while the job is in `only_if`."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([str(s) for s in only_if]))
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def list_jobs(
    session: Session,
    *,
    status: str | None,
    job_type: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> Sequence[Job]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Job)
    if status:
        query = query.where(Job.status == status)
    if job_type:
        query = query.where(Job.type == job_type)
    if after is not None:
        query = query.where(pagination.after(session, Job.created_at, Job.id, after))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    return session.scalars(query).all()


def stale_queued(session: Session, *, created_before: datetime, limit: int) -> Sequence[Job]:
    return session.scalars(
        select(Job)
        .where(Job.status == JobStatus.QUEUED, Job.created_at < _db_time(session, created_before))
        .order_by(Job.created_at)
        .limit(limit)
    ).all()


def active(session: Session, *, limit: int) -> Sequence[Job]:
    return session.scalars(
        select(Job).where(Job.status.in_([str(s) for s in ACTIVE])).order_by(Job.updated_at).limit(limit)
    ).all()


def count_unfinished(session: Session) -> dict[str, int]:
    """How many jobs wait or run right now, per non-terminal status (absent statuses count 0)."""
    rows = session.execute(
        select(Job.status, func.count()).where(Job.status.in_(non_terminal_statuses())).group_by(Job.status)
    ).all()
    counts = dict.fromkeys(non_terminal_statuses(), 0)
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def non_terminal_statuses() -> list[str]:
    return [str(s) for s in JobStatus if s not in TERMINAL]


def _db_time(session: Session, at: datetime) -> datetime:
    """SQLite stores naive UTC; compare with naive values there."""
    if session.get_bind().dialect.name == "sqlite":
        return at.replace(tzinfo=None)
    return at
