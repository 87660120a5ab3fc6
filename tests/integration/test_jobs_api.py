"""The jobs API (functions/jobs): create with validation, read, list, cancel; roles and
object-level access; bad input gives a clear 4xx and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from lotabots.audit.models import AuditEntry
from lotabots.db import session_scope
from lotabots.jobs.models import Job
from tests.support.api import api_event, invoke
from tests.support.jobs import ADMIN, AUDITOR, MEMBER, OPERATOR, drain, ready_document

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _post(body: Any, principal: Any = OPERATOR, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, _headers, payload = invoke(
        "jobs", api_event("POST", "/jobs", body=body, principal=principal, headers=headers)
    )
    return status, payload


def _job_count() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


@pytest.fixture
def document(db: str, aws_env: dict[str, str]) -> str:
    return ready_document(OPERATOR.user_id, "Embeddings for similar-document search. " * 20)


def test_operator_queues_an_embed_job_and_it_goes_on_the_queue(document: str) -> None:
    status, headers, job = invoke(
        "jobs",
        api_event(
            "POST", "/jobs", body={"type": "embed", "input": {"document_id": document}}, principal=OPERATOR
        ),
    )
    assert status == 202, job
    assert headers["Location"] == f"/jobs/{job['id']}"
    assert job["status"] == "queued" and job["type"] == "embed" and job["backend"] == "local"
    assert job["input"] == {"document_id": document, "owner_id": OPERATOR.user_id, "version": 1}
    assert job["attempts"] == 0 and job["requested_by"] == OPERATOR.user_id
    assert [m["job_id"] for m in drain("GPU_JOBS_QUEUE_URL")] == [job["id"]]
    with session_scope() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.target_id == job["id"])).one()
        assert entry.action == "job.create" and entry.actor_id == OPERATOR.user_id


def test_sample_api_event_is_a_valid_request(db: str, aws_env: dict[str, str]) -> None:
    """events/jobs_create.json (used with `sam local invoke`) is accepted by the handler."""
    event = json.loads((EVENTS / "jobs_create.json").read_text())
    owned = ready_document(event["requestContext"]["authorizer"]["user_id"], "text of the sample event")
    event["body"] = json.dumps({"type": "embed", "input": {"document_id": owned}, "backend": "local"})
    response = invoke("jobs", event)
    assert response[0] == 202, response


def test_unknown_job_type_is_422_and_creates_nothing(document: str) -> None:
    status, body = _post({"type": "transcode", "input": {"document_id": document}})
    assert status == 422
    assert body["code"] == "unknown_job_type" and body["details"] == {"known_types": ["embed"]}
    assert _job_count() == 0 and drain("GPU_JOBS_QUEUE_URL") == []


def test_input_over_the_size_limit_is_413(document: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_MAX_INPUT_BYTES", "100")
    from lotabots import config

    config.reset()
    status, body = _post({"type": "embed", "input": {"document_id": document, "padding": "x" * 200}})
    assert status == 413
    assert body["code"] == "job_input_too_large" and body["details"]["limit_bytes"] == 100
    assert _job_count() == 0


@pytest.mark.parametrize(
    ("job_input", "field"),
    [
        ({}, "document_id"),
        ({"document_id": "../etc/passwd"}, "document_id"),
        ({"document_id": "a", "x": 1}, "x"),
    ],
)
def test_invalid_input_for_the_type_is_422(document: str, job_input: dict[str, Any], field: str) -> None:
    status, body = _post({"type": "embed", "input": job_input})
    assert status == 422 and body["code"] == "invalid_job_input"
    assert any(d["field"] == field for d in body["details"])
    assert _job_count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "embed", "input": {"document_id": "x"}, "backend": "kubernetes"},
        {"type": "embed", "input": {"document_id": "x"}, "gpu": "H100; rm -rf"},
        {"type": "embed"},
        {"type": "embed", "input": {"document_id": "x"}, "priority": 1},
    ],
)
def test_malformed_requests_are_422(document: str, payload: dict[str, Any]) -> None:
    status, body = _post(payload)
    assert status == 422 and body["code"] == "validation_error"
    assert _job_count() == 0


def test_a_document_the_caller_cannot_see_is_404(db: str, aws_env: dict[str, str]) -> None:
    """Object-level access: an operator cannot embed another user's document (nor learn it exists)."""
    someone_else = ready_document("member-9", "private text")
    status, body = _post({"type": "embed", "input": {"document_id": someone_else}})
    assert status == 404
    status, body = _post({"type": "embed", "input": {"document_id": "0" * 32}})
    assert status == 404
    assert _job_count() == 0
    # An admin may.
    status, body = _post({"type": "embed", "input": {"document_id": someone_else}}, principal=ADMIN)
    assert status == 202 and body["input"]["owner_id"] == "member-9"


def test_a_document_not_ready_is_409(db: str, aws_env: dict[str, str]) -> None:
    pending = ready_document(OPERATOR.user_id, "", status="processing")
    status, body = _post({"type": "embed", "input": {"document_id": pending}})
    assert status == 409 and body["code"] == "document_not_ready"


def test_roles(document: str) -> None:
    assert _post({"type": "embed", "input": {"document_id": document}}, principal=MEMBER)[0] == 403
    assert _post({"type": "embed", "input": {"document_id": document}}, principal=AUDITOR)[0] == 403
    assert _post({"type": "embed", "input": {"document_id": document}}, principal=None)[0] == 401
    assert invoke("jobs", api_event("GET", "/jobs", principal=AUDITOR))[0] == 200
    assert invoke("jobs", api_event("GET", "/jobs", principal=MEMBER))[0] == 403


def test_idempotency_key_returns_the_same_job(document: str) -> None:
    headers = {"Idempotency-Key": "retry-1"}
    first = _post({"type": "embed", "input": {"document_id": document}}, headers=headers)
    second = _post({"type": "embed", "input": {"document_id": document}}, headers=headers)
    assert first[0] == second[0] == 202
    assert first[1]["id"] == second[1]["id"]
    assert _job_count() == 1
    assert len(drain("GPU_JOBS_QUEUE_URL")) == 1, "a replay does not dispatch again"
    other = ready_document(OPERATOR.user_id, "another text")
    status, body = _post({"type": "embed", "input": {"document_id": other}}, headers=headers)
    assert status == 409 and body["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    "change", [{"backend": "batch"}, {"gpu": "H100!"}, {"backend": "modal", "gpu": "L4"}]
)
def test_idempotency_key_reused_with_another_backend_or_gpu_is_409(
    document: str, change: dict[str, str]
) -> None:
    """The adversarial review got the first job back for a request naming another backend/GPU."""
    headers = {"Idempotency-Key": "retry-backend"}
    request = {"type": "embed", "input": {"document_id": document}, "backend": "local"}
    assert _post(request, headers=headers)[0] == 202
    status, body = _post({**request, **change}, headers=headers)
    assert status == 409 and body["code"] == "idempotency_key_reused"
    assert _job_count() == 1


@pytest.mark.parametrize("key", ["k" * 129, "has space", "tab\there", "caf\u00e9", ""])
def test_malformed_idempotency_key_is_422_and_creates_nothing(document: str, key: str) -> None:
    status, body = _post(
        {"type": "embed", "input": {"document_id": document}}, headers={"Idempotency-Key": key}
    )
    assert status == 422 and body["code"] == "validation_error", body
    assert _job_count() == 0


def test_get_list_filter_and_paginate(document: str) -> None:
    ids = [_post({"type": "embed", "input": {"document_id": document}})[1]["id"] for _ in range(3)]
    status, _, job = invoke("jobs", api_event("GET", f"/jobs/{ids[0]}", principal=AUDITOR))
    assert status == 200 and job["id"] == ids[0]
    assert invoke("jobs", api_event("GET", f"/jobs/{'f' * 32}", principal=OPERATOR))[0] == 404

    status, _, page = invoke("jobs", api_event("GET", "/jobs", principal=OPERATOR, query={"limit": "2"}))
    assert status == 200 and len(page["items"]) == 2 and page["next_cursor"]
    status, _, rest = invoke(
        "jobs",
        api_event("GET", "/jobs", principal=OPERATOR, query={"limit": "2", "cursor": page["next_cursor"]}),
    )
    assert [j["id"] for j in page["items"] + rest["items"]] == list(reversed(ids))
    assert rest["next_cursor"] is None

    status, _, queued = invoke(
        "jobs", api_event("GET", "/jobs", principal=OPERATOR, query={"status": "queued"})
    )
    assert len(queued["items"]) == 3
    status, _, none = invoke(
        "jobs", api_event("GET", "/jobs", principal=OPERATOR, query={"status": "running"})
    )
    assert none["items"] == []
    status, _, by_type = invoke(
        "jobs", api_event("GET", "/jobs", principal=OPERATOR, query={"type": "other"})
    )
    assert by_type["items"] == []
    assert invoke("jobs", api_event("GET", "/jobs", principal=OPERATOR, query={"status": "bogus"}))[0] == 422
    assert invoke("jobs", api_event("GET", "/jobs", principal=OPERATOR, query={"cursor": "!!"}))[0] == 400


def test_cancel_a_queued_job_then_cancel_again_is_409(document: str) -> None:
    job = _post({"type": "embed", "input": {"document_id": document}})[1]
    status, _, cancelled = invoke("jobs", api_event("POST", f"/jobs/{job['id']}/cancel", principal=OPERATOR))
    assert status == 200 and cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert cancelled["error"] == f"cancelled by {OPERATOR.user_id}"
    status, _, again = invoke("jobs", api_event("POST", f"/jobs/{job['id']}/cancel", principal=OPERATOR))
    assert status == 409 and again["code"] == "job_not_cancellable"
    assert invoke("jobs", api_event("POST", f"/jobs/{job['id']}/cancel", principal=AUDITOR))[0] == 403
    assert invoke("jobs", api_event("POST", f"/jobs/{'e' * 32}/cancel", principal=OPERATOR))[0] == 404
