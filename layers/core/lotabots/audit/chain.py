"""What is chained, and how the chain is read back.

Each entry's hash is SHA-256 over a canonical JSON of the previous entry's hash and the
entry's fields (time at millisecond precision in UTC, actor, action, target, details). An
entry therefore vouches for every entry before it: changing, removing or inserting any
entry changes every hash after it. `rows()` streams the chain in order with only the
hashed columns, so verifying a long log never holds it in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from lotabots.audit.models import AuditEntry

GENESIS = "0" * 64
STREAM_BATCH = 2000


def canonical_time(at: datetime) -> str:
    """UTC, millisecond precision, no offset: identical on SQLite (naive) and PostgreSQL."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="milliseconds")


def canonical(
    prev_hash: str,
    at: datetime,
    actor_id: str | None,
    action: str,
    target_type: str,
    target_id: str | None,
    details: dict[str, Any],
) -> bytes:
    return json.dumps(
        {
            "prev": prev_hash,
            "at": canonical_time(at),
            "actor": actor_id,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode()


def digest(
    prev_hash: str,
    at: datetime,
    actor_id: str | None,
    action: str,
    target_type: str,
    target_id: str | None,
    details: dict[str, Any],
) -> str:
    return hashlib.sha256(
        canonical(prev_hash, at, actor_id, action, target_type, target_id, details)
    ).hexdigest()


class ChainRow(NamedTuple):
    seq: int
    at: datetime
    actor_id: str | None
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def recompute(self, prev_hash: str) -> str:
        """This entry's hash if it followed `prev_hash`."""
        return digest(
            prev_hash, self.at, self.actor_id, self.action, self.target_type, self.target_id, self.details
        )


_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.actor_id,
    AuditEntry.action,
    AuditEntry.target_type,
    AuditEntry.target_id,
    AuditEntry.details,
    AuditEntry.prev_hash,
    AuditEntry.hash,
)


def rows(session: Session) -> Iterator[ChainRow]:
    """Every entry in chain order (seq), streamed in batches from one query (one snapshot)."""
    result = session.execute(
        select(*_COLUMNS).order_by(AuditEntry.seq).execution_options(yield_per=STREAM_BATCH)
    )
    for row in result:
        yield ChainRow(*row)
