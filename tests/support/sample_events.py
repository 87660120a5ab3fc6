"""The sample events in events/: which function each one is for, recognised by its shape.

An event is for a function when it is what that function's trigger delivers:
- an API Gateway REST proxy event (`httpMethod`, `requestContext`): the API function serving
  its path, and the `access.ROUTE_ROLES` route it matches;
- a REQUEST authorizer event (`type: REQUEST`, `methodArn`; it also has `httpMethod`): the authorizer;
- an SQS batch (`Records[*].eventSource == "aws:sqs"`): the consumer of the queue its
  `eventSourceARN` names (`<queue>` or `lotabots-<stage>-<queue>`);
- an EventBridge "Scheduled Event": the function owning the schedule its rule ARN names;
- `{}`: the migration function (the deploy-time CDK Trigger invokes it without a payload).
Anything else (a bare EventBridge event, a notification body) is no trigger's event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lotabots import access, topology

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
NOT_EVENTS = frozenset({"env.json"})  # SAM's environment overrides


@dataclass(frozen=True)
class SampleEvent:
    path: Path
    kind: str  # api | authorizer | sqs | schedule | invoke | other
    function: str | None
    route: tuple[str, str] | None = None
    trigger: str | None = None  # the queue or schedule name

    @property
    def name(self) -> str:
        return self.path.name

    def load(self) -> dict[str, Any]:
        return dict(json.loads(self.path.read_text(encoding="utf-8")))


def _queue_consumer(queue_name: str) -> str | None:
    for fn in topology.FUNCTIONS:
        if any(trigger.queue == queue_name for trigger in fn.queues):
            return fn.name
    return None


def _queue_named_by(arn: str) -> str | None:
    resource = arn.rsplit(":", 1)[-1]
    for queue in topology.QUEUES:
        if resource == queue.name or resource.endswith(f"-{queue.name}"):
            return queue.name
    return None


def _schedule_owner(rule_arn: str) -> tuple[str, str] | None:
    rule = rule_arn.rsplit("/", 1)[-1]
    for fn in topology.FUNCTIONS:
        for schedule in fn.schedules:
            if rule == schedule.name or rule.endswith(f"-{schedule.name}"):
                return fn.name, schedule.name
    return None


def classify(path: Path) -> SampleEvent:
    event = json.loads(path.read_text(encoding="utf-8"))
    if event == {}:
        (migration,) = [fn.name for fn in topology.FUNCTIONS if fn.kind == "migration"]
        return SampleEvent(path, "invoke", migration)
    if not isinstance(event, dict):
        return SampleEvent(path, "other", None)
    if event.get("type") == "REQUEST" and "methodArn" in event:
        (authorizer,) = [fn.name for fn in topology.FUNCTIONS if fn.kind == "authorizer"]
        return SampleEvent(path, "authorizer", authorizer)
    if "httpMethod" in event and "requestContext" in event:
        method, request_path = str(event["httpMethod"]).upper(), str(event.get("path") or "/")
        fn = topology.function_for_path(request_path)
        rule = access.rule_for(method, request_path)
        return SampleEvent(
            path, "api", fn.name if fn else None, (rule.method, rule.template) if rule else None
        )
    records = event.get("Records")
    if isinstance(records, list) and records and all(r.get("eventSource") == "aws:sqs" for r in records):
        queues = {_queue_named_by(str(r.get("eventSourceARN", ""))) for r in records}
        if len(queues) == 1 and None not in queues:
            (queue,) = queues
            assert queue is not None
            return SampleEvent(path, "sqs", _queue_consumer(queue), trigger=queue)
        return SampleEvent(path, "other", None)
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        owners = {_schedule_owner(str(arn)) for arn in event.get("resources", [])}
        if len(owners) == 1 and None not in owners:
            (owner,) = owners
            assert owner is not None
            return SampleEvent(path, "schedule", owner[0], trigger=owner[1])
    return SampleEvent(path, "other", None)


def sample_events() -> list[SampleEvent]:
    return [classify(p) for p in sorted(EVENTS_DIR.glob("*.json")) if p.name not in NOT_EVENTS]


def events_for(function_name: str) -> list[SampleEvent]:
    return [e for e in sample_events() if e.function == function_name]


def expected_kinds(fn: topology.Function) -> set[tuple[str, str | None]]:
    """(kind, trigger) pairs a function must have a sample event for."""
    if fn.kind == "api":
        return {("api", None)}
    if fn.kind == "authorizer":
        return {("authorizer", None)}
    if fn.kind == "migration":
        return {("invoke", None)}
    return {("sqs", t.queue) for t in fn.queues} | {("schedule", s.name) for s in fn.schedules}
