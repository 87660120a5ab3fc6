"""The sample events in events/ (used with `sam local invoke -e`) are valid for the documents
and document_ingest functions: each one routes, validates and does what its name says."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from lotabots import aws
from lotabots.access import Principal, Role
from tests.support.api import FakeLambdaContext, invoke, load_function
from tests.support.documents import create_and_upload, get, run_ingest

pytestmark = pytest.mark.usefixtures("db", "aws_env")
EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_ID = "9b1f0c2d3e4f45a6b7c8d9e0f1a2b3c4"


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def _principal(event: dict[str, Any]) -> Principal:
    authorizer = event["requestContext"]["authorizer"]
    return Principal(authorizer["user_id"], authorizer["email"], Role(authorizer["role"]))


def _retarget(event: dict[str, Any], document_id: str) -> dict[str, Any]:
    """Point a sample event at a document that exists in this test's database."""
    text = json.dumps(event).replace(SAMPLE_ID, document_id)
    return dict(json.loads(text))


def test_create_event_declares_an_upload() -> None:
    status, _, body = invoke("documents", _load("documents_create.json"))
    assert status == 201, body
    assert body["document"]["content_type"] == "application/pdf"
    assert body["upload"]["fields"]["Content-Type"] == "application/pdf"


def test_list_event_lists() -> None:
    event = _load("documents_list.json")
    create_and_upload(
        _principal(event), b"The quarterly report", title="Quarterly report", metadata={"team": "finance"}
    )
    run_ingest()
    status, _, body = invoke("documents", event)
    assert status == 200, body
    assert [item["title"] for item in body["items"]] == ["Quarterly report"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("documents_get.json", 200),
        ("documents_update.json", 200),
        ("documents_new_version.json", 201),
        ("documents_delete.json", 204),
    ],
)
def test_document_route_events(name: str, expected: int) -> None:
    event = _load(name)
    principal = _principal(event)
    doc = create_and_upload(principal, b"some text")
    event = _retarget(event, doc["id"])
    if "If-Match" in event["headers"]:
        etag = get(principal, doc["id"])[1]["ETag"]
        event["headers"]["If-Match"] = etag
        event["multiValueHeaders"]["If-Match"] = [etag]
    status, _, body = invoke("documents", event)
    assert status == expected, body


def test_s3_via_sqs_event_is_ingested() -> None:
    event = _load("document_ingest_s3_sqs.json")
    owner = Principal("3f2a9c0d5e8b4a7c9d1e2f3a4b5c6d7e", "m@example.com", Role.MEMBER)
    doc = create_and_upload(owner, b"ingested from the sample event")
    # Drop moto's own notification so that the sample event is the delivery that ingests.
    aws.client("sqs").purge_queue(QueueUrl=os.environ["DOCUMENT_INGEST_QUEUE_URL"])
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["key"] = quote_plus(f"documents/{owner.user_id}/{doc['id']}/1")
    event["Records"][0]["body"] = json.dumps(body)
    handler = load_function("document_ingest").lambda_handler
    assert handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert get(owner, doc["id"])[2]["status"] == "ready"


def test_s3_test_event_is_acknowledged() -> None:
    handler = load_function("document_ingest").lambda_handler
    assert handler(_load("document_ingest_s3_test_event.json"), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
