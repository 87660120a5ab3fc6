"""Verification: recompute the chain in one pass and hold it against the anchors.

The walk recomputes every hash from the entries' content, starting at the genesis value,
and never trusts a stored hash. At position N (the N-th entry) the recomputed hash is
compared with every anchor of N entries. So:

- an entry edited in place breaks the chain at that entry (`entry_altered`);
- an entry removed or inserted breaks the link of the entry after it (`chain_broken`);
- a chain rewritten consistently (every hash recomputed by whoever edited it) is intact in
  itself but disagrees with every anchor made before the rewrite (`anchor_mismatch`);
- a truncated tail leaves anchors that cover more entries than remain (`anchor_beyond_chain`);
- deleted or overwritten anchors show in the bucket's version listing (see `anchors.py`);
- entries older than the anchoring period that no anchor covers (`unanchored_entries`) mean
  the anchoring stopped, or its anchors were removed after their retention ran out.

Entries made since the latest anchor are only as safe as the database until the next run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lotabots import storage_keys
from lotabots.audit import anchors as anchor_store
from lotabots.audit.chain import GENESIS, ChainRow
from lotabots.audit.schemas import AnchorOut, AnchorReport, Problem, ProblemCode, VerifyResult
from lotabots.db.base import as_utc

MAX_PROBLEMS = 50
# The chain disagrees with itself or with an anchor: anchoring it now would bless the tampering.
CHAIN_DISAGREES = frozenset({"entry_altered", "chain_broken", "anchor_mismatch", "anchor_beyond_chain"})
# Evidence of tampering (the alarm): the above, or someone writing to the anchors. Anchors that
# were overwritten, hidden or joined by foreign objects are still read from their keys, so they
# do not stop anchoring (an object dropped under the prefix, locked for the retention period,
# must not leave the newest entries unanchored for that long).
TAMPER_CODES = CHAIN_DISAGREES | {"anchor_overwritten", "anchor_deleted", "anchor_foreign_object"}


@dataclass
class _Walk:
    """State of one pass over the chain."""

    by_entries: dict[int, list[anchor_store.Anchor]]
    problems: list[Problem] = field(default_factory=list)
    position: int = 0
    running: str = GENESIS
    head: str | None = None
    head_seq: int | None = None
    chain_break: int | None = None
    matched: int = 0
    mismatched: int = 0
    last_matched_position: int = 0
    # seq of the entry right after the last matching anchor: where an undetected rewrite could start
    seq_after_match: int | None = None
    anchor_suspect: int | None = None
    first_unanchored: ChainRow | None = None

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def step(self, row: ChainRow, unanchored_from: int) -> None:
        self.position += 1
        if self.position == self.last_matched_position + 1:
            self.seq_after_match = row.seq
        recomputed = row.recompute(self.running)
        if self.chain_break is None:
            if row.prev_hash != self.running:
                self.chain_break = row.seq
                self.add(
                    Problem(
                        code="chain_broken",
                        entry=row.seq,
                        message=(
                            f"entry {row.seq} does not link to the entry before it: an entry was removed, "
                            "inserted or reordered here"
                        ),
                    )
                )
            elif row.hash != recomputed:
                self.chain_break = row.seq
                self.add(
                    Problem(
                        code="entry_altered",
                        entry=row.seq,
                        message=f"entry {row.seq} was changed after it was written: its hash does not match",
                    )
                )
        self.running = recomputed
        self.head, self.head_seq = row.hash, row.seq
        if self.position == unanchored_from:
            self.first_unanchored = row
        for anchor in self.by_entries.get(self.position, ()):
            self._compare(anchor)

    def _compare(self, anchor: anchor_store.Anchor) -> None:
        if anchor.head == self.running:
            self.matched += 1
            if anchor.entries > self.last_matched_position:
                self.last_matched_position = anchor.entries
                self.seq_after_match = None
            return
        self._disagree(
            anchor,
            "anchor_mismatch",
            f"the first {anchor.entries} entries no longer hash to what was anchored at "
            f"{as_utc(anchor.anchored_at).isoformat()}: entries after the last matching anchor "
            "were rewritten",
        )

    def finish(self, anchors: Iterable[anchor_store.Anchor]) -> None:
        """After the last entry: anchors that cover more entries than there are."""
        for anchor in anchors:
            if anchor.entries > self.position:
                self._disagree(
                    anchor,
                    "anchor_beyond_chain",
                    f"an anchor covers {anchor.entries} entries but the log has {self.position}: "
                    f"at least {anchor.entries - self.position} were removed",
                )

    def _disagree(self, anchor: anchor_store.Anchor, code: ProblemCode, message: str) -> None:
        self.mismatched += 1
        # The rewrite starts after the last anchor that still matches (if any entry is left there).
        if self.anchor_suspect is None and self.last_matched_position < min(anchor.entries, self.position):
            self.anchor_suspect = self.seq_after_match
        self.add(Problem(code=code, anchor=anchor.key, message=message))


def _anchor_problems(listing: anchor_store.AnchorListing, walk: _Walk) -> None:
    for key in listing.foreign_keys:
        walk.add(
            Problem(
                code="anchor_foreign_object",
                anchor=key,
                message=(
                    "an object under the anchor prefix is not an anchor "
                    "(nothing but the anchoring job writes there)"
                ),
            )
        )
    for anchor in listing.anchors:
        if anchor.versions > 1:
            walk.add(
                Problem(
                    code="anchor_overwritten",
                    anchor=anchor.key,
                    message=(
                        f"{anchor.versions} versions are stored under this anchor's key: someone wrote "
                        "over it (the anchor is read from its key, which S3 does not let anyone change)"
                    ),
                )
            )
        if anchor.delete_marked:
            walk.add(
                Problem(
                    code="anchor_deleted",
                    anchor=anchor.key,
                    message=(
                        "a delete marker hides this anchor; its locked version is still there "
                        "and was compared"
                    ),
                )
            )


def verify_rows(
    rows: Iterable[ChainRow],
    listing: anchor_store.AnchorListing,
    *,
    now: datetime,
    max_unanchored_age: timedelta,
) -> VerifyResult:
    """Walk `rows` (the chain, in order) once and compare it with `listing`."""
    by_entries: dict[int, list[anchor_store.Anchor]] = defaultdict(list)
    for anchor in listing.anchors:
        by_entries[anchor.entries].append(anchor)
    latest = listing.latest
    walk = _Walk(by_entries=by_entries)
    _anchor_problems(listing, walk)
    unanchored_from = (latest.entries if latest else 0) + 1
    for row in rows:
        walk.step(row, unanchored_from)

    walk.finish(listing.anchors)
    overdue = walk.first_unanchored
    if overdue is not None and as_utc(overdue.at) >= now - max_unanchored_age:
        overdue = None
    if overdue is not None:
        walk.add(
            Problem(
                code="unanchored_entries",
                entry=overdue.seq,
                message=(
                    f"entry {overdue.seq} ({as_utc(overdue.at).isoformat()}) is older than "
                    f"{int(max_unanchored_age.total_seconds())} s and no anchor covers it: anchoring has "
                    "stopped, or anchors were removed"
                ),
            )
        )

    first_bad = walk.chain_break if walk.chain_break is not None else walk.anchor_suspect
    if first_bad is None and overdue is not None:
        first_bad = overdue.seq
    return VerifyResult(
        valid=not walk.problems,
        entries=walk.position,
        head=walk.head,
        head_seq=walk.head_seq,
        first_bad_entry=first_bad,
        problems=walk.problems,
        anchors=AnchorReport(
            bucket=listing.bucket,
            prefix=storage_keys.AUDIT_ANCHORS_PREFIX,
            count=len(listing.anchors),
            matched=walk.matched,
            mismatched=walk.mismatched,
            latest=(
                AnchorOut(
                    key=latest.key,
                    entries=latest.entries,
                    head=latest.head,
                    anchored_at=as_utc(latest.anchored_at),
                )
                if latest
                else None
            ),
            unanchored_entries=max(0, walk.position - latest.entries) if latest else walk.position,
        ),
        checked_at=now,
    )
