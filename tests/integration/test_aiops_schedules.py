"""The AIOps schedule functions through their real handlers and sample events (moto, SQLite/PG):
what each run stores and which findings reach the alert pipeline, and the faults a run must
survive: missing and corrupt state, CloudWatch throttling, overlapping runs, bad log lines."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from sqlalchemy import select

from lotabots import aws, config
from lotabots.aiops import logs, sources, store
from lotabots.aiops.models import Anomaly, Forecast, HealthRun, LogCluster
from lotabots.db import session_scope
from tests.support.aiops import (
    bucket,
    findings,
    now,
    powertools_line,
    put_logs,
    put_metric,
    run_schedule,
    state_key,
)

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture(autouse=True)
def _fresh_inventory() -> Any:
    sources.reset()
    yield
    sources.reset()


def _clusters() -> list[LogCluster]:
    with session_scope() as session:
        rows = list(session.scalars(select(LogCluster).order_by(LogCluster.count.desc())))
        session.expunge_all()
        return rows


def test_logs_mine_templates_per_function_and_skip_metric_blobs(aws_env: dict[str, str]) -> None:
    """Powertools lines become templates with counts, level and examples; EMF blobs and Lambda
    platform lines are not log messages; the first run raises no new-template findings."""
    lines = [powertools_line("INFO", f"document {i} stored in 12{i} ms") for i in range(30)]
    lines += [
        powertools_line("ERROR", f"ingest failed for user {i}", exception_name="ValueError") for i in range(5)
    ]
    lines += ['{"_aws": {"CloudWatchMetrics": []}, "X": 1}', "START RequestId: 1 Version: $LATEST"]
    put_logs("documents", lines)
    result = run_schedule("logs")
    assert result["lines"] == 35 and result["events"] == 37 and not result["state_reset"]
    clusters = _clusters()
    assert [(c.function, c.count, c.level) for c in clusters] == [
        ("documents", 30, "INFO"),
        ("documents", 5, "ERROR"),
    ]
    assert "<*>" in clusters[0].template and len(clusters[0].examples) == 3
    assert "[ValueError]" in clusters[1].template
    assert [f for f in findings(aws_env) if f["kind"] == "new_log_template"] == []


def test_logs_new_error_template_is_a_finding_once_and_lines_are_never_counted_twice(
    aws_env: dict[str, str],
) -> None:
    put_logs("jobs", [powertools_line("INFO", f"job {i} queued") for i in range(10)])
    run_schedule("logs")
    put_logs("jobs", [powertools_line("ERROR", f"backend modal unavailable after {i} s") for i in range(4)])
    second = run_schedule("logs")
    assert second["new_templates"] == 1
    new = [f for f in findings(aws_env) if f["kind"] == "new_log_template"]
    assert len(new) == 1 and new[0]["labels"] == {"function": "jobs", "level": "ERROR"}
    assert new[0]["annotations"]["runbook"].startswith("docs/aiops.md#new-log-template")
    third = run_schedule("logs")  # nothing new since the checkpoint
    assert third["lines"] == 0
    assert sorted(c.count for c in _clusters()) == [4, 10]


def test_logs_spike_against_the_learned_baseline(aws_env: dict[str, str]) -> None:
    for _ in range(4):
        put_logs("auth", [powertools_line("WARNING", f"login failed for user {i}") for i in range(2)])
        run_schedule("logs")
    put_logs("auth", [powertools_line("WARNING", f"login failed for user {i}") for i in range(60)])
    assert run_schedule("logs")["spikes"] == 1
    spikes = [f for f in findings(aws_env) if f["kind"] == "log_spike"]
    assert len(spikes) == 1 and spikes[0]["labels"]["function"] == "auth"


def test_logs_bad_lines_do_not_break_a_run(aws_env: dict[str, str]) -> None:
    """Binary/garbled text, a 1 MB line, replacement characters, a flood of one template."""
    garbage = ["\x00\x01\x02 binary \ufffd\ufffd", "x" * 1_000_000, "{not json", "  ", "ERROR ☃ ünïcode"]
    put_logs("alerts", garbage + [powertools_line("INFO", "tick")] * 500)
    result = run_schedule("logs")
    assert result["lines"] == 504
    assert max(len(e) for c in _clusters() for e in c.examples) <= 500


@pytest.mark.parametrize("corrupt", [b"\x89PNG not json", b'{"miner": {"kind": "other"}}', b"[1, 2]"])
def test_corrupt_logs_state_is_replaced_and_reported(aws_env: dict[str, str], corrupt: bytes) -> None:
    aws.client("s3").put_object(Bucket=bucket(), Key=state_key("logs"), Body=corrupt)
    put_logs("documents", [powertools_line("INFO", "hello 1")])
    result = run_schedule("logs")
    assert result["state_reset"] is True and result["lines"] == 1
    reset = [f for f in findings(aws_env) if f["kind"] == "state_reset"]
    assert len(reset) == 1 and "log miner" in reset[0]["summary"]
    stored = store.load("logs")
    assert (
        stored.problem is None
        and isinstance(stored.body, dict)
        and stored.body["miner"]["kind"] == "lotabots.aiops.logmining"
    )
    versions = aws.client("s3").list_object_versions(Bucket=bucket(), Prefix=state_key("logs"))["Versions"]
    assert len(versions) == 2  # the corrupt version is kept for inspection


def test_a_run_that_overlapped_another_rolls_back(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state write is the commit point: a run whose state was written meanwhile stores nothing."""
    put_logs("documents", [powertools_line("INFO", "one line")])
    real_load = store.load

    def load_then_someone_writes(name: str) -> store.Stored:
        stored = real_load(name)
        if name == "logs":
            store.save("logs", {"written": "by another run"}, stored.etag)
        return stored

    monkeypatch.setattr(store, "load", load_then_someone_writes)
    with pytest.raises(store.StateConflict):
        logs.run()
    assert _clusters() == []


def test_health_run_checks_queues_dlq_and_lambda_metrics(aws_env: dict[str, str]) -> None:
    at = now() - timedelta(minutes=2)
    put_metric("documents", "Invocations", [(at, 20)])
    put_metric("documents", "Errors", [(at, 10)])
    put_metric("jobs", "Throttles", [(at, 2)])
    sqs = aws.client("sqs")
    dlq = sqs.get_queue_url(QueueName="gpu-jobs-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    result = run_schedule("health")
    checks = {c["name"]: c for c in result["checks"]}
    assert result["status"] == "degraded"
    assert checks["database"]["status"] == "ok" and checks["api"]["status"] == "skipped"
    assert checks["dlq:gpu-jobs"]["status"] == "error" and checks["queue:gpu-jobs"]["status"] == "ok"
    assert checks["lambda:documents"]["status"] == "warning" and checks["lambda:jobs"]["status"] == "warning"
    kinds = sorted(f["kind"] for f in findings(aws_env))
    assert kinds == ["dlq", "lambda_errors", "lambda_throttles"]
    # The conditions persist: the next run sends nothing again (dedupe); once cleared: resolved.
    run_schedule("health")
    assert findings(aws_env) == []
    sqs.purge_queue(QueueUrl=dlq)
    run_schedule("health")
    resolved = findings(aws_env)
    assert [(f["kind"], f["status"]) for f in resolved] == [("dlq", "resolved")]
    with session_scope() as session:
        assert len(session.scalars(select(HealthRun)).all()) == 3


def test_cloudwatch_throttling_is_a_finding_not_a_crash(aws_env: dict[str, str]) -> None:
    """GetMetricData throttled after botocore's retries: `unknown` check + source_unavailable."""
    cloudwatch = aws.client("cloudwatch")
    with Stubber(cloudwatch) as stub:
        for _ in range(3):
            stub.add_client_error("get_metric_data", service_error_code="Throttling", http_status_code=400)
        health = run_schedule("health")
        anomaly = run_schedule("anomaly")
        forecast = run_schedule("forecast")
    assert {c["name"]: c["status"] for c in health["checks"]}["lambda"] == "unknown"
    assert anomaly["unavailable"] == ["cloudwatch:GetMetricData"]
    assert forecast["unavailable"] == ["cloudwatch:GetMetricData"]
    unavailable = [f for f in findings(aws_env) if f["kind"] == "source_unavailable"]
    assert unavailable and all("throttled" in f["summary"] for f in unavailable)


def test_anomaly_run_scores_each_point_once_and_stores_anomalies(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nine quiet hours (the detector learns for its first six) then a spike: one anomaly."""
    monkeypatch.setenv("AIOPS_METRIC_LOOKBACK_SECONDS", str(10 * 3600))
    config.reset()
    start = now() - timedelta(hours=9)
    points = [(start + timedelta(minutes=5 * i), 100.0 + (i % 3)) for i in range(9 * 12 - 1)]
    points.append((start + timedelta(minutes=5 * (9 * 12 - 1)), 5000.0))
    put_metric("documents", "Invocations", points)
    first = run_schedule("anomaly")
    assert first["anomalies"] >= 1 and first["points"] > 0
    with session_scope() as session:
        rows = session.scalars(select(Anomaly)).all()
        assert any(r.series == "documents/invocations" and r.value == 5000.0 for r in rows)
    found = [f for f in findings(aws_env) if f["kind"] == "anomaly"]
    assert any(f["details"]["series"] == "documents/invocations" for f in found)
    again = run_schedule("anomaly")
    assert again["anomalies"] == 0  # the same points are never scored twice


def test_corrupt_detector_state_is_replaced_and_reported(aws_env: dict[str, str]) -> None:
    state = {"detectors": {"documents/invocations": {"kind": "garbage"}}, "last": {}}
    aws.client("s3").put_object(Bucket=bucket(), Key=state_key("anomaly"), Body=json.dumps(state).encode())
    put_metric("documents", "Invocations", [(now() - timedelta(minutes=10), 3.0)])
    result = run_schedule("anomaly")
    assert result["reset"] == ["documents/invocations"]
    assert any(f["kind"] == "state_reset" for f in findings(aws_env))


def test_forecast_run_plans_dry_run_and_stores_the_chart(aws_env: dict[str, str]) -> None:
    start = now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=72)
    put_metric(
        "auth", "Invocations", [(start + timedelta(hours=h), 3600.0 * (1 + (h % 24) / 6)) for h in range(72)]
    )
    put_metric(
        "auth", "Duration", [(start + timedelta(hours=h), 200.0) for h in range(72)], unit="Milliseconds"
    )
    result = run_schedule("forecast")
    assert result["mode"] == "dry-run" and result["applied"] is False and result["series"] == 1
    with session_scope() as session:
        row = session.scalars(select(Forecast)).one()
        assert len(row.series[0]["forecast"]) == 24
        plan = row.plan
    assert plan["actions"] and all(a["resource_id"] == "function:auth:live" for a in plan["actions"])
    assert (store.get_bytes(result["chart_key"]) or b"")[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        aws.client("application-autoscaling").describe_scheduled_actions(ServiceNamespace="lambda")[
            "ScheduledActions"
        ]
        == []
    )


def test_forecast_applies_the_plan_when_enabled(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lotabots import config

    monkeypatch.setenv("AIOPS_SCALING_APPLY", "true")
    config.reset()
    start = now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=48)
    put_metric("documents", "Invocations", [(start + timedelta(hours=h), 7200.0) for h in range(48)])
    put_metric(
        "documents", "Duration", [(start + timedelta(hours=h), 500.0) for h in range(48)], unit="Milliseconds"
    )
    result = run_schedule("forecast")
    assert result["mode"] == "apply" and result["applied"] is True
    actions = aws.client("application-autoscaling").describe_scheduled_actions(ServiceNamespace="lambda")[
        "ScheduledActions"
    ]
    assert actions and actions[0]["ResourceId"] == "function:documents:live"
    assert actions[0]["ScalableTargetAction"] == {"MinCapacity": 2, "MaxCapacity": 2}
