"""The one-pass comparison of a chain with its anchors (`lotabots.audit.verify`), on chains
built in memory: every outcome without a database or a bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lotabots.audit.anchors import Anchor, AnchorListing
from lotabots.audit.chain import GENESIS, ChainRow, digest
from lotabots.audit.schemas import VerifyResult
from lotabots.audit.verify import verify_rows
from lotabots.storage_keys import anchor_key

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=1)


def _chain(count: int, *, start: datetime = NOW - timedelta(minutes=5)) -> list[ChainRow]:
    rows, prev = [], GENESIS
    for i in range(count):
        at = start + timedelta(seconds=i)
        fields = ("actor", "user.updated", "user", f"u{i}", {"n": i})
        hashed = digest(prev, at, *fields)
        rows.append(ChainRow(i + 1, at, *fields, prev, hashed))
        prev = hashed
    return rows


def _anchor(rows: list[ChainRow], entries: int, *, head: str | None = None, **extra: object) -> Anchor:
    head = head or rows[entries - 1].hash
    return Anchor(key=anchor_key(entries, head), entries=entries, head=head, anchored_at=NOW, **extra)  # type: ignore[arg-type]


def _verify(rows: list[ChainRow], *anchors: Anchor, foreign: tuple[str, ...] = ()) -> VerifyResult:
    listing = AnchorListing(
        bucket="b", anchors=sorted(anchors, key=lambda a: a.entries), foreign_keys=list(foreign)
    )
    return verify_rows(rows, listing, now=NOW, max_unanchored_age=MAX_AGE)


def _codes(result: VerifyResult) -> list[str]:
    return [p.code for p in result.problems]


def test_an_intact_anchored_chain_is_valid() -> None:
    rows = _chain(10)
    result = _verify(rows, _anchor(rows, 4), _anchor(rows, 10))
    assert result.valid and result.problems == [] and result.first_bad_entry is None
    assert (result.entries, result.head, result.head_seq) == (10, rows[-1].hash, 10)
    assert (result.anchors.count, result.anchors.matched, result.anchors.unanchored_entries) == (2, 2, 0)


def test_an_empty_log_without_anchors_is_valid() -> None:
    result = _verify([])
    assert result.valid and result.entries == 0 and result.head is None and result.anchors.latest is None


def test_an_edited_entry_is_found_where_it_is() -> None:
    rows = _chain(6)
    anchors = (_anchor(rows, 2), _anchor(rows, 6))
    rows[3] = rows[3]._replace(details={"n": 99})
    result = _verify(rows, *anchors)
    assert not result.valid and result.first_bad_entry == 4
    assert _codes(result) == ["entry_altered", "anchor_mismatch"]
    assert (result.anchors.matched, result.anchors.mismatched) == (1, 1)


def test_a_consistent_rewrite_is_placed_after_the_last_matching_anchor() -> None:
    rows = _chain(9)
    anchors = (_anchor(rows, 3), _anchor(rows, 6), _anchor(rows, 9))
    rewritten = _chain(9)
    rewritten[4:] = []
    prev = rewritten[-1].hash
    for i in range(4, 9):  # entries 5..9 recomputed with other content
        fields = ("actor", "user.updated", "user", f"u{i}", {"n": -i})
        hashed = digest(prev, rows[i].at, *fields)
        rewritten.append(ChainRow(i + 1, rows[i].at, *fields, prev, hashed))
        prev = hashed
    result = _verify(rewritten, *anchors)
    assert _codes(result) == ["anchor_mismatch", "anchor_mismatch"]
    assert result.first_bad_entry == 4  # entries 1-3 still match their anchor
    assert (result.anchors.matched, result.anchors.mismatched) == (1, 2)


def test_a_cut_tail_leaves_an_anchor_beyond_the_chain() -> None:
    rows = _chain(8)
    result = _verify(rows[:5], _anchor(rows, 4), _anchor(rows, 8))
    assert _codes(result) == ["anchor_beyond_chain"] and result.first_bad_entry == 5
    assert result.anchors.unanchored_entries == 0
    # Every remaining entry vouched for: nothing left to point at.
    assert _verify(rows[:4], _anchor(rows, 4), _anchor(rows, 8)).first_bad_entry is None


def test_conflicting_anchors_for_the_same_length_are_reported() -> None:
    rows = _chain(3)
    result = _verify(rows, _anchor(rows, 3), _anchor(rows, 3, head="f" * 64))
    assert _codes(result) == ["anchor_mismatch"] and result.anchors.matched == 1
    assert result.first_bad_entry is None


def test_anchor_objects_tampered_with_are_reported() -> None:
    rows = _chain(2)
    result = _verify(
        rows, _anchor(rows, 2, versions=2, delete_marked=True), foreign=("audit-anchors/latest.json",)
    )
    assert _codes(result) == ["anchor_foreign_object", "anchor_overwritten", "anchor_deleted"]
    assert result.anchors.matched == 1 and not result.valid


def test_unanchored_entries_are_a_problem_only_once_they_are_old() -> None:
    old = _chain(3, start=NOW - timedelta(hours=3))
    result = _verify(old)
    assert _codes(result) == ["unanchored_entries"] and result.first_bad_entry == 1
    assert _verify(old, _anchor(old, 3)).valid
    fresh = _chain(3)
    assert _verify(fresh).valid and _verify(fresh).anchors.unanchored_entries == 3


def test_problems_are_capped_but_counted() -> None:
    rows = _chain(80)
    anchors = [_anchor(rows, n, head="e" * 64) for n in range(1, 81)]
    result = _verify(rows, *anchors)
    assert len(result.problems) == 50 and result.anchors.mismatched == 80
