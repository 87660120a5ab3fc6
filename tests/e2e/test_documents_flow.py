"""Documents end to end on the local stack: declare over the API, upload with `curl -F` to the
presigned POST the API returned, and the document becomes ready with no manual step (moto S3
notifies the ingest queue, the stack's poller runs document_ingest)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import User
from tests.support import hostile_pdfs
from tests.support.documents import ELF_BINARY, make_pdf

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
READY_TIMEOUT_S = 30.0


def _declare(http: httpx.Client, user: User, *, title: str, content_type: str, data: bytes) -> dict[str, Any]:
    response = http.post(
        "/documents",
        json={"title": title, "content_type": content_type, "size_bytes": len(data)},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _curl_upload(form: dict[str, Any], data: bytes, tmp_path: Path) -> int:
    """Upload exactly as the README tells a person to: `curl -F k=v ... -F file=@path URL`."""
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    if shutil.which("curl") is None:
        files = {"file": ("upload.bin", data)}
        return httpx.post(form["url"], data=form["fields"], files=files, timeout=30).status_code
    command = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*"]
    for name, value in form["fields"].items():
        command += ["-F", f"{name}={value}"]
    command += ["-F", f"file=@{path}", form["url"]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return int(result.stdout.strip())


def _wait_for(http: httpx.Client, user: User, document_id: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = http.get(f"/documents/{document_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        time.sleep(0.25)
    pytest.fail(f"document {document_id} still {body.get('status')} after {READY_TIMEOUT_S} s")


def test_upload_with_curl_becomes_ready_downloads_searches_and_deletes(
    http: httpx.Client, make_user: Callable[..., User], tmp_path: Path
) -> None:
    alice, bob = make_user(), make_user()
    data = b"Local stack documents flow: the ingest worker extracts these words.\n"
    created = _declare(http, alice, title="E2E notes ../../etc", content_type="text/plain", data=data)
    document_id = created["document"]["id"]
    assert created["document"]["status"] == "pending_upload"
    assert created["upload"]["url"].startswith("http://127.0.0.1:")

    assert _curl_upload(created["upload"], data, tmp_path) in (200, 201, 204)
    ready = _wait_for(http, alice, document_id, {"ready", "rejected"})
    assert ready["status"] == "ready", ready["reason"]
    assert ready["word_count"] == 10 and ready["title"] == "E2E notes ../../etc"

    download = httpx.get(ready["download_url"], timeout=30, trust_env=False)
    assert download.status_code == 200 and download.content == data

    assert http.get(f"/documents/{document_id}", headers=bob.headers).status_code == 404
    found = http.get("/documents", params={"q": "ingest worker"}, headers=alice.headers).json()
    assert [item["id"] for item in found["items"]] == [document_id]
    assert http.get("/documents", params={"q": "ingest worker"}, headers=bob.headers).json()["items"] == []

    deleted = http.delete(f"/documents/{document_id}", headers=alice.headers)
    assert deleted.status_code == 204
    assert http.get(f"/documents/{document_id}", headers=alice.headers).status_code == 404


def test_pdf_is_extracted_and_an_executable_posing_as_pdf_is_rejected(
    http: httpx.Client, make_user: Callable[..., User], tmp_path: Path
) -> None:
    carol = make_user()
    pdf = make_pdf(["Two page PDF from the end to end test", "with a second page"])
    good = _declare(http, carol, title="Report.pdf", content_type="application/pdf", data=pdf)
    bad = _declare(http, carol, title="Not a PDF", content_type="application/pdf", data=ELF_BINARY)
    assert _curl_upload(good["upload"], pdf, tmp_path) in (200, 201, 204)
    assert _curl_upload(bad["upload"], ELF_BINARY, tmp_path) in (200, 201, 204)

    ready = _wait_for(http, carol, good["document"]["id"], {"ready", "rejected"})
    assert ready["status"] == "ready" and ready["page_count"] == 2, ready
    rejected = _wait_for(http, carol, bad["document"]["id"], {"ready", "rejected"})
    assert rejected["status"] == "rejected"
    assert "ELF executable" in rejected["reason"]
    assert rejected["download_url"] is None


def test_pdf_bombs_settle_within_their_budget_instead_of_holding_the_worker(
    http: httpx.Client, make_user: Callable[..., User], tmp_path: Path
) -> None:
    """The reported bomb (five 60 MiB Flate content streams in < 1 MB) is rejected; a bomb
    between two good pages leaves a ready document with partial text and a note. Default
    budgets of the local stack; both settle in seconds (it was 45 s for the first one)."""
    dave = make_user()
    bomb = hostile_pdfs.content_stream_bomb(streams=5, inflated=60 * hostile_pdfs.MIB)
    mixed = hostile_pdfs.bomb_between_pages(inflated=60 * hostile_pdfs.MIB)
    declared = {
        name: _declare(http, dave, title=f"{name}.pdf", content_type="application/pdf", data=data)
        for name, data in (("bomb", bomb), ("mixed", mixed))
    }
    started = time.monotonic()
    assert _curl_upload(declared["bomb"]["upload"], bomb, tmp_path) in (200, 201, 204)
    assert _curl_upload(declared["mixed"]["upload"], mixed, tmp_path) in (200, 201, 204)

    rejected = _wait_for(http, dave, declared["bomb"]["document"]["id"], {"ready", "rejected"})
    partial = _wait_for(http, dave, declared["mixed"]["document"]["id"], {"ready", "rejected"})
    assert time.monotonic() - started < 20
    assert rejected["status"] == "rejected" and "size limit" in rejected["reason"], rejected
    assert partial["status"] == "ready", partial["reason"]
    assert partial["page_count"] == 3 and partial["text_truncated"] is True
    assert partial["extraction_note"].startswith("partial text: page 2 could not be read")
    found = http.get("/documents", params={"q": "third page survives"}, headers=dave.headers).json()
    assert [item["id"] for item in found["items"]] == [partial["id"]]
