"""Where AIOps reads the platform: CloudWatch metrics and logs, SQS attributes, the inventory.

Every read goes through `lotabots.aws` clients (botocore `standard` retries with back-off, so a
throttled call is retried before it fails). A call that still fails raises `SourceUnavailable`;
the scheduled runs turn that into a `source_unavailable` finding and carry on with what they
could read, never crash on it.

The inventory maps topology names to what the stack deployed (physical function names, log
groups, the queue name prefix): an SSM parameter written by the CDK app; without one (the local
stack) the names are the topology's, the log groups `/aws/lambda/<name>` and the queues unprefixed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from lotabots import aws, config, topology
from lotabots.config import AIOpsSettings

# GetMetricData takes at most 500 queries per call.
MAX_QUERIES = 500
THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "LimitExceeded"}
)


class SourceUnavailable(RuntimeError):
    """A source failed after botocore's retries (throttled, unavailable, denied)."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


def _unavailable(source: str, exc: Exception) -> SourceUnavailable:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", type(exc).__name__))
    return SourceUnavailable(source, "throttled" if code in THROTTLING else code)


def _errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


# --- inventory -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    functions: dict[str, str]  # topology name → physical function name
    log_groups: dict[str, str]  # topology name → log group
    queue_prefix: str = ""
    stage_functions: tuple[str, ...] = field(default_factory=tuple)
    api_url: str | None = None  # the deployed API's base URL (the health probe's target)

    def queue_name(self, name: str) -> str:
        return f"{self.queue_prefix}{name}"


def _local_inventory() -> Inventory:
    names = [fn.name for fn in topology.FUNCTIONS]
    return Inventory(
        functions={n: n for n in names},
        log_groups={n: f"/aws/lambda/{n}" for n in names},
        stage_functions=tuple(names),
    )


@cache
def inventory() -> Inventory:
    name = config.load(AIOpsSettings).inventory_parameter
    if not name:
        return _local_inventory()
    from aws_lambda_powertools.utilities import parameters

    data: Any = parameters.get_parameter(name, transform="json", max_age=300)
    functions = data.get("functions", {}) if isinstance(data, dict) else {}
    return Inventory(
        functions={k: str(v["function_name"]) for k, v in functions.items()},
        log_groups={k: str(v["log_group"]) for k, v in functions.items()},
        queue_prefix=str(data.get("queue_prefix", "")),
        stage_functions=tuple(functions),
        api_url=str(data["api_url"]) if isinstance(data, dict) and data.get("api_url") else None,
    )


# --- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricQuery:
    id: str  # [a-z][a-zA-Z0-9_]*, unique in a call
    namespace: str
    metric: str
    dimensions: dict[str, str]
    stat: str  # Sum, Average, Maximum, p99, ...


def lambda_query(qid: str, function: str, metric: str, stat: str) -> MetricQuery:
    return MetricQuery(qid, "AWS/Lambda", metric, {"FunctionName": inventory().functions[function]}, stat)


def sqs_query(qid: str, queue: str, metric: str, stat: str = "Maximum") -> MetricQuery:
    return MetricQuery(qid, "AWS/SQS", metric, {"QueueName": inventory().queue_name(queue)}, stat)


Series = list[tuple[float, float]]  # (epoch seconds, value), ascending


def metric_series(
    queries: list[MetricQuery], start: datetime, end: datetime, period_s: int
) -> dict[str, Series]:
    """Each query's datapoints in [start, end), ascending; periods without data are absent."""
    result: dict[str, Series] = {q.id: [] for q in queries}
    client = aws.client("cloudwatch")
    for offset in range(0, len(queries), MAX_QUERIES):
        chunk = queries[offset : offset + MAX_QUERIES]
        request: dict[str, Any] = {
            "MetricDataQueries": [
                {
                    "Id": q.id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": q.namespace,
                            "MetricName": q.metric,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in q.dimensions.items()],
                        },
                        "Period": period_s,
                        "Stat": q.stat,
                    },
                    "ReturnData": True,
                }
                for q in chunk
            ],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        try:
            while True:
                page = client.get_metric_data(**request)
                for item in page.get("MetricDataResults", []):
                    points = result.setdefault(item["Id"], [])
                    for at, value in zip(item.get("Timestamps", []), item.get("Values", []), strict=False):
                        if value is not None and math.isfinite(float(value)):
                            points.append((_epoch(at), float(value)))
                token = page.get("NextToken")
                if not token:
                    break
                request["NextToken"] = token
        except _errors() as exc:
            raise _unavailable("cloudwatch:GetMetricData", exc) from None
    for points in result.values():
        points.sort()
    return result


def _epoch(at: Any) -> float:
    if isinstance(at, datetime):
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    return float(at)


def window(seconds: float, now: datetime | None = None, period_s: int = 60) -> tuple[datetime, datetime]:
    """[now - seconds, now) with `now` rounded down to the period (complete periods only)."""
    now = now or datetime.now(UTC)
    end = datetime.fromtimestamp(math.floor(now.timestamp() / period_s) * period_s, UTC)
    return end - timedelta(seconds=seconds), end


# --- logs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEvent:
    timestamp_ms: int
    message: str
    event_id: str


def log_events(group: str, start_ms: int, end_ms: int, limit: int) -> Iterator[LogEvent]:
    """Events of the log group in [start_ms, end_ms), at most `limit`; none if the group does not exist."""
    client = aws.client("logs")
    request: dict[str, Any] = {
        "logGroupName": group,
        "startTime": start_ms,
        "endTime": end_ms,
        "interleaved": True,
        "limit": min(10_000, limit),
    }
    count = 0
    while True:
        try:
            page = client.filter_log_events(**request)
        except _errors() as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == "ResourceNotFoundException":
                return
            raise _unavailable("logs:FilterLogEvents", exc) from None
        for event in page.get("events", []):
            if count >= limit:
                return
            count += 1
            yield LogEvent(
                int(event["timestamp"]), str(event.get("message", "")), str(event.get("eventId", ""))
            )
        token = page.get("nextToken")
        if not token or token == request.get("nextToken"):
            return
        request["nextToken"] = token


# --- queues ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    visible: int
    in_flight: int
    dlq_visible: int


def queue_depths() -> list[QueueDepth]:
    """Visible and in-flight messages of every topology queue and its DLQ (SQS attributes)."""
    client = aws.client("sqs")
    inv = inventory()
    depths = []
    try:
        for queue in topology.QUEUES:
            attributes = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            main_url = client.get_queue_url(QueueName=inv.queue_name(queue.name))["QueueUrl"]
            dlq_url = client.get_queue_url(QueueName=inv.queue_name(f"{queue.name}-dlq"))["QueueUrl"]
            main = client.get_queue_attributes(QueueUrl=main_url, AttributeNames=attributes)["Attributes"]
            dlq = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=attributes[:1])["Attributes"]
            depths.append(
                QueueDepth(
                    queue.name,
                    int(main.get("ApproximateNumberOfMessages", 0)),
                    int(main.get("ApproximateNumberOfMessagesNotVisible", 0)),
                    int(dlq.get("ApproximateNumberOfMessages", 0)),
                )
            )
    except _errors() as exc:
        raise _unavailable("sqs:GetQueueAttributes", exc) from None
    return depths


def reset() -> None:
    inventory.cache_clear()


def to_json(value: Any) -> str:
    return json.dumps(value, default=str)
