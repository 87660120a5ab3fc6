"""Anchoring and verification against an attacker who can write the database: the scheduled
worker (functions/audit_anchor) through its real handler and schedule event, the Object Lock
bucket in moto, and GET /audit/verify. Every tampering here is detected, and the anchoring
job never anchors over it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from lotabots import audit, aws
from lotabots.audit import anchors, service
from lotabots.audit.models import AuditEntry
from lotabots.db import session_scope
from lotabots.storage_keys import AUDIT_ANCHORS_PREFIX, anchor_key
from tests.support.api import api_event, invoke
from tests.support.audit import (
    anchor_keys,
    bucket,
    edit_in_place,
    remove,
    rewrite_chain,
    run_anchor,
    seed,
    verify,
)
from tests.support.jobs import AUDITOR

pytestmark = pytest.mark.usefixtures("db", "aws_env")


def _codes(result: dict[str, object]) -> list[str]:
    return [p["code"] for p in result["problems"]]  # type: ignore[attr-defined,index]


def test_an_empty_log_is_valid_and_nothing_is_anchored() -> None:
    assert run_anchor() == {"status": "empty", "entries": 0, "head": None, "key": None}
    result = verify()
    assert result["valid"] is True and result["entries"] == 0 and result["head"] is None
    assert anchor_keys() == []


def test_audit_anchor__schedule_anchors_the_head_once_and_verify_matches_it() -> None:
    seqs = seed(5)
    run = run_anchor()
    assert run["status"] == "anchored" and run["entries"] == 5
    assert run["key"] == anchor_key(5, run["head"])
    # A retried or overlapping run writes nothing new (If-None-Match): still one version.
    assert run_anchor()["status"] == "unchanged"
    assert anchor_keys() == [run["key"]]

    body = json.loads(aws.client("s3").get_object(Bucket=bucket(), Key=run["key"])["Body"].read())
    assert body["entries"] == 5 and body["head"] == run["head"] and body["head_seq"] == seqs[-1]

    result = verify()
    assert result["valid"] is True and result["problems"] == [] and result["first_bad_entry"] is None
    assert result["entries"] == 5 and result["head"] == run["head"] and result["head_seq"] == seqs[-1]
    assert result["anchors"]["count"] == 1 and result["anchors"]["matched"] == 1
    assert result["anchors"]["latest"]["entries"] == 5 and result["anchors"]["unanchored_entries"] == 0


def test_the_anchor_is_locked_in_compliance_mode() -> None:
    seed(2)
    key = run_anchor()["key"]
    s3 = aws.client("s3")
    head = s3.head_object(Bucket=bucket(), Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"] > datetime.now(UTC)
    version = s3.list_object_versions(Bucket=bucket(), Prefix=key)["Versions"][0]["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket(), Key=key, VersionId=version)


def test_new_entries_are_anchored_on_the_next_run_and_every_anchor_must_match() -> None:
    seed(3)
    run_anchor()
    seed(2, start=3)
    assert verify()["anchors"]["unanchored_entries"] == 2
    assert run_anchor()["entries"] == 5
    result = verify()
    assert result["valid"] is True
    assert result["anchors"]["count"] == 2 and result["anchors"]["matched"] == 2


def test_a_row_edited_in_the_database_is_found_and_not_anchored() -> None:
    """The issue's attack: an audit row edited in the database."""
    seqs = seed(4)
    run_anchor()
    edit_in_place(seqs[1], details={"n": 1, "role": "admin"})
    result = verify()
    assert result["valid"] is False and result["first_bad_entry"] == seqs[1]
    assert "entry_altered" in _codes(result) and "anchor_mismatch" in _codes(result)

    seed(1, start=4)  # business goes on; the worker must not bless the edited chain
    with pytest.raises(service.AuditTamperDetected, match="entry_altered"):
        run_anchor()
    assert len(anchor_keys()) == 1


def test_an_edit_before_the_first_anchor_is_still_caught_by_the_chain() -> None:
    seqs = seed(3)
    edit_in_place(seqs[0], actor_id="someone-else")
    result = verify()
    assert result["valid"] is False and result["first_bad_entry"] == seqs[0]
    assert _codes(result) == ["entry_altered"]


def test_a_deleted_row_breaks_the_link_of_the_next_one() -> None:
    seqs = seed(5)
    run_anchor()
    remove(seqs[2])
    result = verify()
    assert result["valid"] is False and result["first_bad_entry"] == seqs[3]
    assert _codes(result)[0] == "chain_broken" and "anchor_beyond_chain" in _codes(result)
    assert result["entries"] == 4


def test_a_recomputed_chain_is_consistent_but_the_anchors_catch_it() -> None:
    """The attacker edits an entry and recomputes every hash: the chain alone looks intact."""
    seqs = seed(3)
    run_anchor()
    seqs += seed(3, start=3)
    run_anchor()
    rewrite_chain(seqs[4], details={"n": 4, "note": "never happened"})
    with session_scope() as session:
        assert audit.verify_chain(session) == (True, None)

    result = verify()
    assert result["valid"] is False
    assert _codes(result) == ["anchor_mismatch"]
    assert result["anchors"]["matched"] == 1 and result["anchors"]["mismatched"] == 1
    # The first 3 entries still match their anchor: the rewrite starts at or after the 4th.
    assert result["first_bad_entry"] == seqs[3]


def test_rewriting_the_whole_chain_and_forging_a_new_anchor_does_not_help() -> None:
    seqs = seed(4)
    run_anchor()
    rewrite_chain(seqs[0], actor_id="nobody")
    seed(1, start=4)
    # The attacker anchors their version too; the anchor made before the rewrite still disagrees.
    with session_scope() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert last is not None
        anchors.write_anchor(
            bucket(), entries=5, head=last.hash, head_seq=last.seq, head_at=last.at, stage="test"
        )
    result = verify()
    assert result["valid"] is False and result["first_bad_entry"] == seqs[0]
    assert _codes(result) == ["anchor_mismatch"] and result["anchors"]["matched"] == 1


def test_a_truncated_tail_is_found_by_the_anchor() -> None:
    seqs = seed(6)
    run_anchor()
    remove(*seqs[4:])
    result = verify()
    assert result["valid"] is False and _codes(result) == ["anchor_beyond_chain"]
    assert result["entries"] == 4 and result["anchors"]["mismatched"] == 1


def test_a_hidden_anchor_is_reported_and_still_compared() -> None:
    """Anchor missing: a DELETE without version id only adds a delete marker; the locked
    version stays, verify reads it from the version listing and says it was hidden."""
    seqs = seed(3)
    key = run_anchor()["key"]
    aws.client("s3").delete_object(Bucket=bucket(), Key=key)
    result = verify()
    assert result["valid"] is False and _codes(result) == ["anchor_deleted"]
    assert result["anchors"]["matched"] == 1
    # Hiding the anchor first and then rewriting the chain is caught all the same.
    rewrite_chain(seqs[1], target_id="other")
    assert set(_codes(verify())) == {"anchor_deleted", "anchor_mismatch"}


def test_tampered_anchors_raise_the_alarm_metric_but_anchoring_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An object dropped under the prefix is locked for the retention period: it must not stop
    the newest entries from being anchored, only alarm."""
    seed(2)
    run_anchor()
    aws.client("s3").put_object(Bucket=bucket(), Key=AUDIT_ANCHORS_PREFIX + "notes.txt", Body=b"hello")
    seed(1, start=2)
    capsys.readouterr()
    assert run_anchor()["status"] == "anchored"
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["AuditChainInvalid"] for m in emitted if "AuditChainInvalid" in m] == [[1.0]]
    assert _codes(verify()) == ["anchor_foreign_object"]


def test_an_overwritten_anchor_is_reported() -> None:
    seed(2)
    key = run_anchor()["key"]
    aws.client("s3").put_object(Bucket=bucket(), Key=key, Body=b'{"entries": 999}')
    result = verify()
    assert result["valid"] is False and _codes(result) == ["anchor_overwritten"]
    assert result["anchors"]["matched"] == 1


def test_a_foreign_object_under_the_prefix_is_reported() -> None:
    seed(1)
    run_anchor()
    aws.client("s3").put_object(Bucket=bucket(), Key=AUDIT_ANCHORS_PREFIX + "latest.json", Body=b"{}")
    assert _codes(verify()) == ["anchor_foreign_object"]


def test_old_entries_that_no_anchor_covers_mean_the_anchors_are_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Anchor missing: anchoring stopped (or its anchors were removed after their retention)."""
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    with monkeypatch.context() as patched:
        patched.setattr(service, "utcnow", lambda: two_hours_ago)
        seqs = seed(2)
    result = verify()
    assert result["valid"] is False and _codes(result) == ["unanchored_entries"]
    assert result["first_bad_entry"] == seqs[0] and result["anchors"]["unanchored_entries"] == 2
    # Not tampering: the next run anchors them and the log is valid again.
    assert run_anchor()["status"] == "anchored"
    assert verify()["valid"] is True


def test_fresh_unanchored_entries_are_fine() -> None:
    seed(2)
    run_anchor()
    seed(1, start=2)
    result = verify()
    assert result["valid"] is True and result["anchors"]["unanchored_entries"] == 1


def test_without_the_anchor_bucket_verify_is_503_not_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from lotabots import config

    seed(1)
    monkeypatch.setenv("AUDIT_ANCHOR_BUCKET", "no-such-anchor-bucket")
    config.reset()
    status, _, body = invoke("audit", api_event("GET", "/audit/verify", principal=AUDITOR))
    assert status == 503 and body["code"] == "anchors_unavailable"
    assert "no-such-anchor-bucket" in body["message"]


def test_a_schedule_event_of_the_wrong_shape_fails_the_run() -> None:
    from pydantic import ValidationError

    from tests.support.api import FakeLambdaContext, load_function

    with pytest.raises(ValidationError):
        load_function("audit_anchor").lambda_handler({"detail": {}}, FakeLambdaContext())
    assert anchor_keys() == []
