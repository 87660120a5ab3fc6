"""Database access for attestations, policies, pools and attested models. State changes that
two workers may race on (accepting evidence for a nonce, finishing a verdict) are conditional
updates: only one of them moves the row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lotabots import pagination
from lotabots.attestation.models import (
    Attestation,
    AttestationPolicy,
    AttestationStatus,
    AttestedModel,
    GpuPool,
)
from lotabots.db.base import utcnow
from lotabots.jobs.models import Job, JobStatus


def db_time(session: Session, at: datetime) -> datetime:
    """SQLite stores naive UTC; compare with naive values there."""
    return at.replace(tzinfo=None) if session.get_bind().dialect.name == "sqlite" else at


def get(session: Session, attestation_id: str) -> Attestation | None:
    return session.get(Attestation, attestation_id)


def claim_nonce(session: Session, attestation_id: str, nonce: str) -> bool:
    """Mark the nonce used; True only for the first caller (a second report is a replay)."""
    result = session.execute(
        update(Attestation)
        .where(
            Attestation.id == attestation_id,
            Attestation.nonce == nonce,
            Attestation.nonce_used_at.is_(None),
            Attestation.status == AttestationStatus.PENDING,
        )
        .values(nonce_used_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(session: Session, attestation_id: str, **values: Any) -> bool:
    """Record the verdict of a pending attestation; False if it already has one."""
    result = session.execute(
        update(Attestation)
        .where(Attestation.id == attestation_id, Attestation.status == AttestationStatus.PENDING)
        .values(updated_at=utcnow(), verified_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    moved = bool(result.rowcount)  # type: ignore[attr-defined]
    if moved:
        found = session.get(Attestation, attestation_id)
        if found is not None:
            session.refresh(found)
    return moved


def _after(
    session: Session, query: Any, column: Any, id_column: Any, after: tuple[datetime, str] | None
) -> Any:
    return query if after is None else query.where(pagination.after(session, column, id_column, after))


def list_attestations(
    session: Session,
    *,
    type_: str | None,
    subject: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> Sequence[Attestation]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Attestation)
    if type_:
        query = query.where(Attestation.type == type_)
    if subject:
        query = query.where(Attestation.subject == subject)
    if status:
        query = query.where(Attestation.status == status)
    if since is not None:
        query = query.where(Attestation.created_at >= db_time(session, since))
    if until is not None:
        query = query.where(Attestation.created_at < db_time(session, until))
    query = _after(session, query, Attestation.created_at, Attestation.id, after)
    query = query.order_by(Attestation.created_at.desc(), Attestation.id.desc()).limit(limit)
    return session.scalars(query).all()


def pending_for(session: Session, type_: str, subject: str, *, now: datetime) -> Attestation | None:
    """An attestation of this subject still waiting for evidence whose nonce has not expired."""
    return session.scalars(
        select(Attestation)
        .where(
            Attestation.type == type_,
            Attestation.subject == subject,
            Attestation.status == AttestationStatus.PENDING,
            Attestation.nonce_expires_at > db_time(session, now),
        )
        .order_by(Attestation.created_at.desc())
        .limit(1)
    ).first()


def stale_pending(session: Session, *, expired_before: datetime, limit: int = 100) -> Sequence[Attestation]:
    """Pending attestations whose nonce expired before `expired_before`: no evidence can pass any more."""
    return session.scalars(
        select(Attestation)
        .where(
            Attestation.status == AttestationStatus.PENDING,
            Attestation.nonce_expires_at < db_time(session, expired_before),
        )
        .order_by(Attestation.nonce_expires_at)
        .limit(limit)
    ).all()


def policy(session: Session, name: str) -> AttestationPolicy | None:
    return session.get(AttestationPolicy, name)


def policies(session: Session, *, after: str | None, limit: int) -> Sequence[AttestationPolicy]:
    """By name, keyset-paginated."""
    query = select(AttestationPolicy)
    if after is not None:
        query = query.where(AttestationPolicy.name > after)
    return session.scalars(query.order_by(AttestationPolicy.name).limit(limit)).all()


def stored_policy_names(session: Session, names: Sequence[str]) -> set[str]:
    return set(session.scalars(select(AttestationPolicy.name).where(AttestationPolicy.name.in_(names))))


def pool(session: Session, name: str, *, for_update: bool = False) -> GpuPool | None:
    if for_update:
        return session.scalars(select(GpuPool).where(GpuPool.name == name).with_for_update()).first()
    return session.get(GpuPool, name)


def all_pools(session: Session) -> Sequence[GpuPool]:
    """Every pool (the re-attestation schedule walks them all; pools are few)."""
    return session.scalars(select(GpuPool).order_by(GpuPool.name)).all()


def pools(session: Session, *, after: str | None, limit: int) -> Sequence[GpuPool]:
    """By name, keyset-paginated."""
    query = select(GpuPool)
    if after is not None:
        query = query.where(GpuPool.name > after)
    return session.scalars(query.order_by(GpuPool.name).limit(limit)).all()


def pool_jobs(session: Session, name: str, limit: int = 50) -> Sequence[Job]:
    """The pool's most recent finished jobs (their reports carry NVML utilisation)."""
    return session.scalars(
        select(Job)
        .where(Job.pool == name, Job.status.in_([JobStatus.SUCCEEDED, JobStatus.FAILED]))
        .order_by(Job.created_at.desc())
        .limit(limit)
    ).all()


def model(session: Session, model_id: str) -> AttestedModel | None:
    return session.get(AttestedModel, model_id)


def model_by_name(session: Session, name: str, version: str) -> AttestedModel | None:
    return session.scalars(
        select(AttestedModel).where(AttestedModel.name == name, AttestedModel.version == version)
    ).first()


def latest_model_named(session: Session, name: str) -> AttestedModel | None:
    return session.scalars(
        select(AttestedModel)
        .where(AttestedModel.name == name)
        .order_by(AttestedModel.created_at.desc())
        .limit(1)
    ).first()


def list_models(
    session: Session, *, limit: int, after: tuple[datetime, str] | None
) -> Sequence[AttestedModel]:
    query = _after(session, select(AttestedModel), AttestedModel.created_at, AttestedModel.id, after)
    return session.scalars(
        query.order_by(AttestedModel.created_at.desc(), AttestedModel.id.desc()).limit(limit)
    ).all()
