"""functions/job_dispatch: one backend submission per job however often its message arrives;
backend outages retried with back-off, then the job fails with an alert."""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import modal
import pytest
from botocore.exceptions import ClientError

from lotabots import aws, config
from lotabots.config import JobSettings
from lotabots.db import session_scope
from lotabots.db.base import utcnow
from lotabots.documents.models import Document
from lotabots.jobs import creation, dispatch, lifecycle, queueing
from lotabots.jobs.backends.batch import job_name
from lotabots.jobs.models import Job
from lotabots.jobs.schemas import JobCreate
from lotabots.jobs.spec import JobSpec
from tests.support.api import FakeLambdaContext, load_function
from tests.support.jobs import (
    OPERATOR,
    FakeModal,
    create_batch_resources,
    delete_handled,
    drain,
    put_modal_secret,
    ready_document,
    receive_as_event,
    reset_jobs_state,
    sqs_event,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
TEXT = "Dispatch stages this text in S3 for the GPU job. " * 10


@pytest.fixture(autouse=True)
def _jobs_env(db: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("JOB_RETRY_BASE_SECONDS", "0")  # redeliveries come back at once in tests
    config.reset()
    reset_jobs_state()
    yield
    reset_jobs_state()


def _use_backend(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("JOB_BACKEND", name)
    config.reset()
    reset_jobs_state()


def _new_job(document_id: str | None = None) -> str:
    document_id = document_id or ready_document(OPERATOR.user_id, TEXT)
    with session_scope() as session:
        job, _ = creation.create_job(
            session,
            OPERATOR,
            JobCreate.model_validate({"type": "embed", "input": {"document_id": document_id}}),
        )
        job_id = job.id
    queueing.enqueue(job_id)
    return job_id


def _job(job_id: str) -> Job:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _run_dispatch(event: dict[str, Any]) -> list[dict[str, str]]:
    response = load_function("job_dispatch").lambda_handler(event, FakeLambdaContext())
    return list(response["batchItemFailures"])


def _deliver() -> list[dict[str, str]]:
    """Receive from the gpu-jobs queue, run the handler, delete what succeeded (like Lambda's ESM)."""
    event = receive_as_event("GPU_JOBS_QUEUE_URL")
    assert event["Records"], "a message was expected on gpu-jobs"
    failures = _run_dispatch(event)
    delete_handled("GPU_JOBS_QUEUE_URL", event, failures)
    return failures


def _batch_jobs() -> list[dict[str, Any]]:
    queue = config.load(JobSettings).batch_job_queue
    found: list[dict[str, Any]] = []
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
        found += aws.client("batch").list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
    return found


def _alerts() -> list[dict[str, Any]]:
    return [m for m in drain("ALERT_EVENTS_QUEUE_URL") if m.get("detail-type") == "GpuJobFailed"]


def test_batch_submission_happens_once_even_when_the_message_is_redelivered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use_backend(monkeypatch, "batch")
    create_batch_resources()
    job_id = _new_job()
    event = receive_as_event("GPU_JOBS_QUEUE_URL")
    assert _run_dispatch(event) == []
    assert _run_dispatch(copy.deepcopy(event)) == [], "the redelivered copy succeeds without a second submit"
    assert _run_dispatch(sqs_event({"job_id": job_id}, {"job_id": job_id})) == []

    submitted = _batch_jobs()
    assert len(submitted) == 1
    job = _job(job_id)
    assert job.status == "dispatched" and job.backend_handle == submitted[0]["jobId"] and job.attempts == 1
    described = aws.client("batch").describe_jobs(jobs=[job.backend_handle])["jobs"][0]
    command = described["container"]["command"]
    assert command[:5] == ["python", "-m", "gpu_jobs", "run", "--job"]
    spec = JobSpec.model_validate_json(command[5])
    assert spec.job_id == job_id and spec.attempt == 1 and spec.type == "embed"
    assert described["jobName"] == job_name(spec)
    bucket, key = spec.input["text_uri"][5:].split("/", 1)
    staged = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert staged == TEXT, "the document text is staged in S3 for the GPU job"


def test_document_ingested_events_make_one_embed_job_per_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The raw EventBridge event (rule document-ingested-to-embed) becomes one job per version."""
    _use_backend(monkeypatch, "batch")
    create_batch_resources()
    document_id = ready_document("member-7", TEXT)
    event = json.loads((EVENTS / "jobs_document_ingested_sqs.json").read_text())
    body = json.loads(event["Records"][0]["body"])
    body["detail"].update(document_id=document_id, owner_id="member-7", version=1)
    event["Records"][0]["body"] = json.dumps(body)
    assert _run_dispatch(event) == []
    assert _run_dispatch(copy.deepcopy(event)) == []
    with session_scope() as session:
        jobs = session.query(Job).all()
        assert len(jobs) == 1
        assert jobs[0].source == "event" and jobs[0].input["owner_id"] == "member-7"
        assert jobs[0].status == "dispatched"
    assert len(_batch_jobs()) == 1

    body["detail"]["version"] = 2
    event["Records"][0]["body"] = json.dumps(body)
    assert _run_dispatch(event) == []
    with session_scope() as session:
        assert sorted(j.input["version"] for j in session.query(Job).all()) == [1, 2]


def test_modal_spawn_uses_credentials_from_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_backend(monkeypatch, "modal")
    put_modal_secret("ak-123", "as-456")
    fake = FakeModal().install(monkeypatch)
    job_id = _new_job()
    assert _deliver() == []
    assert _run_dispatch(sqs_event({"job_id": job_id})) == [], "duplicate"
    assert fake.credentials == [("ak-123", "as-456")]
    assert fake.lookups == [("lotabots-gpu", "embed")]
    assert fake.gpus == ["L4"], "the default GPU type is asked for"
    assert len(fake.spawned) == 1 and fake.spawned[0]["job_id"] == job_id
    job = _job(job_id)
    assert job.status == "dispatched" and job.backend_handle == next(iter(fake.calls))


def test_modal_auth_error_is_retried_with_backoff_then_fails_with_an_alert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use_backend(monkeypatch, "modal")
    put_modal_secret()
    fake = FakeModal().install(monkeypatch)
    fake.spawn_error = modal.exception.AuthError("Token ID is malformed")
    fake.spawn_errors_left = -1  # always
    visibility: list[int] = []
    sqs = aws.client("sqs")
    original = sqs.change_message_visibility

    def spy(**kwargs: Any) -> Any:
        visibility.append(kwargs["VisibilityTimeout"])
        return original(**kwargs)

    monkeypatch.setattr(sqs, "change_message_visibility", spy)
    job_id = _new_job()

    assert len(_deliver()) == 1, "attempt 1 fails: the message goes back"
    assert _job(job_id).status == "queued" and "Modal authentication failed" in (_job(job_id).error or "")
    assert len(_deliver()) == 1, "attempt 2 fails: back again (visible at once: base back-off 0 in tests)"
    assert _deliver() == [], "attempt 3 gives up: the job fails, the message is done"
    assert visibility == [0, 0]
    job = _job(job_id)
    assert job.status == "failed" and job.attempts == 3
    assert "unavailable after 3 attempts" in (job.error or "")
    alerts = _alerts()
    assert len(alerts) == 1
    assert alerts[0]["source"] == "lotabots.jobs"
    assert alerts[0]["detail"]["job_id"] == job_id and alerts[0]["detail"]["backend"] == "modal"
    assert alerts[0]["detail"]["type"] == "embed" and "AuthError" not in alerts[0]["detail"]["error"]
    assert fake.spawned == []


def test_backoff_doubles_per_delivery_and_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_RETRY_BASE_SECONDS", "20")
    config.reset()
    assert [dispatch.backoff_seconds(n) for n in (1, 2, 3, 4)] == [20, 40, 80, 160]
    assert dispatch.backoff_seconds(12) == dispatch.MAX_BACKOFF_S


def test_batch_throttling_is_retried_and_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Throttled twice, then accepted: one job, dispatched on attempt 3, no alert."""
    _use_backend(monkeypatch, "batch")
    create_batch_resources()
    batch = aws.client("batch")
    original = batch.submit_job
    throttles = {"left": 2}

    def throttled(**kwargs: Any) -> Any:
        if throttles["left"]:
            throttles["left"] -= 1
            raise ClientError(
                {"Error": {"Code": "TooManyRequestsException", "Message": "Too Many Requests"}}, "SubmitJob"
            )
        return original(**kwargs)

    monkeypatch.setattr(batch, "submit_job", throttled)
    job_id = _new_job()
    assert len(_deliver()) == 1
    assert len(_deliver()) == 1
    assert _deliver() == []
    job = _job(job_id)
    assert job.status == "dispatched" and job.attempts == 3 and job.error is None
    assert len(_batch_jobs()) == 1 and _alerts() == []


def test_batch_throttled_throughout_fails_with_an_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_backend(monkeypatch, "batch")
    create_batch_resources()

    def throttled(**_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "SubmitJob"
        )

    monkeypatch.setattr(aws.client("batch"), "submit_job", throttled)
    job_id = _new_job()
    for _ in range(2):
        assert len(_deliver()) == 1
    assert _deliver() == []
    assert _job(job_id).status == "failed"
    assert [a["detail"]["job_id"] for a in _alerts()] == [job_id]


def test_a_rejected_submission_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend refusal that retrying cannot fix (no such job definition) is not retried."""
    _use_backend(monkeypatch, "batch")  # no Batch resources created: the queue does not exist
    monkeypatch.setattr(
        aws.client("batch"),
        "submit_job",
        lambda **_: (_ for _ in ()).throw(
            ClientError(
                {"Error": {"Code": "ClientException", "Message": "Job queue does not exist"}}, "SubmitJob"
            )
        ),
    )
    job_id = _new_job()
    assert _deliver() == []
    job = _job(job_id)
    assert job.status == "failed" and job.attempts == 1 and "rejected the job" in (job.error or "")
    assert len(_alerts()) == 1


def test_a_dispatch_in_progress_elsewhere_is_left_for_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another dispatcher holds the job's record (lease not expired): this delivery backs off."""
    _use_backend(monkeypatch, "batch")
    create_batch_resources()
    job_id = _new_job()
    table = config.load(JobSettings).dispatch_table
    aws.client("dynamodb").put_item(
        TableName=table,
        Item={
            "id": {"S": f"job#{job_id}"},
            "state": {"S": "submitting"},
            "backend": {"S": "batch"},
            "attempt": {"N": "1"},
            "lease_until": {"N": str(int(time.time()) + 300)},
        },
    )
    event = receive_as_event("GPU_JOBS_QUEUE_URL")
    assert len(_run_dispatch(event)) == 1
    assert _batch_jobs() == [] and _job(job_id).status == "queued"


def test_after_a_crash_mid_submit_the_existing_batch_job_is_found_not_resubmitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The previous dispatcher submitted, then died before recording the handle (lease expired)."""
    _use_backend(monkeypatch, "batch")
    create_batch_resources()
    job_id = _new_job()
    settings = config.load(JobSettings)
    with session_scope() as session:
        spec = dispatch.build_spec(session, session.get(Job, job_id), 1)  # type: ignore[arg-type]
    earlier = aws.client("batch").submit_job(
        jobName=job_name(spec), jobQueue=settings.batch_job_queue, jobDefinition=settings.batch_job_definition
    )["jobId"]
    aws.client("dynamodb").put_item(
        TableName=settings.dispatch_table,
        Item={
            "id": {"S": f"job#{job_id}"},
            "state": {"S": "submitting"},
            "backend": {"S": "batch"},
            "attempt": {"N": "1"},
            "lease_until": {"N": str(int(time.time()) - 5)},
        },
    )
    assert _deliver() == []
    assert len(_batch_jobs()) == 1
    assert _job(job_id).backend_handle == earlier


def test_a_job_cancelled_during_submission_is_stopped_on_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_backend(monkeypatch, "modal")
    put_modal_secret()
    fake = FakeModal().install(monkeypatch)
    from lotabots.jobs.backends import modal as modal_backend

    original_submit = modal_backend.ModalBackend.submit

    def submit_then_cancel(self: Any, spec: JobSpec) -> str:
        handle = original_submit(self, spec)
        with session_scope() as session:
            lifecycle.cancel_job(session, OPERATOR, spec.job_id)
        return handle

    monkeypatch.setattr(modal_backend.ModalBackend, "submit", submit_then_cancel)
    job_id = _new_job()
    assert _deliver() == []
    assert _job(job_id).status == "cancelled"
    assert [call.cancelled for call in fake.calls.values()] == [True]


def test_a_document_deleted_before_dispatch_fails_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_backend(monkeypatch, "batch")
    create_batch_resources()
    document_id = ready_document(OPERATOR.user_id, TEXT)
    job_id = _new_job(document_id)
    with session_scope() as session:
        document = session.get(Document, document_id)
        assert document is not None
        document.deleted_at = utcnow()
    assert _deliver() == []
    job = _job(job_id)
    assert job.status == "failed" and "no extracted text" in (job.error or "")
    assert _batch_jobs() == [] and len(_alerts()) == 1


def test_unknown_jobs_are_dropped_and_malformed_messages_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown job id is logged and acknowledged; an unparseable body fails (→ DLQ eventually)."""
    event = sqs_event({"job_id": "0" * 32}, {"unexpected": True})
    failures = _run_dispatch(event)
    assert [f["itemIdentifier"] for f in failures] == [event["Records"][1]["messageId"]]


def test_sample_dispatch_event_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """events/jobs_dispatch_sqs.json names a job that does not exist here: acknowledged, no failure."""
    event = json.loads((EVENTS / "jobs_dispatch_sqs.json").read_text())
    assert _run_dispatch(event) == []
    assert os.environ["GPU_JOBS_QUEUE_URL"]
