"""Queries on the audit log (read-only: entries are only ever added by `service.record`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lotabots.audit.models import AuditEntry


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None  # exact, or a prefix when it ends in `*` (`document.*`)
    actor_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_page(
    session: Session, filters: AuditFilter, *, limit: int, before_seq: int | None
) -> tuple[Sequence[AuditEntry], bool]:
    """One page, newest first, keyset-paginated on seq; (entries, whether more follow)."""
    conditions: list[Any] = []
    if filters.action is not None:
        if filters.action.endswith("*"):
            prefix = _escape_like(filters.action.rstrip("*"))
            conditions.append(AuditEntry.action.like(prefix + "%", escape="\\"))
        else:
            conditions.append(AuditEntry.action == filters.action)
    if filters.actor_id is not None:
        conditions.append(AuditEntry.actor_id == filters.actor_id)
    if filters.target_type is not None:
        conditions.append(AuditEntry.target_type == filters.target_type)
    if filters.target_id is not None:
        conditions.append(AuditEntry.target_id == filters.target_id)
    if filters.since is not None:
        conditions.append(AuditEntry.at >= filters.since)
    if filters.until is not None:
        conditions.append(AuditEntry.at < filters.until)
    if before_seq is not None:
        conditions.append(AuditEntry.seq < before_seq)
    statement = select(AuditEntry).where(*conditions).order_by(AuditEntry.seq.desc()).limit(limit + 1)
    entries = session.scalars(statement).all()
    return entries[:limit], len(entries) > limit
