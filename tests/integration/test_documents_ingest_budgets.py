"""Hostile uploads through the real `document_ingest` lambda_handler, fed the S3 → SQS
notifications moto emits: every one settles (`ready` with partial text and an
`extraction_note`, or `rejected`) in bounded time, and its message is acknowledged — no retry
loop, no document stuck in `processing`. The variant matrix of PDF budgets is in
tests/unit/test_documents_pdf_budgets.py; here is what ingest, the API and SQS make of it."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from lotabots import config
from lotabots.db import session_scope
from lotabots.documents import service
from tests.support import hostile_pdfs as hp
from tests.support.api import FakeLambdaContext, api_event, invoke, load_function
from tests.support.documents import (
    ALICE,
    children_cpu_seconds,
    create_and_upload,
    get,
    ingest_messages,
    published_events,
    receive_ingest_messages,
    run_ingest,
    sqs_event,
)

pytestmark = pytest.mark.usefixtures("db", "aws_env")
MIB = hp.MIB


@pytest.fixture
def small_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small size budgets; time enough for a busy machine (the time budget has its own test)."""
    for name, value in {
        "DOCUMENT_EXTRACT_SECONDS": "10",
        "DOCUMENT_PDF_PAGE_SECONDS": "5",
        "DOCUMENT_PDF_MAX_PAGES": "5",
        "DOCUMENT_PDF_MAX_STREAM_BYTES": str(512 * 1024),
        "DOCUMENT_PDF_MAX_DECODED_BYTES": str(2 * MIB),
    }.items():
        monkeypatch.setenv(name, value)
    config.reset()


def _doc(document_id: str) -> dict[str, Any]:
    status, _, body = get(ALICE, document_id)
    assert status == 200, body
    return dict(body)


def _ingest_timed() -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    _, response = run_ingest()
    return response, time.monotonic() - started


def _stored_text(document_id: str) -> str:
    with session_scope() as session:
        return service.load_text(session, document_id) or ""


def test_the_reported_pdf_bomb_is_rejected_at_once_and_its_message_acknowledged() -> None:
    """Five 60 MiB Flate content streams in a < 1 MB file, under the default budgets."""
    data = hp.content_stream_bomb(streams=5, inflated=60 * MIB)
    doc = create_and_upload(ALICE, data, content_type="application/pdf")
    cpu = children_cpu_seconds()
    response, elapsed = _ingest_timed()
    assert response == {"batchItemFailures": []}
    assert elapsed < 15, f"ingest took {elapsed:.1f} s"
    assert children_cpu_seconds() - cpu < 2.5  # the worker's CPU time: load does not stretch it
    rejected = _doc(doc["id"])
    assert rejected["status"] == "rejected"
    assert "no page could be read" in rejected["reason"] and "size limit" in rejected["reason"]
    assert rejected["extraction_note"] is None and rejected["download_url"] is None
    assert published_events() == []


@pytest.mark.usefixtures("small_budgets")
def test_a_bomb_between_good_pages_leaves_a_ready_document_with_partial_text_and_a_note() -> None:
    doc = create_and_upload(ALICE, hp.bomb_between_pages(inflated=8 * MIB), content_type="application/pdf")
    messages, response = run_ingest(delete=False)
    assert response == {"batchItemFailures": []}
    ready = _doc(doc["id"])
    assert ready["status"] == "ready" and ready["reason"] is None
    assert ready["page_count"] == 3 and ready["text_truncated"] is True
    assert ready["extraction_note"].startswith("partial text: page 2 could not be read (a size limit")
    assert ready["excerpt"].startswith("first page survives")
    assert "third page survives" in _stored_text(doc["id"])
    assert [e["detail"]["document_id"] for e in published_events()] == [doc["id"]]
    assert ingest_messages(messages) == {"batchItemFailures": []}  # redelivery changes nothing
    assert _doc(doc["id"]) == {**ready, "download_url": _doc(doc["id"])["download_url"]}
    assert published_events() == []


@pytest.mark.usefixtures("small_budgets")
def test_pages_past_the_page_budget_are_not_read() -> None:
    doc = create_and_upload(ALICE, hp.many_pages(300), content_type="application/pdf")
    response, elapsed = _ingest_timed()
    assert response == {"batchItemFailures": []} and elapsed < 10
    ready = _doc(doc["id"])
    assert ready["status"] == "ready" and ready["page_count"] == 5 and ready["word_count"] == 20
    assert "more than 5 pages (the page limit)" in ready["extraction_note"]


@pytest.mark.usefixtures("small_budgets")
def test_a_page_that_outruns_its_time_slice_rejects_a_one_page_pdf_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCUMENT_EXTRACT_SECONDS", "1.5")
    monkeypatch.setenv("DOCUMENT_PDF_PAGE_SECONDS", "0.75")
    config.reset()
    data = hp.xobject_fanout(levels=6, fanout=10, leaf_bytes=16 * 1024)
    doc = create_and_upload(ALICE, data, content_type="application/pdf")
    response, elapsed = _ingest_timed()
    assert response == {"batchItemFailures": []}
    assert elapsed < 10, f"ingest took {elapsed:.1f} s"
    rejected = _doc(doc["id"])
    assert rejected["status"] == "rejected"
    # The page's own slice or, on a busy machine, the document's whole budget runs out first.
    assert re.search(r"took longer than 0\.75 s|time budget of 1\.5 s ran out", rejected["reason"])


def test_text_that_no_database_column_takes_is_cleaned_before_it_is_stored() -> None:
    doc = create_and_upload(ALICE, hp.unstorable_text(), content_type="application/pdf")
    run_ingest()
    ready = _doc(doc["id"])
    assert ready["status"] == "ready", ready["reason"]
    stored = _stored_text(doc["id"])
    assert "A\ufffdA" in stored and "\x00" not in stored


def test_a_giant_text_line_is_ready_with_bounded_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCUMENT_MAX_TEXT_CHARS", "10000")
    config.reset()
    doc = create_and_upload(ALICE, hp.one_giant_line(8 * MIB))
    response, elapsed = _ingest_timed()
    assert response == {"batchItemFailures": []} and elapsed < 10
    ready = _doc(doc["id"])
    assert ready["status"] == "ready" and ready["word_count"] == 1 and ready["text_truncated"] is True
    assert len(_stored_text(doc["id"])) == 10_000


def test_json_nested_too_deeply_is_rejected_not_retried() -> None:
    doc = create_and_upload(ALICE, hp.deeply_nested_json(100_000), content_type="application/json")
    _, response = run_ingest()
    assert response == {"batchItemFailures": []}
    rejected = _doc(doc["id"])
    assert rejected["status"] == "rejected" and "nested too deeply" in rejected["reason"]


class _EndingContext(FakeLambdaContext):
    def __init__(self, remaining_ms: int) -> None:
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


def test_a_document_that_cannot_get_its_full_budget_waits_for_the_next_delivery() -> None:
    doc = create_and_upload(ALICE, hp.plain(["patience pays"]), content_type="application/pdf")
    records = [m for m in receive_ingest_messages() if "Records" in m["Body"]]
    handler = load_function("document_ingest").lambda_handler
    response = handler(sqs_event(records), _EndingContext(remaining_ms=8_000))
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [records[0]["MessageId"]]
    assert _doc(doc["id"])["status"] == "pending_upload"  # not even claimed
    assert handler(sqs_event(records), _EndingContext(remaining_ms=120_000)) == {"batchItemFailures": []}
    assert _doc(doc["id"])["status"] == "ready"


@pytest.mark.usefixtures("small_budgets")
def test_a_new_version_clears_the_note_of_the_partial_one() -> None:
    doc = create_and_upload(ALICE, hp.many_pages(20), content_type="application/pdf")
    run_ingest()
    assert _doc(doc["id"])["extraction_note"] is not None
    status, _, body = invoke(
        "documents",
        api_event(
            "POST",
            f"/documents/{doc['id']}/versions",
            body={"content_type": "application/pdf", "size_bytes": 1000},
            principal=ALICE,
        ),
    )
    assert status == 201, body
    assert body["document"]["extraction_note"] is None and body["document"]["text_truncated"] is False
