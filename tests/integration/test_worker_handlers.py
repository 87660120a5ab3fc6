"""Every worker function through its real `lambda_handler`, fed the sample events in events/
(issue 8, item 4): SQS batches wrapping the EventBridge events their queue receives, and the
schedule events of their schedules.

The logger runs at DEBUG here: alert_ingest once passed a LogRecord attribute name (`created`)
as a log extra, which raises inside `logging` after the commit, and the other tests log at
WARNING, where the INFO call never built a record. Each SQS case checks the effect, that a good
batch reports no `batchItemFailures`, and that a batch with poison messages lists exactly those.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from sqlalchemy import select

from lotabots import aws, config, topology
from lotabots.access import Principal, Role
from lotabots.alerts import flush
from lotabots.alerts.models import Alert, AlertDelivery, AlertNotification
from lotabots.db import session_scope
from lotabots.db.base import utcnow
from lotabots.jobs import creation as job_creation
from lotabots.jobs import repository as jobs_repository
from lotabots.jobs.models import Job, JobStatus
from lotabots.jobs.schemas import JobCreate
from lotabots.observability import logger
from tests.support import alerts_helpers
from tests.support.api import FakeLambdaContext, load_function
from tests.support.documents import create_and_upload, get
from tests.support.jobs import OPERATOR, create_batch_resources, drain, ready_document, reset_jobs_state

EVENTS = Path(__file__).resolve().parents[2] / "events"
POISON_BODIES = ("not json", json.dumps({"unexpected": "shape"}))


@pytest.fixture(autouse=True)
def debug_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every log call builds its record (and would raise on a reserved extra key)."""
    level = logger.log_level
    logger.setLevel("DEBUG")
    yield
    logger.setLevel(level)


@pytest.fixture
def workers(db: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("ALERTS_CONFIG_PARAMETER", raising=False)
    monkeypatch.setenv("JOB_RETRY_BASE_SECONDS", "0")
    alerts_helpers.reset_alerting_caches()
    reset_jobs_state()
    yield aws_env
    reset_jobs_state()
    alerts_helpers.reset_alerting_caches()


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def _invoke(function: str, event: dict[str, Any]) -> Any:
    return load_function(function).lambda_handler(event, FakeLambdaContext())


def _with_poison(event: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The sample batch plus poison records (same queue, bodies no consumer can use)."""
    poisoned = copy.deepcopy(event)
    template = event["Records"][0]
    ids = set()
    for index, body in enumerate(POISON_BODIES):
        record = {**copy.deepcopy(template), "messageId": f"poison-{index}", "body": body}
        poisoned["Records"].append(record)
        ids.add(record["messageId"])
    return poisoned, ids


def _failed(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def _set_body(event: dict[str, Any], index: int, body: dict[str, Any]) -> dict[str, Any]:
    event["Records"][index]["body"] = json.dumps(body)
    return event


def _alerts() -> dict[str, Alert]:
    with session_scope() as session:
        return {a.labels["alertname"]: a for a in session.scalars(select(Alert))}


# --- alert_ingest ---------------------------------------------------------------------------


def test_alert_ingest__alarms_job_failures_and_findings_become_alerts(workers: dict[str, str]) -> None:
    event, poison = _with_poison(_load("alerts_ingest_sqs.json"))
    assert _failed(_invoke("alert_ingest", event)) == poison
    alerts = _alerts()
    assert set(alerts) == {"lotabots-prod-api-5xx-critical", "GpuJobFailed"}
    assert alerts["GpuJobFailed"].labels["job_id"] == "8f14e45fceea167a5a36dedd4bea2543"
    assert alerts["lotabots-prod-api-5xx-critical"].ends_at is None

    assert _invoke("alert_ingest", _load("alerts_ingest_findings_sqs.json")) == {"batchItemFailures": []}
    alerts = _alerts()
    assert {"AttestationFailed", "AIOpsFinding"} <= set(alerts)
    alarm = alerts["lotabots-prod-api-5xx-critical"]
    assert alarm.ends_at == datetime(2026, 11, 25, 10, 20, 0, 789000, tzinfo=UTC)  # the OK event resolved it


# --- alert_flush and alert_notify -----------------------------------------------------------


def test_alert_flush__schedule_event_flushes_due_groups(workers: dict[str, str]) -> None:
    _invoke("alert_ingest", _load("alerts_ingest_sqs.json"))  # sample alerts started in 2026-11
    report = _invoke("alert_flush", _load("alerts_flush_schedule.json"))
    assert report["notifications"] == 2 and report["enqueued"] == 2
    assert _invoke("alert_flush", _load("alerts_flush_schedule.json"))["notifications"] == 0


def test_alert_notify__delivers_the_notification_and_fails_only_poison(workers: dict[str, str]) -> None:
    _invoke("alert_ingest", _load("alerts_ingest_sqs.json"))
    flush.flush_due(now=utcnow(), enqueue=False)
    with session_scope() as session:
        notification_ids = list(session.scalars(select(AlertNotification.id)))
    event = _load("alerts_notify_sqs.json")
    _set_body(event, 0, {"notification_id": notification_ids[0]})
    event, poison = _with_poison(event)
    unknown = {**copy.deepcopy(event["Records"][0]), "messageId": "unknown-notification"}
    unknown["body"] = json.dumps({"notification_id": "0" * 32})
    event["Records"].append(unknown)
    assert _failed(_invoke("alert_notify", event)) == poison | {"unknown-notification"}
    with session_scope() as session:
        assert list(session.scalars(select(AlertDelivery.status))) == ["logged"]  # no Slack token here
    # The same message again (SQS redelivery) changes nothing.
    again = _set_body(_load("alerts_notify_sqs.json"), 0, {"notification_id": notification_ids[0]})
    assert _invoke("alert_notify", again) == {"batchItemFailures": []}
    with session_scope() as session:
        assert len(list(session.scalars(select(AlertDelivery.id)))) == 1


# --- document_ingest ------------------------------------------------------------------------


def test_document_ingest__s3_notification_ingests_and_poison_fails_alone(workers: dict[str, str]) -> None:
    owner = Principal("3f2a9c0d5e8b4a7c9d1e2f3a4b5c6d7e", "m@example.com", Role.MEMBER)
    doc = create_and_upload(owner, b"ingested from the sample event")
    aws.client("sqs").purge_queue(QueueUrl=os.environ["DOCUMENT_INGEST_QUEUE_URL"])
    event = _load("document_ingest_s3_sqs.json")
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["key"] = quote_plus(f"documents/{owner.user_id}/{doc['id']}/1")
    _set_body(event, 0, body)
    event, poison = _with_poison(event)
    assert _failed(_invoke("document_ingest", event)) == poison
    assert get(owner, doc["id"])[2]["status"] == "ready"
    assert _invoke("document_ingest", _load("document_ingest_s3_test_event.json")) == {
        "batchItemFailures": []
    }


# --- job_dispatch ---------------------------------------------------------------------------


def _use_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_BACKEND", "batch")
    config.reset()
    reset_jobs_state()
    create_batch_resources()


def _job(job_id: str) -> Job:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def test_job_dispatch__dispatch_requests_and_document_ingested_events(
    workers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_batch(monkeypatch)
    document_id = ready_document(OPERATOR.user_id, "text to embed " * 20)
    with session_scope() as session:
        job, _ = job_creation.create_job(
            session,
            OPERATOR,
            JobCreate.model_validate({"type": "embed", "input": {"document_id": document_id}}),
        )
        job_id = job.id
    event = _load("jobs_dispatch_sqs.json")
    body = json.loads(event["Records"][0]["body"])
    _set_body(event, 0, {**body, "job_id": job_id})
    event, poison = _with_poison(event)
    assert _failed(_invoke("job_dispatch", event)) == poison
    assert _job(job_id).status == JobStatus.DISPATCHED

    other_document = ready_document("member-7", "more text to embed " * 20)
    event = _load("jobs_document_ingested_sqs.json")
    body = json.loads(event["Records"][0]["body"])
    body["detail"].update(document_id=other_document, owner_id="member-7")
    assert _invoke("job_dispatch", _set_body(event, 0, body)) == {"batchItemFailures": []}
    with session_scope() as session:
        [embed] = session.scalars(select(Job).where(Job.id != job_id))
    assert embed.type == "embed" and embed.input["document_id"] == other_document
    assert embed.status == JobStatus.DISPATCHED


# --- job_results ----------------------------------------------------------------------------


def _dispatched_job(backend: str, handle: str) -> str:
    document_id = ready_document(OPERATOR.user_id, "text to embed")
    with session_scope() as session:
        job, _ = job_creation.create_job(
            session,
            OPERATOR,
            JobCreate.model_validate(
                {"type": "embed", "input": {"document_id": document_id}, "backend": backend}
            ),
        )
        jobs_repository.transition(
            session,
            job.id,
            from_statuses=[JobStatus.QUEUED],
            to_status=JobStatus.DISPATCHED,
            backend_handle=handle,
            dispatched_at=utcnow(),
            attempts=1,
        )
        return job.id


def test_job_results__failed_job_report_fails_the_job_with_an_alert(workers: dict[str, str]) -> None:
    job_id = _dispatched_job("modal", "fc-handle")
    event = _load("jobs_results_failed_sqs.json")
    body = json.loads(event["Records"][0]["body"])
    body["detail"]["job_id"] = job_id
    _set_body(event, 0, body)
    event, poison = _with_poison(event)
    assert _failed(_invoke("job_results", event)) == poison
    assert _job(job_id).status == JobStatus.FAILED
    assert [m["detail-type"] for m in drain("ALERT_EVENTS_QUEUE_URL")] == ["GpuJobFailed"]
    # A completion for a job this stage does not know is acknowledged, not retried.
    assert _invoke("job_results", _load("jobs_results_sqs.json")) == {"batchItemFailures": []}
    summary = _invoke("job_results", _load("jobs_poll_schedule.json"))  # the poll-gpu-jobs schedule
    assert {"started", "finished"} <= set(summary)


def test_job_results__batch_state_changes(workers: dict[str, str]) -> None:
    job_id = _dispatched_job("batch", "batch-sample-job")
    event = _load("jobs_results_batch_sqs.json")
    failed_state = json.loads(event["Records"][1]["body"])
    failed_state["detail"]["jobId"] = "batch-sample-job"
    _set_body(event, 1, failed_state)  # record 0 names a Batch job that is not ours: ignored
    assert _invoke("job_results", event) == {"batchItemFailures": []}
    job = _job(job_id)
    assert job.status == JobStatus.FAILED and "Host EC2" in (job.error or "")


# --- migrate ----------------------------------------------------------------------------------


def test_migrate__deploy_trigger_migrates_and_logs(
    aws_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lotabots.db import engine as db_engine
    from lotabots.db import migrate

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    config.reset()
    db_engine.reset_engine()
    try:
        result = _invoke("migrate", {})  # the CDK Trigger's invocation carries no payload we use
        assert result["heads"] == sorted(migrate.current_heads())
    finally:
        db_engine.reset_engine()
        config.reset()


# --- coverage of the topology -----------------------------------------------------------------


# --- AIOps schedules (tests/integration/test_aiops_*.py cover their faults) ------------------


def test_aiops_monitor__each_schedule_event_runs_its_part(workers: dict[str, str]) -> None:
    from tests.support.aiops import powertools_line, put_logs

    health = _invoke("aiops_monitor", _load("aiops_health_schedule.json"))
    assert health["schedule"] == "aiops-health" and {c["name"] for c in health["checks"]} >= {"database"}
    put_logs("auth", [powertools_line("INFO", f"user {i} logged in") for i in range(3)])
    logs = _invoke("aiops_monitor", _load("aiops_logs_schedule.json"))
    assert logs["schedule"] == "aiops-logs" and logs["lines"] == 3
    anomaly = _invoke("aiops_monitor", _load("aiops_anomaly_schedule.json"))
    assert anomaly["schedule"] == "aiops-anomaly" and anomaly["unavailable"] == []
    other = _load("aiops_health_schedule.json") | {"resources": ["arn:aws:events:us-east-1:1:rule/nope"]}
    with pytest.raises(ValueError, match="no AIOps schedule"):
        _invoke("aiops_monitor", other)


def test_aiops_planner__forecast_and_report_schedule_events(workers: dict[str, str]) -> None:
    forecast = _invoke("aiops_planner", _load("aiops_forecast_schedule.json"))
    assert forecast["mode"] == "dry-run" and forecast["chart_key"].endswith(".png")
    report = _invoke("aiops_planner", _load("aiops_report_schedule.json"))
    assert report["created"] is True and report["logged"] == [report["day"]]


def test_every_worker_function_has_a_handler_test_here() -> None:
    """Each worker has a test named `test_<function>__...` that drives its real handler with its
    sample event: here, or in its domain's integration module (anchoring, attestation, AIOps)."""
    import re

    workers = {fn.name for fn in topology.FUNCTIONS if fn.kind in ("worker", "migration")}
    tested = {
        match.group(1)
        for module in Path(__file__).parent.glob("test_*.py")
        for match in re.finditer(r"^def test_(\w+?)__", module.read_text(), re.MULTILINE)
    }
    assert workers <= tested, f"worker functions without a handler test: {sorted(workers - tested)}"
