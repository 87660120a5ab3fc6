"""The ingest worker, driven by the real S3 → SQS notifications moto emits: checks against
the declaration, hashing, extraction, quarantine, the DocumentIngested event and idempotency
under redelivery."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest
from sqlalchemy import select

from lotabots import aws, config
from lotabots.audit.models import AuditEntry
from lotabots.db import session_scope
from lotabots.documents import service
from lotabots.documents.models import Document
from tests.support.api import api_event, invoke
from tests.support.documents import (
    ADMIN,
    ALICE,
    BOB,
    ELF_BINARY,
    PE_BINARY,
    create,
    create_and_upload,
    get,
    ingest_messages,
    make_pdf,
    published_events,
    run_ingest,
    s3_message,
    upload,
)

pytestmark = pytest.mark.usefixtures("db", "aws_env")
BUCKET = "lotabots-documents"


def _doc(document_id: str) -> dict[str, Any]:
    status, _, body = get(ALICE, document_id)
    assert status == 200, body
    return dict(body)


def _keys(prefix: str) -> list[str]:
    listing = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def _declare_and_upload(
    data: bytes, *, declared_type: str, declared_size: int, sent_type: str | None = None
) -> str:
    status, _, body = create(ALICE, content_type=declared_type, size_bytes=declared_size)
    assert status == 201, body
    assert upload(body["upload"], data, content_type=sent_type) == 204
    return str(body["document"]["id"])


def test_text_upload_becomes_ready_with_hash_counts_excerpt_and_download_url() -> None:
    data = ("Ünïcode text with exactly seven words here.\n" * 20).encode()
    doc = create_and_upload(ALICE, data)
    messages, response = run_ingest()
    assert response == {"batchItemFailures": []}
    assert any("s3:TestEvent" in m["Body"] for m in messages)  # acknowledged, not retried
    ready = _doc(doc["id"])
    assert ready["status"] == "ready" and ready["reason"] is None
    assert ready["sha256"] == hashlib.sha256(data).hexdigest()
    assert ready["size_bytes"] == len(data)
    assert ready["word_count"] == 140 and ready["page_count"] is None
    assert ready["excerpt"].startswith("Ünïcode text with exactly seven words here. Ünïcode")
    assert len(ready["excerpt"]) <= 280
    assert ready["download_url"].startswith("https://") and "X-Amz-Signature=" in ready["download_url"]
    with session_scope() as session:
        assert service.load_text(session, doc["id"]) == data.decode()


def test_pdf_upload_is_extracted_with_pages_and_words() -> None:
    pdf = make_pdf(["Annual report of the energy cooperative", "Second page has five words"])
    doc = create_and_upload(ALICE, pdf, content_type="application/pdf")
    run_ingest()
    ready = _doc(doc["id"])
    assert ready["status"] == "ready", ready["reason"]
    assert ready["page_count"] == 2 and ready["word_count"] == 11
    assert ready["excerpt"].startswith("Annual report of the energy cooperative")
    assert ready["sha256"] == hashlib.sha256(pdf).hexdigest()


def test_json_csv_and_markdown_are_accepted() -> None:
    ids = [
        _declare_and_upload(b'{"a": [1, 2, 3]}', declared_type="application/json", declared_size=16),
        _declare_and_upload(b"name,qty\nbolts,4\n", declared_type="text/csv", declared_size=17),
        _declare_and_upload(b"# Title\n\n- item\n", declared_type="text/markdown", declared_size=16),
    ]
    run_ingest()
    assert [_doc(i)["status"] for i in ids] == ["ready", "ready", "ready"]


def test_document_ingested_is_published_once_with_the_documented_detail() -> None:
    data = b"one two three"
    doc = create_and_upload(ALICE, data)
    run_ingest()
    events = published_events()
    assert len(events) == 1
    assert events[0]["source"] == "lotabots.documents"
    detail = events[0]["detail"]
    assert {k: detail[k] for k in detail if k != "correlation_id"} == {
        "document_id": doc["id"],
        "owner_id": ALICE.user_id,
        "version": 1,
        "content_type": "text/plain",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "word_count": 3,
        "page_count": None,
    }


def test_redelivered_notifications_change_nothing() -> None:
    doc = create_and_upload(ALICE, b"idempotent ingest")
    messages, _ = run_ingest(delete=False)
    first = _doc(doc["id"])
    assert first["status"] == "ready"
    assert len(published_events()) == 1
    for _ in range(3):
        assert ingest_messages(messages) == {"batchItemFailures": []}
    again = _doc(doc["id"])
    assert again == {**first, "download_url": again["download_url"]}
    assert published_events() == []
    with session_scope() as session:
        ingested = session.scalars(select(AuditEntry).where(AuditEntry.action == "document.ingested")).all()
    assert len(ingested) == 1


def test_event_that_failed_to_publish_is_sent_on_redelivery(monkeypatch: pytest.MonkeyPatch) -> None:
    from lotabots.documents import ingest

    doc = create_and_upload(ALICE, b"eventually announced")
    calls: list[str] = []

    def failing_publish(*args: Any, **kwargs: Any) -> str:
        calls.append("x")
        raise RuntimeError("EventBridge unavailable")

    with monkeypatch.context() as patched:
        patched.setattr(ingest.events, "publish", failing_publish)
        messages, response = run_ingest(delete=False)
    assert len(response["batchItemFailures"]) == 1  # the S3 record's message is retried
    assert calls and _doc(doc["id"])["status"] == "ready"
    failed = [m for m in messages if m["MessageId"] == response["batchItemFailures"][0]["itemIdentifier"]]
    assert ingest_messages(failed) == {"batchItemFailures": []}
    assert len(published_events()) == 1
    assert ingest_messages(failed) == {"batchItemFailures": []}
    assert published_events() == []


@pytest.mark.parametrize(
    ("data", "declared_type", "declared_size", "reason"),
    [
        (b"0123456789" * 3, "text/plain", 10, "larger than the 10 bytes declared"),
        (b"01234", "text/plain", 10, "smaller than the 10 bytes declared"),
        (b"", "text/plain", 10, "the file is empty"),
        (ELF_BINARY, "application/pdf", len(ELF_BINARY), "ELF executable"),
        (PE_BINARY, "text/plain", len(PE_BINARY), "Windows executable"),
        (b"%PDF-1.7\n" + b"\x00 garbage \x01" * 50, "application/pdf", 559, "not a readable PDF"),
        (b"not a pdf at all", "application/pdf", 16, "no %PDF- header"),
        (b"caf\xe9 latin-1", "text/plain", 12, "not UTF-8 text"),
        (b'{"unterminated": ', "application/json", 17, "not valid JSON"),
    ],
)
def test_uploads_that_do_not_match_their_declaration_are_rejected_and_quarantined(
    data: bytes, declared_type: str, declared_size: int, reason: str
) -> None:
    document_id = _declare_and_upload(data, declared_type=declared_type, declared_size=declared_size)
    _, response = run_ingest()
    assert response == {"batchItemFailures": []}
    rejected = _doc(document_id)
    assert rejected["status"] == "rejected"
    assert reason in rejected["reason"]
    assert rejected["download_url"] is None and rejected["excerpt"] is None
    assert _keys(f"documents/{ALICE.user_id}/{document_id}/") == []
    assert _keys(f"quarantine/{ALICE.user_id}/{document_id}/") == [
        f"quarantine/{ALICE.user_id}/{document_id}/1"
    ]
    assert published_events() == []
    with session_scope() as session:
        assert service.load_text(session, document_id) is None


def test_upload_with_another_content_type_than_declared_is_rejected() -> None:
    document_id = _declare_and_upload(
        b"plain", declared_type="text/plain", declared_size=5, sent_type="text/csv"
    )
    run_ingest()
    rejected = _doc(document_id)
    assert rejected["status"] == "rejected"
    assert "uploaded as text/csv but declared as text/plain" in rejected["reason"]


def test_upload_over_the_size_limit_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCUMENT_MAX_BYTES", "64")
    config.reset()
    document_id = _declare_and_upload(b"x" * 200, declared_type="text/plain", declared_size=60)
    run_ingest()
    assert "the limit is 64 bytes" in _doc(document_id)["reason"]


def test_rejected_objects_are_deleted_when_quarantine_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCUMENT_QUARANTINE_PREFIX", "")
    config.reset()
    document_id = _declare_and_upload(
        ELF_BINARY, declared_type="application/pdf", declared_size=len(ELF_BINARY)
    )
    run_ingest()
    assert _doc(document_id)["status"] == "rejected"
    assert _keys(f"documents/{ALICE.user_id}/{document_id}/") == []
    assert _keys("quarantine/") == []


def test_a_fresh_upload_after_a_rejection_is_processed() -> None:
    _, _, body = create(ALICE, size_bytes=5)
    form, document_id = body["upload"], body["document"]["id"]
    upload(form, b"\xff\xfe\x00\x00x")
    run_ingest()
    assert _doc(document_id)["status"] == "rejected"
    upload(form, b"fixed")
    run_ingest()
    fixed = _doc(document_id)
    assert fixed["status"] == "ready" and fixed["reason"] is None and fixed["excerpt"] == "fixed"


def test_large_text_keeps_bounded_text_but_counts_all_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCUMENT_MAX_TEXT_CHARS", "1000")
    monkeypatch.setenv("DOCUMENT_INGEST_CHUNK_BYTES", "4096")
    config.reset()
    data = b"lorem ipsum dolor sit amet " * 4000
    doc = create_and_upload(ALICE, data)
    run_ingest()
    ready = _doc(doc["id"])
    assert ready["status"] == "ready" and ready["word_count"] == 20_000 and ready["text_truncated"] is True
    with session_scope() as session:
        assert len(service.load_text(session, doc["id"]) or "") == 1000


def test_notifications_that_are_not_for_a_current_document_are_ignored_without_failing() -> None:
    doc = create_and_upload(ALICE, b"current")
    run_ingest()
    messages = [
        s3_message("documents/someone/0000/1"),
        s3_message("not-documents/x"),
        s3_message(f"documents/{BOB.user_id}/{doc['id']}/1"),  # wrong owner for that id
        s3_message(f"documents/{ALICE.user_id}/{doc['id']}/7"),  # not the current version
        s3_message("documents/a/b/1", bucket="some-other-bucket"),
    ]
    assert ingest_messages(messages) == {"batchItemFailures": []}
    assert _doc(doc["id"])["status"] == "ready"


def test_malformed_messages_are_reported_as_batch_item_failures_only() -> None:
    doc = create_and_upload(ALICE, b"good one")
    messages, _ = run_ingest(delete=False)
    good = [m for m in messages if "Records" in m["Body"]]
    bad = {"MessageId": "bad-1", "ReceiptHandle": "rh", "Body": "{not json", "MD5OfBody": "0"}
    odd = {"MessageId": "bad-2", "ReceiptHandle": "rh", "Body": json.dumps({"hello": 1}), "MD5OfBody": "0"}
    response = ingest_messages([bad, *good, odd])
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["bad-1", "bad-2"]
    assert _doc(doc["id"])["status"] == "ready"


def test_transient_s3_failure_is_retried_and_then_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    from lotabots.documents import storage

    doc = create_and_upload(ALICE, b"flaky storage")
    real = storage.iter_object

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("S3 read timed out")

    monkeypatch.setattr(storage, "iter_object", broken)
    messages, response = run_ingest(delete=False)
    assert len(response["batchItemFailures"]) == 1
    assert _doc(doc["id"])["status"] == "processing"
    monkeypatch.setattr(storage, "iter_object", real)
    assert ingest_messages(messages) == {"batchItemFailures": []}
    assert _doc(doc["id"])["status"] == "ready"


def test_ingest_result_for_a_superseded_version_is_discarded() -> None:
    doc = create_and_upload(ALICE, b"version one")
    messages, _ = run_ingest(delete=False)
    invoke(
        "documents",
        api_event(
            "POST",
            f"/documents/{doc['id']}/versions",
            body={"content_type": "text/plain", "size_bytes": 11},
            principal=ALICE,
        ),
    )
    assert ingest_messages(messages) == {"batchItemFailures": []}
    pending = _doc(doc["id"])
    assert pending["status"] == "pending_upload" and pending["version"] == 2


def test_new_version_is_announced_even_with_identical_bytes() -> None:
    data = b"same bytes"
    doc = create_and_upload(ALICE, data)
    run_ingest()
    assert len(published_events()) == 1
    _, _, body = invoke(
        "documents",
        api_event(
            "POST",
            f"/documents/{doc['id']}/versions",
            body={"content_type": "text/plain", "size_bytes": len(data)},
            principal=ALICE,
        ),
    )
    upload(body["upload"], data)
    run_ingest()
    events = published_events()
    assert [e["detail"]["version"] for e in events] == [2]


def test_helpers_for_other_domains_respect_visibility() -> None:
    doc = create_and_upload(ALICE, b"shared helper text")
    run_ingest()
    with session_scope() as session:
        assert service.get_visible_document(session, ALICE, doc["id"]).id == doc["id"]
        assert service.get_visible_document(session, ADMIN, doc["id"]).id == doc["id"]
        with pytest.raises(Exception) as caught:
            service.get_visible_document(session, BOB, doc["id"])
        assert getattr(caught.value, "status", None) == 404
        assert service.visible_owner_filter(BOB) == BOB.user_id
        assert service.visible_owner_filter(ADMIN) is None
        assert service.load_text(session, doc["id"]) == "shared helper text"
        row = session.get(Document, doc["id"])
        assert row is not None
    pending = create(ALICE, size_bytes=3)[2]["document"]["id"]
    with session_scope() as session:
        assert service.load_text(session, pending) is None
        assert service.load_text(session, "0" * 32) is None
    assert os.environ["DOCUMENT_INGEST_QUEUE_URL"]
