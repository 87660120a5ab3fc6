"""The sample events in events/ have the shape of what really invokes each function.

A worker triggered by a queue receives an SQS batch whose records wrap what the queue carries
(the EventBridge event a rule put there, an S3 notification, a dispatch request); a scheduled
worker receives the schedule's "Scheduled Event". Bare EventBridge events are kept only as the
bodies of those batches (what `put-events` sends and a rule delivers), never as something to
invoke a worker with: each one must be wrapped, unchanged, by an SQS sample of the queue its
rule targets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lotabots import topology

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES = {path.name: json.loads(path.read_text()) for path in sorted(EVENTS.glob("*.json"))}


def _kind(event: dict[str, Any]) -> str:
    if event == {}:
        return "invoke"  # the deploy-time CDK Trigger invokes the migration function without a payload
    if "Records" in event:
        return "sqs"
    if "httpMethod" in event:
        return "api"
    if event.get("detail-type") == "Scheduled Event":
        return "schedule"
    if "detail-type" in event:
        return "eventbridge"
    if "Parameters" in event:
        return "env"
    return "unknown"


def _queue_of(record: dict[str, Any]) -> str:
    return str(record["eventSourceARN"]).rsplit(":", 1)[-1]


def _rule_queues(event: dict[str, Any]) -> set[str]:
    """Queues whose EventBridge rules match `event` (source, detail-type and detail.status)."""
    found = set()
    for rule in topology.EVENT_RULES:
        pattern = rule.pattern
        if event["source"] not in pattern["source"] or event["detail-type"] not in pattern["detail-type"]:
            continue
        statuses = pattern.get("detail", {}).get("status")
        if statuses and event["detail"].get("status") not in statuses:
            continue
        found.add(rule.queue)
    return found


def test_every_sample_has_a_known_shape() -> None:
    assert {name: _kind(event) for name, event in SAMPLES.items() if _kind(event) == "unknown"} == {}


@pytest.mark.parametrize("name", [n for n, e in SAMPLES.items() if _kind(e) == "sqs"])
def test_sqs_samples_are_lambda_sqs_batches_from_a_platform_queue(name: str) -> None:
    queues = {q.name for q in topology.QUEUES}
    for record in SAMPLES[name]["Records"]:
        assert record["eventSource"] == "aws:sqs"
        assert _queue_of(record) in queues, f"{name}: {record['eventSourceARN']} is no topology queue"
        assert isinstance(record["body"], str)  # SQS bodies are strings, the event is JSON inside
        assert int(record["attributes"]["ApproximateReceiveCount"]) >= 1
        body = json.loads(record["body"]) if record["body"].startswith("{") else None
        if isinstance(body, dict) and "detail-type" in body:
            assert _queue_of(record) in _rule_queues(body), (
                f"{name}: no rule sends {body['detail-type']} from {body['source']} to {_queue_of(record)}"
            )


def test_every_queue_trigger_and_schedule_has_a_sample() -> None:
    sqs_queues = {_queue_of(r) for e in SAMPLES.values() if _kind(e) == "sqs" for r in e["Records"]}
    schedule_rules = {
        e["resources"][0].rsplit("/", 1)[-1] for e in SAMPLES.values() if _kind(e) == "schedule"
    }
    for fn in topology.FUNCTIONS:
        for trigger in fn.queues:
            assert trigger.queue in sqs_queues, f"{fn.name}: no SQS sample for {trigger.queue}"
        for schedule in fn.schedules:
            assert schedule.name in schedule_rules, f"{fn.name}: no sample for schedule {schedule.name}"


@pytest.mark.parametrize("name", [n for n, e in SAMPLES.items() if _kind(e) == "eventbridge"])
def test_bare_eventbridge_samples_are_wrapped_unchanged_for_their_queue(name: str) -> None:
    event = SAMPLES[name]
    wrapped_in = {
        _queue_of(record)
        for sample in SAMPLES.values()
        if _kind(sample) == "sqs"
        for record in sample["Records"]
        if record["body"].startswith("{") and json.loads(record["body"]) == event
    }
    assert wrapped_in, f"{name} is not the body of any SQS sample: wrap it for the queue its rule targets"
    assert wrapped_in <= _rule_queues(event)
