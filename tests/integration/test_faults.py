"""Faults on the job and document queues, through the real `lambda_handler`s: the database
going away for a few seconds in the middle of a batch, duplicate and out-of-order events.
Nothing is lost (the failed records come back and complete), nothing is done twice.
(The alert queues' faults, Slack outages included, are in tests/integration/test_alerts_faults.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from lotabots import config
from lotabots.db import engine as db_engine
from lotabots.db import session_scope
from lotabots.embeddings.models import ChunkEmbedding
from lotabots.jobs import creation
from lotabots.jobs.models import Job
from lotabots.jobs.schemas import JobCreate
from tests.support.api import FakeLambdaContext, load_function
from tests.support.jobs import (
    OPERATOR,
    create_batch_resources,
    eventbridge,
    ready_document,
    reset_jobs_state,
    sqs_event,
    unit_vectors,
    write_embed_artifacts,
)


@pytest.fixture(autouse=True)
def _env(db: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("JOB_RETRY_BASE_SECONDS", "0")
    monkeypatch.setenv("JOB_BACKEND", "batch")
    config.reset()
    reset_jobs_state()
    yield
    reset_jobs_state()


class DatabaseOutage:
    """Every statement fails with OperationalError (what a dropped connection raises) from the
    first commit after `arm()` until `seconds` later: a database lost mid-batch, then back."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = False
        self.until = 0.0
        self.refused = 0

    def arm(self) -> None:
        self.armed = True

    def after_commit(self, _session: Any) -> None:
        if self.armed and not self.until:
            self.until = time.monotonic() + self.seconds

    def before_execute(self, *_args: Any) -> None:
        if self.until and time.monotonic() < self.until:
            self.refused += 1
            raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))


@pytest.fixture
def outage() -> Iterator[DatabaseOutage]:
    from sqlalchemy.orm import Session

    fault = DatabaseOutage(seconds=1.5)
    engine = db_engine.get_engine()
    event.listen(Session, "after_commit", fault.after_commit)
    event.listen(engine, "before_cursor_execute", fault.before_execute)
    yield fault
    event.remove(Session, "after_commit", fault.after_commit)
    event.remove(engine, "before_cursor_execute", fault.before_execute)


def _run(function: str, sqs: dict[str, Any]) -> list[str]:
    response = load_function(function).lambda_handler(sqs, FakeLambdaContext())
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def _only(sqs: dict[str, Any], message_ids: list[str]) -> dict[str, Any]:
    """The records of a batch that the event source mapping hands out again."""
    return {"Records": [r for r in sqs["Records"] if r["messageId"] in message_ids]}


def _dispatched_embed_job() -> tuple[str, str]:
    document_id = ready_document(OPERATOR.user_id, "text to embed")
    with session_scope() as session:
        job, _ = creation.create_job(
            session,
            OPERATOR,
            JobCreate.model_validate({"type": "embed", "input": {"document_id": document_id}}),
        )
        job_id = job.id
    assert _run("job_dispatch", sqs_event({"job_id": job_id})) == []
    return job_id, document_id


def _job(job_id: str) -> Job:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _chunks(document_id: str) -> int:
    with session_scope() as session:
        return len(
            session.scalars(select(ChunkEmbedding).where(ChunkEmbedding.document_id == document_id)).all()
        )


def test_database_lost_mid_batch_of_results_loses_nothing_and_repeats_nothing(
    outage: DatabaseOutage,
) -> None:
    create_batch_resources()
    jobs = [_dispatched_embed_job() for _ in range(3)]
    events = [
        eventbridge("lotabots.gpu", "GpuJobCompleted", write_embed_artifacts(job_id, doc, unit_vectors(2)))
        for job_id, doc in jobs
    ]
    batch = sqs_event(*events)
    outage.arm()
    failed = _run("job_results", batch)
    assert outage.refused > 0, "the outage must have hit the batch"
    assert len(failed) == 2, "the first record committed; the two after it met the outage"

    time.sleep(outage.seconds)
    assert _run("job_results", _only(batch, failed)) == []
    assert _run("job_results", batch) == [], "a late redelivery of the whole batch changes nothing"
    for job_id, document_id in jobs:
        assert _job(job_id).status == "succeeded"
        assert _chunks(document_id) == 2


def test_database_lost_mid_dispatch_batch_submits_each_job_once(outage: DatabaseOutage) -> None:
    from lotabots import aws
    from lotabots.config import JobSettings

    create_batch_resources()
    job_ids = []
    for _ in range(3):
        document_id = ready_document(OPERATOR.user_id, "text to embed")
        with session_scope() as session:
            job, _ = creation.create_job(
                session,
                OPERATOR,
                JobCreate.model_validate({"type": "embed", "input": {"document_id": document_id}}),
            )
            job_ids.append(job.id)
    batch = sqs_event(*({"job_id": job_id} for job_id in job_ids))
    outage.arm()
    failed = _run("job_dispatch", batch)
    assert failed, "the outage must have failed part of the batch"
    time.sleep(outage.seconds)
    assert _run("job_dispatch", _only(batch, failed)) == []
    assert _run("job_dispatch", batch) == []
    queue = config.load(JobSettings).batch_job_queue
    submitted = aws.client("batch").list_jobs(jobQueue=queue, jobStatus="SUBMITTED")["jobSummaryList"]
    submitted += aws.client("batch").list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert len(submitted) == 3, "one Batch job per platform job, whatever was retried"
    assert {_job(job_id).status for job_id in job_ids} == {"dispatched"}


def test_a_late_failure_report_never_overturns_a_recorded_success() -> None:
    """Out of order: the success was recorded; a failure of the same job arrives afterwards."""
    create_batch_resources()
    job_id, document_id = _dispatched_embed_job()
    report = write_embed_artifacts(job_id, document_id, unit_vectors(2))
    success = eventbridge("lotabots.gpu", "GpuJobCompleted", report)
    late_failure = eventbridge(
        "lotabots.gpu", "GpuJobFailed", {**report, "status": "failed", "error": "stale attempt"}
    )
    batch_state = eventbridge(
        "aws.batch",
        "Batch Job State Change",
        {"jobId": _job(job_id).backend_handle, "status": "FAILED", "statusReason": "stale"},
    )
    assert _run("job_results", sqs_event(success, success)) == []
    assert _run("job_results", sqs_event(late_failure, batch_state)) == []
    job = _job(job_id)
    assert job.status == "succeeded" and job.error is None
    assert _chunks(document_id) == 2
