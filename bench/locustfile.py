"""Mixed read/write traffic against the local stack (run by `bench/load.py`, `make load`).

Several roles, each a locust user class: members write and read their documents (with real
uploads to the presigned POST), log in again and rotate refresh tokens; operators create and read
GPU jobs and alerts and list attestations; auditors read jobs, alerts and attestations and are
refused writes. One more user keeps uploading a large PDF (many pages) and waits for its ingest,
so that the stack has a slow invocation running during the load.

An answer counts as an error unless its status is exactly the one its step expects (a 404 for
the document just deleted, a 403 for an auditor's write are expected). Every request, and every
large-PDF ingest (as `[ingest] ...`), is written to the CSV named by LOAD_RECORDS:
`start,name,ms,status,ok` (epoch seconds, route template, milliseconds, HTTP status, 1/0).

Environment: LOAD_ADMIN_EMAIL, LOAD_ADMIN_PASSWORD, LOAD_RECORDS, LOAD_PDF_PAGES (1000).
"""

from __future__ import annotations

import csv
import os
import random
import threading
import time
import uuid
from typing import Any

from locust import HttpUser, between, events, task

from tests.support.documents import make_pdf

ADMIN_EMAIL = os.environ.get("LOAD_ADMIN_EMAIL", "admin@lotabots.local")
ADMIN_PASSWORD = os.environ.get("LOAD_ADMIN_PASSWORD", "lotabots-dev-password")
PASSWORD = "load-user-password-long"  # noqa: S105 (throwaway users of a local load run)
PDF_PAGES = int(os.environ.get("LOAD_PDF_PAGES", "1000"))
ALERT_NAMES = ("LoadHighLatency", "LoadQueueDepth", "LoadDiskFull")

_records_lock = threading.Lock()
_records_file = open(os.environ["LOAD_RECORDS"], "a", newline="") if os.environ.get("LOAD_RECORDS") else None  # noqa: SIM115
_records = csv.writer(_records_file) if _records_file else None


def record(start: float, name: str, ms: float, status: int, ok: bool) -> None:
    if _records is None or _records_file is None:
        return
    with _records_lock:
        _records.writerow([f"{start:.3f}", name, f"{ms:.2f}", status, int(ok)])
        _records_file.flush()


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response: Any = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
    **_kwargs: Any,
) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    started = start_time if start_time is not None else time.time() - response_time / 1000
    record(started, name, response_time, status, exception is None)


class _Base(HttpUser):
    """A user of one role, registered and logged in by `on_start`."""

    abstract = True
    role = "member"
    wait_time = between(0.3, 1.2)

    def on_start(self) -> None:
        self.email = f"load-{self.role}-{uuid.uuid4().hex[:10]}@load.lotabots.test"
        account = {"email": self.email, "password": PASSWORD, "display_name": self.role}
        self.expect("POST", "/auth/register", 201, json=account)
        user_id = self.last["id"]
        if self.role != "member":
            admin = self.expect(
                "POST", "/auth/login", 200, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            ).json()
            self.expect(
                "PATCH",
                f"/users/{user_id}",
                200,
                name="/users/{user_id}",
                json={"role": self.role},
                headers={"Authorization": f"Bearer {admin['access_token']}"},
            )
        self.login()

    # Helpers --------------------------------------------------------------------------

    def expect(self, method: str, path: str, status: int, *, name: str | None = None, **kwargs: Any) -> Any:
        """One request; anything but `status` is an error (with the body, for the report)."""
        with self.client.request(method, path, name=name or path, catch_response=True, **kwargs) as response:
            if response.status_code != status:
                response.failure(f"expected {status}, got {response.status_code}: {response.text[:300]}")
            else:
                response.success()
            try:
                self.last = response.json() if response.content else {}
            except ValueError:
                self.last = {}
            return response

    def login(self) -> None:
        tokens = self.expect("POST", "/auth/login", 200, json={"email": self.email, "password": PASSWORD})
        self._tokens(tokens.json() if tokens.status_code == 200 else {})

    def _tokens(self, tokens: dict[str, Any]) -> None:
        if tokens.get("access_token"):
            self.access = tokens["access_token"]
            self.refresh = tokens["refresh_token"]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    def upload_document(self, title: str, content_type: str, data: bytes) -> str | None:
        """Declare a document and upload its bytes to the presigned POST; its id."""
        declared = self.expect(
            "POST",
            "/documents",
            201,
            json={"title": title, "content_type": content_type, "size_bytes": len(data)},
            headers=self.auth,
        )
        if declared.status_code != 201:
            return None
        body = declared.json()
        form = body["upload"]
        self.expect(
            "POST",
            form["url"],
            204,
            name="S3 presigned POST (moto)",
            data=form["fields"],
            files={"file": ("upload.bin", data, content_type)},
        )
        return str(body["document"]["id"])

    def wait_for_ingest(self, document_id: str, started: float, limit_s: float = 120) -> str:
        """Poll the document until its ingest settled; its last status."""
        status = ""
        while time.time() - started < limit_s:
            polled = self.expect(
                "GET", f"/documents/{document_id}", 200, name="/documents/{document_id}", headers=self.auth
            )
            status = polled.json().get("status", "") if polled.status_code == 200 else "error"
            if status not in ("pending_upload", "processing"):
                break
            time.sleep(0.5)
        return status

    # Tasks every role has ---------------------------------------------------------------

    @task(2)
    def health(self) -> None:
        self.expect("GET", "/health", 200)

    @task(1)
    def me_refresh_and_login(self) -> None:
        self.expect("GET", "/auth/me", 200, headers=self.auth)
        rotated = self.expect("POST", "/auth/refresh", 200, json={"refresh_token": self.refresh})
        if rotated.status_code == 200:
            self._tokens(rotated.json())
        if random.random() < 0.3:
            self.login()


class Member(_Base):
    role = "member"
    weight = 4

    @task(4)
    def list_documents(self) -> None:
        self.expect("GET", "/documents", 200, params={"limit": 20}, headers=self.auth)

    @task(2)
    def search_documents(self) -> None:
        self.expect("GET", "/documents", 200, params={"q": "quarterly load"}, headers=self.auth)

    @task(3)
    def write_read_delete(self) -> None:
        text = f"Quarterly load report {uuid.uuid4().hex}. " * random.randint(5, 50)
        document_id = self.upload_document("load notes.txt", "text/plain", text.encode())
        if document_id is None:
            return
        item = "/documents/{document_id}"
        self.expect("GET", f"/documents/{document_id}", 200, name=item, headers=self.auth)
        if random.random() < 0.5:
            self.expect("DELETE", f"/documents/{document_id}", 204, name=item, headers=self.auth)
            self.expect("GET", f"/documents/{document_id}", 404, name=item + " (deleted)", headers=self.auth)

    @task(1)
    def refused_operator_route(self) -> None:
        self.expect("GET", "/jobs", 403, name="/jobs (member: refused)", headers=self.auth)


class Operator(_Base):
    role = "operator"
    weight = 3

    def on_start(self) -> None:
        super().on_start()
        self.jobs: list[str] = []
        self.document_id = self.upload_document(
            "operator source.txt", "text/plain", b"Embedding source. " * 30
        )
        if self.document_id is not None:  # jobs need a ready document
            self.wait_for_ingest(self.document_id, time.time())

    @task(2)
    def create_job(self) -> None:
        if self.document_id is None:
            return
        created = self.expect(
            "POST",
            "/jobs",
            202,
            json={"type": "embed", "input": {"document_id": self.document_id}},
            headers=self.auth,
        )
        if created.status_code == 202:
            self.jobs.append(created.json()["id"])

    @task(3)
    def read_jobs(self) -> None:
        self.expect("GET", "/jobs", 200, params={"limit": 20}, headers=self.auth)
        if self.jobs:
            job_id = random.choice(self.jobs)
            self.expect("GET", f"/jobs/{job_id}", 200, name="/jobs/{job_id}", headers=self.auth)

    @task(2)
    def post_alert(self) -> None:
        alert = {
            "labels": {"alertname": random.choice(ALERT_NAMES), "severity": "warning", "source": "load"},
            "annotations": {"summary": "posted by make load"},
        }
        self.expect("POST", "/alerts", 200, json=alert, headers=self.auth)

    @task(3)
    def read_alerts_and_attestations(self) -> None:
        self.expect("GET", "/alerts", 200, headers=self.auth)
        self.expect("GET", "/attestations", 200, headers=self.auth)


class Auditor(_Base):
    role = "auditor"
    weight = 2

    @task(3)
    def read_everything(self) -> None:
        self.expect("GET", "/jobs", 200, params={"limit": 20}, headers=self.auth)
        self.expect("GET", "/alerts", 200, headers=self.auth)
        self.expect("GET", "/attestations", 200, headers=self.auth)

    @task(1)
    def refused_write(self) -> None:
        alert = {"labels": {"alertname": "AuditorMayNot"}}
        self.expect("POST", "/alerts", 403, name="/alerts (auditor: refused)", json=alert, headers=self.auth)


class LargePdf(_Base):
    """Keeps one slow ingest running: uploads a PDF of LOAD_PDF_PAGES pages, waits until it is
    ingested (recorded as `[ingest] large PDF`), pauses, and again."""

    role = "member"
    fixed_count = 1
    wait_time = between(2, 3)

    def on_start(self) -> None:
        super().on_start()
        words = "ledger entry revenue forecast margin quarter region total audit"
        self.pdf = make_pdf([f"Page {n}: " + (words + " ") * 40 for n in range(PDF_PAGES)])

    @task
    def ingest_large_pdf(self) -> None:
        started = time.time()
        document_id = self.upload_document("large report.pdf", "application/pdf", self.pdf)
        if document_id is None:
            return
        status = self.wait_for_ingest(document_id, started)
        record(
            started,
            f"[ingest] large PDF ({PDF_PAGES} pages)",
            (time.time() - started) * 1000,
            0,
            status == "ready",
        )
