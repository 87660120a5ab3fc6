"""API contract of the audit function (pydantic models = the OpenAPI spec)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ProblemCode = Literal[
    # the chain itself
    "entry_altered",  # an entry's stored hash does not match its content
    "chain_broken",  # an entry does not link to the one before it (removed, inserted or reordered)
    # the chain against the anchors
    "anchor_mismatch",  # the first N entries no longer hash to what was anchored
    "anchor_beyond_chain",  # an anchor covers more entries than the log has (truncated)
    "unanchored_entries",  # entries older than the anchoring period that no anchor covers
    # the anchors themselves
    "anchor_overwritten",  # a second version was stored under an anchor's key
    "anchor_deleted",  # a delete marker hides an anchor (its locked version is still read)
    "anchor_foreign_object",  # an object under the anchor prefix that is not an anchor
]


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor_id: str | None
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]
    prev_hash: str = Field(description="hash of the entry before this one (64 zeros for the first)")
    hash: str = Field(description="SHA-256 over prev_hash and this entry's fields (see docs/audit.md)")


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` to get the next (older) page")


class AnchorOut(BaseModel):
    key: str
    entries: int = Field(description="the anchor covers the first `entries` entries of the chain")
    head: str = Field(description="hash of entry number `entries` when it was anchored")
    anchored_at: datetime = Field(description="when S3 stored the anchor")


class Problem(BaseModel):
    code: ProblemCode
    message: str
    entry: int | None = Field(default=None, description="seq of the entry concerned, if any")
    anchor: str | None = Field(default=None, description="key of the anchor concerned, if any")


class AnchorReport(BaseModel):
    bucket: str
    prefix: str
    count: int = Field(description="anchors found (each compared with the chain)")
    matched: int
    mismatched: int = Field(description="anchors the chain disagrees with, or that cover missing entries")
    latest: AnchorOut | None
    unanchored_entries: int = Field(description="entries after the latest anchor (anchored on the next run)")


class VerifyResult(BaseModel):
    valid: bool = Field(description="the chain is intact, agrees with every anchor, and is anchored in time")
    entries: int
    head: str | None = Field(description="hash of the last entry; null for an empty log")
    head_seq: int | None
    first_bad_entry: int | None = Field(
        description=(
            "seq of the first entry that cannot be trusted: where the chain breaks, or, when the chain "
            "is consistent but disagrees with an anchor, the first entry after the last anchor that "
            "still matches"
        )
    )
    problems: list[Problem] = Field(description="why the log is not valid (at most 50; counts in `anchors`)")
    anchors: AnchorReport
    checked_at: datetime


class AnchorRun(BaseModel):
    """What one run of the anchoring schedule did."""

    status: Literal["anchored", "unchanged", "empty"]
    entries: int
    head: str | None
    key: str | None
