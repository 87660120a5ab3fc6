"""The local stack's telemetry: invocation records become CloudWatch Logs events and AWS/Lambda
and EMF metrics in moto, and the AIOps readers get back exactly what was shipped."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack import runtime
from devstack.runtime import InvocationRecord
from devstack.telemetry import Telemetry, emf_metrics
from lotabots import aws
from lotabots.aiops import sources


def _record(function: str, error: bool, lines: tuple[str, ...], started_at: float) -> InvocationRecord:
    return InvocationRecord(function, "req-1", started_at, 12.5, error, lines)


def test_emf_blob_becomes_put_metric_data_entries() -> None:
    blob = {
        "_aws": {
            "Timestamp": 1_700_000_000_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "LotaBots",
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": "Logins", "Unit": "Count"}],
                }
            ],
        },
        "service": "auth",
        "Logins": [1.0, 2.0],
    }
    entries = emf_metrics(json.dumps(blob))
    assert [(e["Namespace"], e["MetricName"], e["Value"]) for e in entries] == [
        ("LotaBots", "Logins", 1.0),
        ("LotaBots", "Logins", 2.0),
    ]
    assert entries[0]["Dimensions"] == [{"Name": "service", "Value": "auth"}]
    assert emf_metrics('{"level": "INFO", "message": "no metrics"}') == []
    assert emf_metrics('{"_aws": broken') == []


@pytest.fixture
def telemetry(aws_env: dict[str, str]) -> Iterator[Telemetry]:
    shipper = Telemetry(aws.client("logs"), aws.client("cloudwatch"))
    shipper.start()
    sources.reset()
    yield shipper
    shipper.stop()


def test_records_reach_filter_log_events_and_get_metric_data(telemetry: Telemetry) -> None:
    """What the listener ships is what the AIOps readers (FilterLogEvents, GetMetricData) return."""
    assert telemetry.record in runtime.INVOCATION_LISTENERS
    now = time.time() - 90
    lines = (json.dumps({"level": "ERROR", "message": "boom"}), "plain line")
    for listener in list(runtime.INVOCATION_LISTENERS):
        listener(_record("documents", True, lines, now))
        listener(_record("documents", False, (), now + 1))
    telemetry.flush()
    events = list(
        sources.log_events("/aws/lambda/documents", int(now * 1000) - 1, int(time.time() * 1000), 100)
    )
    assert [e.message for e in events] == list(lines)
    start = datetime.fromtimestamp(now, UTC) - timedelta(minutes=5)
    queries = [
        sources.lambda_query("i", "documents", "Invocations", "Sum"),
        sources.lambda_query("e", "documents", "Errors", "Sum"),
        sources.lambda_query("d", "documents", "Duration", "Average"),
    ]
    series: dict[str, Any] = sources.metric_series(
        queries, start, datetime.now(UTC) + timedelta(minutes=1), 600
    )
    assert sum(v for _, v in series["i"]) == 2
    assert sum(v for _, v in series["e"]) == 1
    assert [v for _, v in series["d"]] == [12.5]


def test_stop_unregisters_the_listener(aws_env: dict[str, str]) -> None:
    shipper = Telemetry(aws.client("logs"), aws.client("cloudwatch"))
    shipper.start()
    shipper.stop()
    assert shipper.record not in runtime.INVOCATION_LISTENERS
