"""functions/job_results: job reports, Batch state changes and the poll-gpu-jobs schedule; only
complete, verified output is ever recorded as a success."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from lotabots import aws, config
from lotabots.config import JobSettings
from lotabots.db import session_scope
from lotabots.db.base import utcnow
from lotabots.embeddings import vectors
from lotabots.embeddings.models import ChunkEmbedding, DocumentEmbedding
from lotabots.jobs import creation, results
from lotabots.jobs import repository as repo
from lotabots.jobs.models import Job, JobStatus
from lotabots.jobs.schemas import JobCreate
from lotabots.storage_keys import job_prefix
from tests.support.api import FakeLambdaContext, load_function
from tests.support.jobs import (
    OPERATOR,
    FakeModal,
    FakeModalCall,
    drain,
    eventbridge,
    put_modal_secret,
    ready_document,
    reset_jobs_state,
    sqs_event,
    unit_vectors,
    write_embed_artifacts,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture(autouse=True)
def _jobs_env(db: str, aws_env: dict[str, str]) -> Iterator[None]:
    reset_jobs_state()
    yield
    reset_jobs_state()


def _dispatched_job(
    backend: str = "modal", handle: str = "fc-handle", *, version: int = 1
) -> tuple[str, str]:
    document_id = ready_document(OPERATOR.user_id, "text to embed")
    with session_scope() as session:
        job, _ = creation.create_job(
            session,
            OPERATOR,
            JobCreate.model_validate(
                {"type": "embed", "input": {"document_id": document_id}, "backend": backend}
            ),
        )
        job.input = {**job.input, "version": version}
        session.flush()
        repo.transition(
            session,
            job.id,
            from_statuses=[JobStatus.QUEUED],
            to_status=JobStatus.DISPATCHED,
            backend_handle=handle,
            dispatched_at=utcnow(),
            attempts=1,
        )
        return job.id, document_id


def _job(job_id: str) -> Job:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _results(*events: dict[str, Any]) -> list[dict[str, str]]:
    response = load_function("job_results").lambda_handler(sqs_event(*events), FakeLambdaContext())
    return list(response["batchItemFailures"])


def _completed(report: dict[str, Any]) -> dict[str, Any]:
    detail_type = "GpuJobCompleted" if report["status"] == "succeeded" else "GpuJobFailed"
    return eventbridge("lotabots.gpu", detail_type, report)


def _alerts() -> list[dict[str, Any]]:
    return [m for m in drain("ALERT_EVENTS_QUEUE_URL") if m.get("detail-type") == "GpuJobFailed"]


def _stored(document_id: str) -> tuple[DocumentEmbedding | None, list[ChunkEmbedding]]:
    with session_scope() as session:
        document = session.get(DocumentEmbedding, document_id)
        chunks = list(
            session.scalars(
                select(ChunkEmbedding)
                .where(ChunkEmbedding.document_id == document_id)
                .order_by(ChunkEmbedding.chunk_index)
            )
        )
        for item in [document, *chunks]:
            if item is not None:
                session.expunge(item)
        return document, chunks


def test_a_completed_embed_job_stores_its_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    job_id, document_id = _dispatched_job()
    rows = unit_vectors(3, seed=1)
    report = write_embed_artifacts(job_id, document_id, rows)
    assert _results(_completed(report)) == []

    job = _job(job_id)
    assert job.status == "succeeded" and job.error is None and job.finished_at is not None
    assert job.result_uri == report["result_uri"]
    assert job.result is not None
    assert job.result["count"] == 3 and job.result["dim"] == 384 and job.result["stored"] is True
    assert job.gpu_used == {"available": False, "device": "cpu"}
    assert job.timings is not None
    assert job.timings["job_inference_s"] == 0.01 and job.timings["total_s"] >= 0
    document, chunks = _stored(document_id)
    assert document is not None and document.chunk_count == 3 and document.job_id == job_id
    assert document.owner_id == OPERATOR.user_id and document.model == "all-MiniLM-L6-v2"
    expected = vectors.normalise(vectors.mean(rows))
    assert vectors.unpack(document.vector) == pytest.approx(expected, abs=1e-6)
    assert [c.chunk_index for c in chunks] == [0, 1, 2]
    assert vectors.unpack(chunks[1].vector) == pytest.approx(rows[1], abs=1e-6)

    # The same event again (at-least-once delivery) changes nothing.
    assert _results(_completed(report)) == []
    assert _job(job_id).updated_at == job.updated_at
    assert _alerts() == []


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ({"truncate_vectors_by": 4 * 384}, "partial write"),
        ({"write_vectors": False}, "does not exist"),
    ],
)
def test_partial_output_is_never_recorded_as_success(damage: dict[str, Any], reason: str) -> None:
    job_id, document_id = _dispatched_job()
    report = write_embed_artifacts(job_id, document_id, unit_vectors(2), **damage)
    assert _results(_completed(report)) == []
    job = _job(job_id)
    assert job.status == "failed" and reason in (job.error or "")
    assert _stored(document_id) == (None, [])
    assert [a["detail"]["job_id"] for a in _alerts()] == [job_id]


def test_vectors_that_do_not_match_their_digest_are_rejected() -> None:
    job_id, document_id = _dispatched_job()
    report = write_embed_artifacts(job_id, document_id, unit_vectors(2, seed=3))
    other = write_embed_artifacts("other-job", document_id, unit_vectors(2, seed=4))
    bucket = config.load(JobSettings).artifacts_bucket
    aws.client("s3").copy_object(
        Bucket=bucket,
        Key=f"{job_prefix(job_id)}vectors.f32",
        CopySource={"Bucket": bucket, "Key": f"{job_prefix('other-job')}vectors.f32"},
    )
    assert other["status"] == "succeeded"
    assert _results(_completed(report)) == []
    assert "SHA-256" in (_job(job_id).error or "")


def test_a_success_without_a_result_object_is_a_failure() -> None:
    job_id, _ = _dispatched_job()
    bucket = config.load(JobSettings).artifacts_bucket
    report = {
        "job_id": job_id,
        "status": "succeeded",
        "result_uri": f"s3://{bucket}/{job_prefix(job_id)}result.json",
        "gpu": None,
        "timings": None,
        "error": None,
    }
    assert _results(_completed(report)) == []
    assert "does not exist" in (_job(job_id).error or "")
    foreign = dict(report, result_uri=f"s3://{bucket}/jobs/someone-else/result.json")
    job_id2, _ = _dispatched_job()
    foreign["job_id"] = job_id2
    assert _results(_completed(foreign)) == []
    assert "outside this job's artifacts" in (_job(job_id2).error or "")


def test_a_failed_job_report_fails_the_job_with_its_error_and_an_alert() -> None:
    job_id, _ = _dispatched_job()
    event = json.loads((EVENTS / "gpu_job_failed.json").read_text())
    event["detail"]["job_id"] = job_id
    assert _results(event) == []
    job = _job(job_id)
    assert job.status == "failed" and (job.error or "").startswith("ModelIntegrityError")
    alerts = _alerts()
    assert len(alerts) == 1 and alerts[0]["detail"]["error"].startswith("ModelIntegrityError")


def test_a_result_for_an_unknown_job_is_ignored() -> None:
    """Logged and acknowledged: no crash, no retry, nothing stored."""
    event = json.loads((EVENTS / "gpu_job_completed.json").read_text())
    assert _results(event) == []
    event_failed = json.loads((EVENTS / "gpu_job_failed.json").read_text())
    assert _results(event_failed) == []
    assert _alerts() == []


def test_an_unexpected_event_is_ignored_and_a_malformed_report_is_retried() -> None:
    unrelated = eventbridge("lotabots.documents", "DocumentIngested", {"document_id": "x"})
    malformed = eventbridge("lotabots.gpu", "GpuJobCompleted", {"status": "succeeded"})
    event = sqs_event(unrelated, malformed)
    response = load_function("job_results").lambda_handler(event, FakeLambdaContext())
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [event["Records"][1]["messageId"]]


def test_an_older_version_never_overwrites_a_newer_one() -> None:
    new_job, document_id = _dispatched_job(version=2)
    assert _results(_completed(write_embed_artifacts(new_job, document_id, unit_vectors(2, seed=5)))) == []
    with session_scope() as session:
        old, _ = creation.create_job(
            session,
            OPERATOR,
            JobCreate.model_validate(
                {"type": "embed", "input": {"document_id": document_id}, "backend": "modal"}
            ),
        )
        old.input = {**old.input, "version": 1}
        old_id = old.id
    assert _results(_completed(write_embed_artifacts(old_id, document_id, unit_vectors(4, seed=6)))) == []
    document, chunks = _stored(document_id)
    assert document is not None and document.version == 2 and len(chunks) == 2
    old_job = _job(old_id)
    assert old_job.status == "succeeded" and old_job.result is not None and old_job.result["stored"] is False


# --- AWS Batch state changes --------------------------------------------------------------------


def _batch_event(name: str, batch_job_id: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    event["detail"]["jobId"] = batch_job_id
    return event


def test_batch_succeeded_records_the_report_once_per_job_and_status(monkeypatch: pytest.MonkeyPatch) -> None:
    job_id, document_id = _dispatched_job("batch", "batch-job-1")
    write_embed_artifacts(job_id, document_id, unit_vectors(2, seed=7))
    calls: list[str] = []
    original = results._batch_state_change

    def counting(detail: dict[str, Any]) -> str:
        calls.append(detail["jobId"])
        return original(detail)

    monkeypatch.setattr(results, "_batch_state_change", counting)
    event = _batch_event("batch_job_succeeded.json", "batch-job-1")
    assert _results(event, copy.deepcopy(event)) == []
    assert _results(copy.deepcopy(event)) == []
    assert calls == ["batch-job-1"], "(jobId, status) seen before is answered from the idempotency store"
    assert _job(job_id).status == "succeeded"
    assert _stored(document_id)[0] is not None


def test_batch_failed_without_a_report_fails_with_the_batch_reason() -> None:
    """The host died (exit 137): no report.json; the Batch status reason becomes the error."""
    job_id, _ = _dispatched_job("batch", "batch-job-2")
    assert _results(_batch_event("batch_job_failed.json", "batch-job-2")) == []
    job = _job(job_id)
    assert job.status == "failed"
    assert "Host EC2 (instance i-0a1b2c3d4e5f67890) terminated." in (job.error or "")
    assert "exit code 137" in (job.error or "")
    assert len(_alerts()) == 1


def test_batch_succeeded_without_a_report_is_a_failure() -> None:
    job_id, _ = _dispatched_job("batch", "batch-job-3")
    assert _results(_batch_event("batch_job_succeeded.json", "batch-job-3")) == []
    assert "wrote no report" in (_job(job_id).error or "")


def test_batch_event_for_an_unknown_job_is_ignored() -> None:
    assert _results(_batch_event("batch_job_succeeded.json", "not-ours")) == []
    assert _alerts() == []


# --- the poll-gpu-jobs schedule -----------------------------------------------------------------


def _poll() -> dict[str, Any]:
    event = json.loads((EVENTS / "jobs_poll_schedule.json").read_text())
    summary: dict[str, Any] = load_function("job_results").lambda_handler(event, FakeLambdaContext())
    return summary


def test_poll_marks_a_modal_call_running_then_records_its_returned_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put_modal_secret()
    fake = FakeModal().install(monkeypatch)
    fake.calls["fc-1"] = FakeModalCall("fc-1")
    job_id, document_id = _dispatched_job("modal", "fc-1")
    assert _poll()["started"] == [job_id]
    job = _job(job_id)
    assert job.status == "running" and job.started_at is not None

    fake.calls["fc-1"].outcome = write_embed_artifacts(job_id, document_id, unit_vectors(2, seed=8))
    assert _poll()["finished"] == {job_id: "succeeded"}
    assert _job(job_id).status == "succeeded"


def test_poll_fails_a_modal_call_whose_function_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    put_modal_secret()
    fake = FakeModal().install(monkeypatch)
    fake.calls["fc-2"] = FakeModalCall("fc-2", outcome=RuntimeError("CUDA error: out of memory"))
    job_id, _ = _dispatched_job("modal", "fc-2")
    assert _poll()["finished"] == {job_id: "failed"}
    assert "CUDA error: out of memory" in (_job(job_id).error or "")
    assert len(_alerts()) == 1


def test_a_job_past_its_timeout_is_failed_and_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    put_modal_secret()
    fake = FakeModal().install(monkeypatch)
    fake.calls["fc-3"] = FakeModalCall("fc-3")
    job_id, _ = _dispatched_job("modal", "fc-3")
    with session_scope() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(dispatched_at=utcnow() - timedelta(hours=2))
        )
    assert _poll()["timed_out"] == [job_id]
    job = _job(job_id)
    assert job.status == "failed" and job.error == "timed out after 3600 s"
    assert fake.calls["fc-3"].cancelled is True
    assert [a["detail"]["job_id"] for a in _alerts()] == [job_id]


def test_stale_queued_jobs_are_requeued_and_ancient_ones_failed() -> None:
    document_id = ready_document(OPERATOR.user_id, "text")
    ids = []
    with session_scope() as session:
        for _ in range(2):
            job, _ = creation.create_job(
                session,
                OPERATOR,
                JobCreate.model_validate({"type": "embed", "input": {"document_id": document_id}}),
            )
            ids.append(job.id)
    stale, ancient = ids
    with session_scope() as session:
        ten_minutes = utcnow() - timedelta(minutes=10)
        session.execute(
            update(Job).where(Job.id == stale).values(created_at=ten_minutes, updated_at=ten_minutes)
        )
        two_hours = utcnow() - timedelta(hours=2)
        session.execute(
            update(Job).where(Job.id == ancient).values(created_at=two_hours, updated_at=two_hours)
        )
    summary = _poll()
    assert summary["requeued"] == [stale] and summary["timed_out"] == [ancient]
    assert [m["job_id"] for m in drain("GPU_JOBS_QUEUE_URL")] == [stale]
    assert _poll()["requeued"] == [], "the requeue clock restarted"
    assert _job(ancient).status == "failed" and _job(stale).status == "queued"


def test_a_local_worker_that_died_without_reporting_is_failed() -> None:
    """The worker process is gone and left no report.json: a crash, recorded as a failure."""
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        running_id, _ = _dispatched_job("local", str(alive.pid))
        assert _poll()["started"] == [running_id]
    finally:
        alive.kill()
        alive.wait()
    summary = _poll()
    assert summary["finished"] == {running_id: "failed"}
    assert "wrote no report" in (_job(running_id).error or "")


def test_poll_records_a_batch_job_that_succeeded_with_its_report() -> None:
    """A lost Batch event: DescribeJobs (moto: SUCCEEDED at once) and the report still close the job."""
    from tests.support.jobs import create_batch_resources

    create_batch_resources()
    settings = config.load(JobSettings)
    handle = aws.client("batch").submit_job(
        jobName="lotabots-embed-x-1",
        jobQueue=settings.batch_job_queue,
        jobDefinition=settings.batch_job_definition,
    )["jobId"]
    job_id, document_id = _dispatched_job("batch", handle)
    write_embed_artifacts(job_id, document_id, unit_vectors(2, seed=9))
    assert _poll()["finished"] == {job_id: "succeeded"}


def _emf_values(output: str) -> dict[str, list[float]]:
    """Metric name → values of every EMF document the handler printed."""
    values: dict[str, list[float]] = {}
    for line in output.splitlines():
        if line.startswith("{") and "_aws" in line:
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    values.setdefault(metric["Name"], []).extend(
                        value if isinstance(value, list) else [value]
                    )
    return values


def test_finished_jobs_and_each_poll_publish_the_dashboard_metrics(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Job duration and the GPU utilisation the job measured; queued/running gauges per poll."""
    job_id, document_id = _dispatched_job()
    report = write_embed_artifacts(job_id, document_id, unit_vectors(2, seed=3))
    report["gpu"] = {"available": True, "device": "NVIDIA L4", "utilization_mean_pct": 87.5}
    capsys.readouterr()
    assert _results(_completed(report)) == []
    emitted = _emf_values(capsys.readouterr().out)
    assert emitted["GpuUtilization"] == [87.5]
    assert len(emitted["JobDuration"]) == 1 and emitted["JobDuration"][0] >= 0

    _dispatched_job(handle="fc-other")
    with session_scope() as session:
        creation.create_job(
            session,
            OPERATOR,
            JobCreate.model_validate(
                {"type": "embed", "input": {"document_id": document_id}, "backend": "local"}
            ),
        )
    _poll()
    emitted = _emf_values(capsys.readouterr().out)
    assert emitted["JobsQueued"] == [1.0] and emitted["JobsRunning"] == [1.0]
