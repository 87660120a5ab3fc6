"""Helpers for the documents tests: callers, uploads through the presigned POST, and the
ingest worker driven from the real (moto) S3 → SQS notification queue."""

from __future__ import annotations

import json
import os
import textwrap
from typing import Any

import requests

from lotabots import aws
from lotabots.access import Principal, Role
from tests.support.api import FakeLambdaContext, api_event, invoke, load_function

ALICE = Principal(user_id="a11ce000000000000000000000000001", email="alice@example.com", role=Role.MEMBER)
BOB = Principal(user_id="b0b00000000000000000000000000002", email="bob@example.com", role=Role.MEMBER)
ADMIN = Principal(user_id="ad000000000000000000000000000003", email="admin@example.com", role=Role.ADMIN)
AUDITOR = Principal(user_id="a0d10000000000000000000000000004", email="audit@example.com", role=Role.AUDITOR)
OPERATOR = Principal(user_id="0be00000000000000000000000000005", email="ops@example.com", role=Role.OPERATOR)


def create(
    principal: Principal,
    *,
    title: str = "Quarterly report",
    content_type: str = "text/plain",
    size_bytes: int,
    metadata: dict[str, Any] | None = None,
) -> tuple[int, dict[str, str], Any]:
    body: dict[str, Any] = {"title": title, "content_type": content_type, "size_bytes": size_bytes}
    if metadata is not None:
        body["metadata"] = metadata
    return invoke("documents", api_event("POST", "/documents", body=body, principal=principal))


def upload(upload_form: dict[str, Any], data: bytes, *, content_type: str | None = None) -> int:
    """POST the file to the presigned form exactly as a browser or `curl -F` would."""
    fields = dict(upload_form["fields"])
    if content_type is not None:
        fields["Content-Type"] = content_type
    response = requests.post(
        upload_form["url"],
        data=fields,
        files={"file": ("upload.bin", data, fields.get("Content-Type", "application/octet-stream"))},
        timeout=10,
    )
    return response.status_code


def create_and_upload(
    principal: Principal, data: bytes, *, content_type: str = "text/plain", **kwargs: Any
) -> dict[str, Any]:
    status, _, body = create(principal, content_type=content_type, size_bytes=len(data), **kwargs)
    assert status == 201, body
    assert upload(body["upload"], data) in (200, 201, 204)
    return dict(body["document"])


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1700000000000",
                },
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:document-ingest",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def run_ingest(*, delete: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Receive everything on the ingest queue, run the worker on it as one batch (the way the
    Lambda event source mapping does) and delete what succeeded. Returns (messages, response)."""
    sqs = aws.client("sqs")
    url = os.environ["DOCUMENT_INGEST_QUEUE_URL"]
    messages = receive_ingest_messages()
    if not messages:
        return [], {"batchItemFailures": []}
    response = ingest_messages(messages)
    if delete:
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages, response


def receive_ingest_messages() -> list[dict[str, Any]]:
    """Everything on the ingest queue, left there (visibility timeout 0)."""
    sqs = aws.client("sqs")
    url = os.environ["DOCUMENT_INGEST_QUEUE_URL"]
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        )
        new = [m for m in got if m["MessageId"] not in {x["MessageId"] for x in messages}]
        if not new:
            break
        messages.extend(new)
    return messages


def ingest_messages(messages: list[dict[str, Any]]) -> dict[str, Any]:
    handler = load_function("document_ingest").lambda_handler
    return dict(handler(sqs_event(messages), FakeLambdaContext()))


def s3_message(
    key: str, *, bucket: str = "lotabots-documents", size: int = 1, etag: str = "x"
) -> dict[str, Any]:
    """An SQS message carrying an S3 ObjectCreated notification for `key` (URL-encoded like S3)."""
    from urllib.parse import quote_plus

    body = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-25T10:00:00.000Z",
                "eventName": "ObjectCreated:Post",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "ingest",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key), "size": size, "eTag": etag},
                },
            }
        ]
    }
    return {"MessageId": f"m-{key}", "ReceiptHandle": "rh", "Body": json.dumps(body), "MD5OfBody": "0"}


def get(principal: Principal, document_id: str) -> tuple[int, dict[str, str], Any]:
    return invoke("documents", api_event("GET", f"/documents/{document_id}", principal=principal))


def published_events() -> list[dict[str, Any]]:
    """DocumentIngested events that reached the gpu-jobs queue through the EventBridge rule."""
    sqs = aws.client("sqs")
    url = os.environ["GPU_JOBS_QUEUE_URL"]
    found = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        for m in got:
            event = json.loads(m["Body"])
            if event.get("detail-type") == "DocumentIngested":
                found.append(event)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return found


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1", "replace") + b")"


def make_pdf(pages: list[str], *, padding_bytes: int = 0) -> bytes:
    """A small, valid PDF (Helvetica text, one content stream per page), built by hand so the
    tests control every byte. `padding_bytes` adds an unreferenced binary stream object (makes a
    big file whose size is not text, as scanned PDFs are)."""
    objects: dict[int, bytes] = {}
    page_numbers = [4 + 2 * i for i in range(len(pages))]
    kids = b" ".join(b"%d 0 R" % n for n in page_numbers)
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages)
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    for index, text in enumerate(pages):
        lines = textwrap.wrap(text, 90) or [""]
        ops = (
            b"BT /F1 11 Tf 14 TL 50 750 Td "
            + b" ".join(_pdf_string(line) + b" Tj T*" for line in lines)
            + b" ET"
        )
        page_number, content_number = page_numbers[index], page_numbers[index] + 1
        objects[content_number] = b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream"
        objects[page_number] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content_number
        )
    if padding_bytes:
        blob = (bytes(range(256)) * (padding_bytes // 256 + 1))[:padding_bytes]
        objects[max(objects) + 1] = b"<< /Length %d >>\nstream\n" % len(blob) + blob + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref_at = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref_at)
    return bytes(out)


ELF_BINARY = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + bytes(range(256)) * 4
PE_BINARY = (
    b"MZ\x90\x00"
    + b"\x00" * 56
    + (128).to_bytes(4, "little")
    + b"\x00" * 64
    + b"PE\x00\x00"
    + b"\x4c\x01" * 200
)


# --- PDF extraction under budgets -----------------------------------------------------------

# Small size budgets for the hostile-PDF tests (every bomb is far over them) with time enough
# for a busy machine, so that the outcome never depends on its load; the tests of the time
# budget itself use TIME_PDF_BUDGET (the hard stop at deadline + KILL_GRACE_S bounds them to 3 s).
SMALL_PDF_BUDGET: dict[str, Any] = {
    "seconds": 10.0,
    "page_seconds": 5.0,
    "max_pages": 20,
    "max_stream_bytes": 512 * 1024,
    "max_decoded_bytes": 2 * 1024 * 1024,
    "max_text_chars": 100_000,
    "memory_mb": 512,
}


TIME_PDF_BUDGET: dict[str, Any] = {"seconds": 1.5, "page_seconds": 0.75}


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children (the PDF workers it started)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(usage.ru_utime + usage.ru_stime)


def pdf_budget(**overrides: Any) -> Any:
    """A PdfBudget starting now: SMALL_PDF_BUDGET with `overrides`."""
    import time

    from lotabots.documents.pdf_budget import PdfBudget

    values = {**SMALL_PDF_BUDGET, **overrides}
    return PdfBudget(deadline=time.monotonic() + values["seconds"], **values)


def extract_pdf_bytes(data: bytes, **overrides: Any) -> tuple[Any, Any]:
    """Run the budgeted PDF extraction on `data`; returns (PdfResult, ExtractedText).
    Raises UnacceptableContent like ingest does."""
    import tempfile

    from lotabots.documents.extraction import TextCollector
    from lotabots.documents.pdf_extraction import extract_pdf

    budget = pdf_budget(**overrides)
    collector = TextCollector(budget.max_text_chars)
    with tempfile.NamedTemporaryFile(suffix=".pdf") as spool:
        spool.write(data)
        spool.flush()
        result = extract_pdf(spool.name, collector, budget)
    return result, collector.finish(page_count=result.page_count, note=result.note)
