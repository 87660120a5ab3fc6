from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lotabots.audit.models import AuditEntry
from lotabots.db.base import utcnow

GENESIS = "0" * 64
_MAX_ATTEMPTS = 5


def _canonical_time(at: datetime) -> str:
    """UTC, millisecond precision, no offset: identical on SQLite (naive) and PostgreSQL."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="milliseconds")


def _digest(
    prev_hash: str,
    at: datetime,
    actor_id: str | None,
    action: str,
    target_type: str,
    target_id: str | None,
    details: dict[str, Any],
) -> str:
    canonical = json.dumps(
        {
            "prev": prev_hash,
            "at": _canonical_time(at),
            "actor": actor_id,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    *,
    actor_id: str | None,
    action: str,
    target_type: str,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry inside the caller's transaction (it commits or rolls back with it)."""
    details = json.loads(json.dumps(details or {}, default=str))
    for _ in range(_MAX_ATTEMPTS):
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
        prev_hash = last.hash if last else GENESIS
        now = utcnow()
        at = now.replace(microsecond=(now.microsecond // 1000) * 1000)
        entry = AuditEntry(
            at=at,
            actor_id=actor_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
            prev_hash=prev_hash,
            hash=_digest(prev_hash, at, actor_id, action, target_type, target_id, details),
        )
        try:
            with session.begin_nested():
                session.add(entry)
            return entry
        except IntegrityError:
            # Another writer appended first; link to the new tail instead.
            continue
    raise RuntimeError("could not append to the audit log under contention")


def verify_chain(session: Session) -> tuple[bool, int | None]:
    """Walk the chain; returns (intact, seq of the first broken entry)."""
    prev_hash = GENESIS
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        expected = _digest(
            prev_hash,
            entry.at,
            entry.actor_id,
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.details,
        )
        if entry.prev_hash != prev_hash or entry.hash != expected:
            return False, entry.seq
        prev_hash = entry.hash
    return True, None
