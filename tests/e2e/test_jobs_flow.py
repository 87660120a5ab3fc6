"""GPU jobs end to end on the local stack: an operator uploads a document, it becomes ready (and
`DocumentIngested` queues an embed job by itself), the operator posts an `embed` job and it reaches
`succeeded` on the local backend: a real worker process running all-MiniLM-L6-v2 on CPU."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Stack, User

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
READY_TIMEOUT_S = 30.0
JOB_TIMEOUT_S = 180.0  # two workers each load torch and the model on a shared 2-core machine


def _upload(http: httpx.Client, user: User, title: str, text: str) -> str:
    data = text.encode()
    declared = http.post(
        "/documents",
        json={"title": title, "content_type": "text/plain", "size_bytes": len(data)},
        headers=user.headers,
    )
    assert declared.status_code == 201, declared.text
    form = declared.json()["upload"]
    uploaded = httpx.post(
        form["url"], data=form["fields"], files={"file": ("doc.txt", data)}, timeout=30, trust_env=False
    )
    assert uploaded.status_code in (200, 201, 204), uploaded.text
    document_id = str(declared.json()["document"]["id"])
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        status = http.get(f"/documents/{document_id}", headers=user.headers).json()["status"]
        if status == "ready":
            return document_id
        assert status in ("pending_upload", "processing"), status
        time.sleep(0.25)
    pytest.fail(f"document {document_id} did not become ready")


def _wait_for_job(http: httpx.Client, user: User, job_id: str, stack: Stack) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = http.get(f"/jobs/{job_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    pytest.fail(f"job {job_id} still {job.get('status')} after {JOB_TIMEOUT_S} s:\n{stack.output()}")


def test_operator_embeds_a_ready_document_on_the_local_backend(
    stack: Stack, http: httpx.Client, make_user: Callable[..., User]
) -> None:
    operator = make_user("operator")
    text = "The local GPU backend runs embedding inference in a worker process. " * 40
    document_id = _upload(http, operator, "Local embeddings", text)

    created = http.post(
        "/jobs", json={"type": "embed", "input": {"document_id": document_id}}, headers=operator.headers
    )
    assert created.status_code == 202, created.text
    job = _wait_for_job(http, operator, created.json()["id"], stack)
    assert job["status"] == "succeeded", f"{job['error']}\n{stack.output()}"
    assert job["backend"] == "local" and job["attempts"] == 1
    assert job["gpu_used"] == {"available": False, "device": "cpu"}
    assert job["result"]["count"] >= 2 and job["result"]["dim"] == 384
    assert job["result"]["model"]["name"] == "all-MiniLM-L6-v2" and job["result"]["stored"] is True
    assert job["result_uri"] == f"s3://lotabots-artifacts/jobs/{job['id']}/result.json"
    assert job["timings"]["job_inference_s"] > 0 and job["finished_at"]

    # The DocumentIngested event queued its own embed job for the same version.
    listed = http.get("/jobs", params={"type": "embed"}, headers=operator.headers).json()["items"]
    from_event = [j for j in listed if j["source"] == "event" and j["input"]["document_id"] == document_id]
    assert len(from_event) == 1 and from_event[0]["input"]["version"] == 1

    # Bad input over HTTP: a clear 4xx and nothing queued.
    unknown = http.post("/jobs", json={"type": "transcode", "input": {}}, headers=operator.headers)
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_job_type"
    member = make_user()
    forbidden = http.post(
        "/jobs", json={"type": "embed", "input": {"document_id": document_id}}, headers=member.headers
    )
    assert forbidden.status_code == 403
