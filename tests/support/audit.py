"""Helpers for audit-log tests: seed entries, run the anchoring schedule, and tamper like an
attacker with write access to the database (and, for some tests, to the anchor bucket)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from lotabots import audit, aws, config, storage_keys
from lotabots.audit.chain import GENESIS, digest
from lotabots.audit.models import AuditEntry
from lotabots.config import AuditSettings
from lotabots.db import session_scope
from tests.support.api import FakeLambdaContext, api_event, invoke, load_function
from tests.support.jobs import AUDITOR

EVENTS = Path(__file__).resolve().parents[2] / "events"


def seed(count: int, *, start: int = 0, actor: str = "admin-1", action: str = "user.updated") -> list[int]:
    """Append `count` entries (targets user-<start>...); returns their seqs."""
    seqs = []
    with session_scope() as session:
        for i in range(start, start + count):
            entry = audit.record(
                session,
                actor_id=actor,
                action=action,
                target_type="user",
                target_id=f"user-{i}",
                details={"n": i},
            )
            session.flush()
            seqs.append(entry.seq)
    return seqs


def run_anchor() -> dict[str, Any]:
    """One run of the anchoring schedule, through the worker's real handler and sample event."""
    event = json.loads((EVENTS / "audit_anchor_schedule.json").read_text())
    result: dict[str, Any] = load_function("audit_anchor").lambda_handler(event, FakeLambdaContext())
    return result


def verify(principal: Any = AUDITOR) -> dict[str, Any]:
    status, _, body = invoke("audit", api_event("GET", "/audit/verify", principal=principal))
    assert status == 200, body
    return dict(body)


def bucket() -> str:
    return config.load(AuditSettings).anchor_bucket


def anchor_keys() -> list[str]:
    listed = aws.client("s3").list_object_versions(Bucket=bucket(), Prefix=storage_keys.AUDIT_ANCHORS_PREFIX)
    return sorted(v["Key"] for v in listed.get("Versions", []))


def entry_count() -> int:
    with session_scope() as session:
        return len(session.scalars(select(AuditEntry.seq)).all())


# --- the attacker ----------------------------------------------------------------------------


def edit_in_place(seq: int, **values: Any) -> None:
    """Change an entry's columns and nothing else (the naive edit)."""
    with session_scope() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(**values))


def remove(*seqs: int) -> None:
    with session_scope() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq.in_(seqs)))


def rewrite_chain(seq: int, **values: Any) -> None:
    """Change an entry, then recompute every hash from the start so the chain is consistent
    again (what an attacker who knows the format does)."""
    edit_in_place(seq, **values)
    with session_scope() as session:
        prev = GENESIS
        for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
            new_hash = digest(
                prev,
                entry.at,
                entry.actor_id,
                entry.action,
                entry.target_type,
                entry.target_id,
                entry.details,
            )
            if (entry.prev_hash, entry.hash) != (prev, new_hash):
                entry.prev_hash, entry.hash = prev, new_hash
                session.flush()
            prev = new_hash
