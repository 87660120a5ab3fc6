"""Helpers for the AIOps tests: feed moto's CloudWatch Logs and metrics, read the findings that
reached the alert-events queue, run a schedule function through its real handler."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lotabots import aws, config
from lotabots.config import AIOpsSettings
from tests.support.api import FakeLambdaContext, load_function

EVENTS = Path(__file__).resolve().parents[2] / "events"


def put_logs(function: str, lines: list[str], at_ms: int | None = None) -> None:
    logs = aws.client("logs")
    group = f"/aws/lambda/{function}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName="s")
    base = at_ms or int(time.time() * 1000) - 5000
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": base + i, "message": line} for i, line in enumerate(lines)],
    )


def powertools_line(level: str, message: str, **extra: Any) -> str:
    return json.dumps({"level": level, "message": message, "service": "t", **extra})


def put_metric(function: str, metric: str, points: list[tuple[datetime, float]], unit: str = "Count") -> None:
    cloudwatch = aws.client("cloudwatch")
    data = [
        {
            "MetricName": metric,
            "Dimensions": [{"Name": "FunctionName", "Value": function}],
            "Timestamp": at,
            "Value": value,
            "Unit": unit,
        }
        for at, value in points
    ]
    for i in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[i : i + 500])


def findings(env: dict[str, str]) -> list[dict[str, Any]]:
    """Every AIOpsFinding the bus routed to the alert-events queue (drained)."""
    sqs = aws.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=env["ALERT_EVENTS_QUEUE_URL"], MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            event = json.loads(message["Body"])
            if event.get("detail-type") == "AIOpsFinding":
                found.append(event["detail"])
            sqs.delete_message(QueueUrl=env["ALERT_EVENTS_QUEUE_URL"], ReceiptHandle=message["ReceiptHandle"])


def state_key(name: str) -> str:
    return f"{config.load(AIOpsSettings).prefix}state/{name}.json"


def bucket() -> str:
    return config.load(AIOpsSettings).bucket


OWNERS = {"health": "aiops_monitor", "logs": "aiops_monitor", "anomaly": "aiops_monitor"}


def run_schedule(schedule: str) -> dict[str, Any]:
    """One AIOps schedule (`health`, `logs`, `anomaly`, `forecast`, `report`) through its
    function's real handler with its sample event (events/aiops_<schedule>_schedule.json)."""
    event = json.loads((EVENTS / f"aiops_{schedule}_schedule.json").read_text())
    function = OWNERS.get(schedule, "aiops_planner")
    result: dict[str, Any] = load_function(function).lambda_handler(event, FakeLambdaContext())
    return result


def now() -> datetime:
    return datetime.now(UTC)
