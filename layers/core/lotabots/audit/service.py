"""The audit log's operations: append (inside the caller's transaction), search, verify, anchor.

Every state change an auditor needs is recorded with `record`; `list_entries` and
`verify_log` back `GET /audit` and `GET /audit/verify` (and `lotabots audit verify`);
`anchor_head` is the scheduled job that writes the chain's head to the Object Lock bucket.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lotabots import config
from lotabots.audit import anchors, chain, repository
from lotabots.audit.chain import GENESIS
from lotabots.audit.models import AuditEntry
from lotabots.audit.schemas import AnchorRun, AuditEntryOut, AuditPage, VerifyResult
from lotabots.audit.verify import CHAIN_DISAGREES, TAMPER_CODES, verify_rows
from lotabots.config import AuditSettings
from lotabots.db import session_scope
from lotabots.db.base import as_utc, utcnow
from lotabots.errors import ServiceUnavailable, UnprocessableEntity
from lotabots.observability import logger, metrics
from lotabots.pagination import decode_cursor, encode_cursor

_MAX_ATTEMPTS = 5
CHAIN_INVALID_METRIC = "AuditChainInvalid"


class AuditTamperDetected(RuntimeError):
    """The chain disagrees with itself or an anchor: it is not anchored and the run fails."""


def _settings() -> AuditSettings:
    return config.load(AuditSettings)


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
            hash=chain.digest(prev_hash, at, actor_id, action, target_type, target_id, details),
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
    """Walk the chain alone (no anchors); returns (intact, seq of the first broken entry)."""
    prev_hash = GENESIS
    for row in chain.rows(session):
        expected = row.recompute(prev_hash)
        if row.prev_hash != prev_hash or row.hash != expected:
            return False, row.seq
        prev_hash = expected
    return True, None


# --- search -----------------------------------------------------------------------------------


def entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        seq=entry.seq,
        at=as_utc(entry.at),
        actor_id=entry.actor_id,
        action=entry.action,
        target_type=entry.target_type,
        target_id=entry.target_id,
        details=entry.details,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )


def list_entries(filters: repository.AuditFilter, *, limit: int, cursor: str | None) -> AuditPage:
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        raise UnprocessableEntity(
            "since must be earlier than until", code="empty_time_range", details={"field": "since"}
        )
    before_seq = int(decode_cursor(cursor, int)[0]) if cursor else None
    with session_scope() as session:
        entries, more = repository.list_page(session, filters, limit=limit, before_seq=before_seq)
        return AuditPage(
            items=[entry_out(e) for e in entries],
            next_cursor=encode_cursor(entries[-1].seq) if more and entries else None,
        )


# --- verification and anchoring ---------------------------------------------------------------


def verify_log(now: datetime | None = None) -> VerifyResult:
    """Recompute the whole chain and compare it with every anchor in the bucket."""
    from botocore.exceptions import BotoCoreError, ClientError

    settings = _settings()
    try:
        listing = anchors.list_anchors(settings.anchor_bucket)
    except (BotoCoreError, ClientError) as exc:
        # Without the anchors the log cannot be vouched for: say so rather than answer "valid".
        logger.exception("cannot list the audit anchors")
        raise ServiceUnavailable(
            f"cannot read the audit anchors in s3://{settings.anchor_bucket}; try again later",
            code="anchors_unavailable",
        ) from exc
    with session_scope() as session:
        return verify_rows(
            chain.rows(session),
            listing,
            now=now or datetime.now(UTC),
            max_unanchored_age=timedelta(seconds=settings.anchor_max_age_s),
        )


def anchor_head(now: datetime | None = None) -> AnchorRun:
    """Verify, then anchor the head. Any sign of tampering records the `AuditChainInvalid`
    metric (a critical alarm); a chain that disagrees with itself or an anchor is never
    anchored, and the run fails."""
    result = verify_log(now)
    tampering = [p for p in result.problems if p.code in TAMPER_CODES]
    metrics.add_metric(name=CHAIN_INVALID_METRIC, unit="Count", value=1 if tampering else 0)
    if tampering:
        logger.error(
            "audit log shows tampering",
            extra={
                "first_bad_entry": result.first_bad_entry,
                "problems": [p.model_dump() for p in tampering],
            },
        )
    disagreeing = sorted({p.code for p in tampering if p.code in CHAIN_DISAGREES})
    if disagreeing:
        raise AuditTamperDetected(
            f"audit chain shows tampering ({', '.join(disagreeing)}); not anchoring it; "
            f"first bad entry {result.first_bad_entry}"
        )
    if result.head is None or result.head_seq is None:
        return AnchorRun(status="empty", entries=0, head=None, key=None)
    with session_scope() as session:
        head_at = session.scalar(select(AuditEntry.at).where(AuditEntry.seq == result.head_seq))
    key, written = anchors.write_anchor(
        _settings().anchor_bucket,
        entries=result.entries,
        head=result.head,
        head_seq=result.head_seq,
        head_at=as_utc(head_at) if head_at else result.checked_at,
        stage=config.core().stage,
    )
    run = AnchorRun(
        status="anchored" if written else "unchanged", entries=result.entries, head=result.head, key=key
    )
    logger.info("audit head anchored" if written else "audit head already anchored", extra=run.model_dump())
    return run
