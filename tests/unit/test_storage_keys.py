"""The S3 key layouts (lotabots.storage_keys) that producers and consumers share."""

from __future__ import annotations

import pytest

from lotabots import storage_keys as keys
from lotabots.config import DocumentSettings


def test_document_keys_round_trip_and_quote_the_owner() -> None:
    """An owner id with a slash cannot add a path segment; the parsed key gives the ids back."""
    key = keys.document_key("team/alice", "doc-1", 3)
    assert key == "documents/team%2Falice/doc-1/3"
    assert key.startswith(keys.document_prefix("team/alice", "doc-1"))
    assert keys.parse_document_key("documents/team/alice/doc-1/3") is None  # as S3 would decode it
    parsed = keys.parse_document_key("documents/team%2Falice/doc-1/3")
    assert parsed == keys.DocumentKey("team/alice", "doc-1", 3)


@pytest.mark.parametrize(
    "key",
    [
        "quarantine/a/b/1",
        "documents/a/b",
        "documents/a/b/latest",
        "documents//b/1",
        "documents/a//1",
        "x/a/b/1",
    ],
)
def test_anything_else_is_not_a_document_key(key: str) -> None:
    """Ingest ignores objects whose key is not exactly documents/<owner>/<id>/<version>."""
    assert keys.parse_document_key(key) is None


def test_quarantine_keeps_owner_id_and_version() -> None:
    """A rejected upload moves under the quarantine prefix, configured or default."""
    key = keys.document_key("alice", "doc-1", 2)
    assert keys.quarantine_key(key) == "quarantine/alice/doc-1/2"
    assert keys.quarantine_key(key, "held/") == "held/alice/doc-1/2"
    assert DocumentSettings.model_fields["quarantine_prefix"].default == keys.QUARANTINE_PREFIX


def test_job_keys_stay_under_the_job_prefix() -> None:
    """Inputs, results and reports sit under jobs/<id>/, which results and attestation check;
    partial uploads sit under the one prefix the lifecycle rule expires."""
    assert keys.job_input_key("j1") == "jobs/j1/input.txt"
    assert keys.job_key("j1", keys.RESULT_NAME).startswith(keys.job_prefix("j1"))
    assert keys.job_key("j1", keys.REPORT_NAME) == "jobs/j1/report.json"
    partial = keys.job_partial_prefix("j1", "run-7")
    assert partial == "jobs/.partial/j1/run-7/" and partial.startswith(keys.JOBS_PARTIAL_PREFIX)
    assert not partial.startswith(keys.job_prefix("j1"))


def test_gpu_jobs_write_where_the_platform_reads() -> None:
    """The GPU job's artifact store (packaged with lotabots) uses the same layout."""
    from gpu_jobs.artifacts import ArtifactStore

    store = ArtifactStore("bucket", "j1", run_id="run-7")
    assert store.prefix == keys.job_prefix("j1")
    assert store.partial_prefix == keys.job_partial_prefix("j1", "run-7")


def test_anchor_keys_sort_by_entries_and_parse_back() -> None:
    """Anchor keys carry (entries, head) zero-padded so they list in chain order."""
    head = "ab" * 32
    assert keys.anchor_key(5, head) == f"audit-anchors/000000000005-{head}.json"
    assert keys.anchor_key(10, head) > keys.anchor_key(9, head)
    assert keys.parse_anchor_key(keys.anchor_key(5, head)) == (5, head)
    assert keys.parse_anchor_key("audit-anchors/latest.json") is None
    assert keys.parse_anchor_key(f"audit-anchors/5-{head}.json") is None
