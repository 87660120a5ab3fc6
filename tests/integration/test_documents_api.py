"""Documents API over moto S3 and the test databases (SQLite, and PostgreSQL when configured):
presigned uploads, reads, changes with If-Match, deletes, versions and object-level access."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from lotabots import aws
from lotabots.audit.models import AuditEntry
from lotabots.db import session_scope
from lotabots.documents.models import Document
from tests.support.api import api_event, invoke
from tests.support.documents import (
    ADMIN,
    ALICE,
    AUDITOR,
    BOB,
    create,
    create_and_upload,
    get,
    run_ingest,
    upload,
)

pytestmark = pytest.mark.usefixtures("db", "aws_env")


def _policy(fields: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(fields["policy"])))


def _audit(action: str) -> list[AuditEntry]:
    with session_scope() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _objects(prefix: str = "documents/") -> list[str]:
    listing = aws.client("s3").list_objects_v2(Bucket="lotabots-documents", Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_create_returns_pending_document_and_a_presigned_post_bound_to_key_type_and_size() -> None:
    status, headers, body = create(
        ALICE, content_type="application/pdf", size_bytes=1234, metadata={"team": "ops"}
    )
    assert status == 201
    document, form = body["document"], body["upload"]
    assert document["status"] == "pending_upload"
    assert document["owner_id"] == ALICE.user_id
    assert document["version"] == 1 and document["metadata"] == {"team": "ops"}
    assert document["download_url"] is None
    assert headers["Location"] == f"/documents/{document['id']}"
    assert headers["ETag"] == f'"{document["revision"]}"'

    key = f"documents/{ALICE.user_id}/{document['id']}/1"
    assert form["fields"]["key"] == key
    assert form["fields"]["Content-Type"] == "application/pdf"
    assert form["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert form["expires_in"] == 900 and form["max_bytes"] == 1234
    conditions = _policy(form["fields"])["conditions"]
    assert {"key": key} in conditions
    assert {"Content-Type": "application/pdf"} in conditions
    assert ["content-length-range", 1, 1234] in conditions


def test_presigned_upload_expires_after_the_configured_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto does not enforce POST policies, so this checks the policy S3 enforces: a form
    reused after its `expiration` is refused by S3 with 403 AccessDenied (Policy expired)."""
    from lotabots import config

    monkeypatch.setenv("DOCUMENT_UPLOAD_TTL_SECONDS", "60")
    config.reset()
    before = datetime.now(UTC).replace(microsecond=0)
    _, _, body = create(ALICE, size_bytes=10)
    expiration = datetime.fromisoformat(
        _policy(body["upload"]["fields"])["expiration"].replace("Z", "+00:00")
    )
    assert before + timedelta(seconds=59) <= expiration <= before + timedelta(seconds=62)
    assert body["upload"]["expires_in"] == 60
    reported = datetime.fromisoformat(body["upload"]["expires_at"])
    assert abs((reported - expiration).total_seconds()) <= 2


def test_path_like_title_never_shapes_the_key_and_is_returned_as_given() -> None:
    _, _, body = create(ALICE, title="../../etc/passwd", size_bytes=10)
    assert body["document"]["title"] == "../../etc/passwd"
    assert ".." not in body["upload"]["fields"]["key"]
    assert body["upload"]["fields"]["key"].startswith(f"documents/{ALICE.user_id}/")


def test_unicode_title_round_trips_and_names_the_download() -> None:
    title = "Résumé \u2013 東京 📄"
    doc = create_and_upload(ALICE, b"some text", title=title)
    run_ingest()
    status, _, body = get(ALICE, doc["id"])
    assert status == 200 and body["title"] == title
    assert "filename%2A%3DUTF-8%27%27R%25C3%25A9sum%25C3%25A9" in body["download_url"]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (
            {"title": "x", "content_type": "application/x-msdownload", "size_bytes": 10},
            415,
            "unsupported_content_type",
        ),
        (
            {"title": "x", "content_type": "text/plain", "size_bytes": 50 * 1024 * 1024 + 1},
            413,
            "payload_too_large",
        ),
        ({"title": "x", "content_type": "text/plain", "size_bytes": 0}, 422, "validation_error"),
        (
            {"title": "x", "content_type": "text/plain", "size_bytes": 5, "metadata": {"a": {"b": "c"}}},
            422,
            "validation_error",
        ),
        (
            {"title": "x", "content_type": "text/plain", "size_bytes": 5, "metadata": {"n": 1}},
            422,
            "validation_error",
        ),
        (
            {
                "title": "x",
                "content_type": "text/plain",
                "size_bytes": 5,
                "metadata": {f"k{i}": "v" for i in range(33)},
            },
            422,
            "validation_error",
        ),
        (
            {
                "title": "x",
                "content_type": "text/plain",
                "size_bytes": 5,
                "metadata": {"k": "v" * 250, **{f"k{i}": "v" * 250 for i in range(8)}},
            },
            422,
            "validation_error",
        ),
        ({"title": "", "content_type": "text/plain", "size_bytes": 5}, 422, "validation_error"),
        ({"content_type": "text/plain", "size_bytes": 5}, 422, "validation_error"),
    ],
)
def test_bad_declarations_are_refused_with_a_clear_error_and_nothing_stored(
    payload: dict[str, Any], status: int, code: str
) -> None:
    got, _, body = invoke("documents", api_event("POST", "/documents", body=payload, principal=ALICE))
    assert got == status, body
    assert body["code"] == code and body["message"]
    with session_scope() as session:
        assert session.scalars(select(Document)).first() is None


def test_content_type_parameters_and_case_are_normalised() -> None:
    status, _, body = create(ALICE, content_type="Text/Plain; charset=utf-8", size_bytes=5)
    assert status == 201
    assert body["document"]["content_type"] == "text/plain"


def test_malformed_json_body_is_400() -> None:
    status, _, body = invoke("documents", api_event("POST", "/documents", raw_body="{nope", principal=ALICE))
    assert status == 400 and body["code"] == "malformed_json"


def test_member_cannot_see_or_change_another_members_document() -> None:
    doc = create_and_upload(ALICE, b"alice's words")
    run_ingest()
    for event in (
        api_event("GET", f"/documents/{doc['id']}", principal=BOB),
        api_event("PATCH", f"/documents/{doc['id']}", body={"title": "mine"}, principal=BOB),
        api_event("DELETE", f"/documents/{doc['id']}", principal=BOB),
        api_event(
            "POST",
            f"/documents/{doc['id']}/versions",
            body={"content_type": "text/plain", "size_bytes": 3},
            principal=BOB,
        ),
    ):
        status, _, body = invoke("documents", event)
        assert status == 404, (event["httpMethod"], body)
        assert body["code"] == "not_found"
    _, _, listing = invoke("documents", api_event("GET", "/documents", principal=BOB))
    assert listing["items"] == []
    _, _, listing = invoke(
        "documents", api_event("GET", "/documents", principal=BOB, query={"owner_id": ALICE.user_id})
    )
    assert listing["items"] == []
    _, _, mine = get(ALICE, doc["id"])
    assert mine["title"] == "Quarterly report" and mine["revision"] == doc["revision"] + 2


def test_unknown_and_deleted_documents_are_404() -> None:
    assert get(ALICE, "0" * 32)[0] == 404
    doc = create_and_upload(ALICE, b"short lived")
    status, _, _ = invoke("documents", api_event("DELETE", f"/documents/{doc['id']}", principal=ALICE))
    assert status == 204
    assert get(ALICE, doc["id"])[0] == 404
    assert get(ADMIN, doc["id"])[0] == 404
    status, _, _ = invoke("documents", api_event("DELETE", f"/documents/{doc['id']}", principal=ALICE))
    assert status == 404


@pytest.mark.parametrize("document_id", ["not%2F..%2Fok", "a.b", "x" * 65])
def test_malformed_document_id_in_path_is_422(document_id: str) -> None:
    status, _, body = get(ALICE, document_id)
    assert status == 422 and body["code"] == "validation_error"
    assert body["details"][0]["field"] == "path.document_id"


def test_admin_reads_others_documents_and_each_read_is_audited() -> None:
    doc = create_and_upload(ALICE, b"for the admin to read")
    run_ingest()
    status, _, body = get(ADMIN, doc["id"])
    assert status == 200 and body["download_url"]
    reads = _audit("document.read")
    assert len(reads) == 1
    assert reads[0].actor_id == ADMIN.user_id and reads[0].target_id == doc["id"]
    assert reads[0].details["owner_id"] == ALICE.user_id
    get(ALICE, doc["id"])
    assert len(_audit("document.read")) == 1  # the owner reading is not a privileged access


def test_admin_listing_others_documents_is_audited_and_admin_changes_are_attributed() -> None:
    doc = create_and_upload(ALICE, b"text")
    status, _, listing = invoke("documents", api_event("GET", "/documents", principal=ADMIN))
    assert status == 200 and [i["id"] for i in listing["items"]] == [doc["id"]]
    listed = _audit("document.listed")
    assert listed and listed[0].details["document_ids"] == [doc["id"]]
    status, _, _ = invoke(
        "documents",
        api_event("PATCH", f"/documents/{doc['id']}", body={"title": "Renamed by admin"}, principal=ADMIN),
    )
    assert status == 200
    updated = _audit("document.updated")
    assert updated[0].actor_id == ADMIN.user_id and updated[0].details["on_behalf"] is True


def test_auditor_may_read_all_but_not_write() -> None:
    doc = create_and_upload(ALICE, b"text")
    assert get(AUDITOR, doc["id"])[0] == 200
    status, _, body = invoke(
        "documents", api_event("PATCH", f"/documents/{doc['id']}", body={"title": "x"}, principal=AUDITOR)
    )
    assert status == 403 and body["code"] == "forbidden"


def test_unauthenticated_calls_are_401() -> None:
    status, _, body = invoke("documents", api_event("GET", "/documents"))
    assert status == 401 and body["code"] == "unauthorized"


def test_patch_with_current_etag_succeeds_and_stale_etag_is_412() -> None:
    doc = create_and_upload(ALICE, b"text")
    status, headers, _ = get(ALICE, doc["id"])
    etag = headers["ETag"]
    status, headers2, body = invoke(
        "documents",
        api_event(
            "PATCH",
            f"/documents/{doc['id']}",
            body={"title": "New title", "metadata": {"stage": "final"}},
            principal=ALICE,
            headers={"If-Match": etag},
        ),
    )
    assert status == 200, body
    assert body["title"] == "New title" and body["metadata"] == {"stage": "final"}
    assert headers2["ETag"] != etag
    status, _, body = invoke(
        "documents",
        api_event(
            "PATCH",
            f"/documents/{doc['id']}",
            body={"title": "Lost update"},
            principal=ALICE,
            headers={"If-Match": etag},
        ),
    )
    assert status == 412 and body["code"] == "precondition_failed"
    assert body["details"]["current_etag"] == headers2["ETag"]
    _, _, now = get(ALICE, doc["id"])
    assert now["title"] == "New title"


def test_delete_with_stale_etag_is_412_and_keeps_the_document() -> None:
    doc = create_and_upload(ALICE, b"text")
    status, _, _ = invoke(
        "documents",
        api_event("DELETE", f"/documents/{doc['id']}", principal=ALICE, headers={"If-Match": '"999"'}),
    )
    assert status == 412
    assert get(ALICE, doc["id"])[0] == 200


def test_delete_soft_deletes_removes_objects_and_audits() -> None:
    doc = create_and_upload(ALICE, b"to be deleted")
    run_ingest()
    assert _objects(f"documents/{ALICE.user_id}/{doc['id']}/")
    status, _, body = invoke("documents", api_event("DELETE", f"/documents/{doc['id']}", principal=ALICE))
    assert status == 204 and body is None
    assert _objects(f"documents/{ALICE.user_id}/{doc['id']}/") == []
    with session_scope() as session:
        row = session.get(Document, doc["id"])
        assert row is not None and row.deleted_at is not None
    entries = _audit("document.deleted")
    assert len(entries) == 1 and entries[0].actor_id == ALICE.user_id


def test_upload_through_an_old_form_after_delete_is_removed_by_ingest() -> None:
    _, _, body = create(ALICE, size_bytes=5)
    doc_id = body["document"]["id"]
    invoke("documents", api_event("DELETE", f"/documents/{doc_id}", principal=ALICE))
    assert upload(body["upload"], b"late!") == 204
    run_ingest()
    assert _objects(f"documents/{ALICE.user_id}/{doc_id}/") == []
    assert get(ALICE, doc_id)[0] == 404


def test_new_version_gets_a_new_key_and_form_and_the_old_object_goes_once_it_is_ready() -> None:
    doc = create_and_upload(ALICE, b"version one")
    run_ingest()
    status, _, body = invoke(
        "documents",
        api_event(
            "POST",
            f"/documents/{doc['id']}/versions",
            body={"content_type": "text/markdown", "size_bytes": 13},
            principal=ALICE,
        ),
    )
    assert status == 201, body
    assert body["document"]["version"] == 2
    assert body["document"]["status"] == "pending_upload"
    assert body["document"]["sha256"] is None
    assert body["upload"]["fields"]["key"] == f"documents/{ALICE.user_id}/{doc['id']}/2"
    assert upload(body["upload"], b"# version two") == 204
    run_ingest()
    _, _, now = get(ALICE, doc["id"])
    assert now["status"] == "ready" and now["version"] == 2 and now["content_type"] == "text/markdown"
    assert now["excerpt"] == "# version two"
    assert _objects(f"documents/{ALICE.user_id}/{doc['id']}/") == [f"documents/{ALICE.user_id}/{doc['id']}/2"]


def test_new_version_validates_the_declaration() -> None:
    doc = create_and_upload(ALICE, b"v1")
    status, _, body = invoke(
        "documents",
        api_event(
            "POST",
            f"/documents/{doc['id']}/versions",
            body={"content_type": "image/png", "size_bytes": 10},
            principal=ALICE,
        ),
    )
    assert status == 415 and body["code"] == "unsupported_content_type"
    assert get(ALICE, doc["id"])[2]["version"] == 1
