"""The local stack's CloudWatch: every invocation's output and metrics into moto, as Lambda does.

`runtime.INVOCATION_LISTENERS` hands each `InvocationRecord` to `Telemetry.record`, which only
queues it; a background thread ships batches to the moto server:

- CloudWatch Logs: the function's output lines as events of log group `/aws/lambda/<function>`
  (created on demand), one stream per day as Lambda names them (`YYYY/MM/DD/[$LATEST]local`);
- CloudWatch metrics: `AWS/Lambda` Invocations, Errors, Duration and Throttles (0 locally) with
  the `FunctionName` dimension, and every EMF blob found in the output (Powertools Metrics) under
  its own namespace and dimensions.

So the AIOps functions read the same APIs locally as in AWS. A failure to ship is logged and
dropped (telemetry must never slow or fail an invocation).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from devstack.runtime import InvocationRecord

log = logging.getLogger("devstack.telemetry")

BATCH_MAX = 200
FLUSH_S = 1.0
MAX_EVENT_BYTES = 256 * 1024 - 26  # CloudWatch Logs: 256 KB per event including overhead
METRICS_PER_CALL = 500  # PutMetricData limit (1,000; half leaves room)


def emf_metrics(line: str) -> list[dict[str, Any]]:
    """PutMetricData entries (with their namespace) of one EMF blob; [] for any other line."""
    if '"_aws"' not in line:
        return []
    try:
        blob = json.loads(line)
    except ValueError:
        return []
    meta = blob.get("_aws") if isinstance(blob, dict) else None
    if not isinstance(meta, dict):
        return []
    at = datetime.fromtimestamp(float(meta.get("Timestamp", time.time() * 1000)) / 1000, UTC)
    entries = []
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = directive.get("Namespace")
        dimension_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics") or []:
            name = metric.get("Name")
            values = blob.get(name)
            values = values if isinstance(values, list) else [values]
            for dimensions in dimension_sets:
                dims = [{"Name": d, "Value": str(blob[d])} for d in dimensions if d in blob]
                for value in values:
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        entries.append(
                            {
                                "Namespace": namespace,
                                "MetricName": name,
                                "Dimensions": dims,
                                "Timestamp": at,
                                "Value": float(value),
                                "Unit": metric.get("Unit", "None"),
                            }
                        )
    return entries


def lambda_metrics(record: InvocationRecord) -> list[dict[str, Any]]:
    at = datetime.fromtimestamp(record.started_at, UTC)
    dims = [{"Name": "FunctionName", "Value": record.function}]

    def metric(name: str, value: float, unit: str) -> dict[str, Any]:
        return {
            "Namespace": "AWS/Lambda",
            "MetricName": name,
            "Dimensions": dims,
            "Timestamp": at,
            "Value": value,
            "Unit": unit,
        }

    return [
        metric("Invocations", 1, "Count"),
        metric("Errors", 1 if record.error else 0, "Count"),
        metric("Throttles", 0, "Count"),
        metric("Duration", round(record.duration_ms, 3), "Milliseconds"),
    ]


class Telemetry:
    """Register with `start()`; `stop()` flushes what is queued and unregisters."""

    def __init__(self, logs: Any, cloudwatch: Any) -> None:
        self.logs = logs
        self.cloudwatch = cloudwatch
        self._queue: queue.Queue[InvocationRecord | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._streams: set[tuple[str, str]] = set()
        self.shipped = 0

    def start(self) -> None:
        from devstack import runtime

        runtime.INVOCATION_LISTENERS.append(self.record)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        from devstack import runtime

        with contextlib.suppress(ValueError):
            runtime.INVOCATION_LISTENERS.remove(self.record)
        self._queue.put(None)
        self._thread.join(timeout_s)

    def record(self, record: InvocationRecord) -> None:
        self._queue.put(record)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every record queued so far is shipped (tests)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._queue.task_done()
                return
            batch = [first]
            deadline = time.monotonic() + FLUSH_S
            stop = False
            while len(batch) < BATCH_MAX:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    self._queue.task_done()
                    break
                batch.append(item)
            try:
                self.ship(batch)
            except Exception:
                log.exception("shipping %d invocation records to CloudWatch failed", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                return

    def ship(self, records: Iterable[InvocationRecord]) -> None:
        by_stream: dict[tuple[str, str], list[dict[str, Any]]] = {}
        metrics: list[dict[str, Any]] = []
        for record in records:
            at_ms = int(record.started_at * 1000)
            group = f"/aws/lambda/{record.function}"
            stream = f"{datetime.fromtimestamp(record.started_at, UTC):%Y/%m/%d}/[$LATEST]local"
            events = by_stream.setdefault((group, stream), [])
            for offset, line in enumerate(record.output):
                if line.strip():
                    events.append({"timestamp": at_ms + offset // 1000, "message": line[:MAX_EVENT_BYTES]})
                metrics += emf_metrics(line)
            metrics += lambda_metrics(record)
        for (group, stream), events in by_stream.items():
            if events:
                self._put_logs(group, stream, events)
        self._put_metrics(metrics)
        self.shipped += len(by_stream)

    def _put_logs(self, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        if (group, stream) not in self._streams:
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=group)
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
            self._streams.add((group, stream))
        events.sort(key=lambda e: e["timestamp"])
        for i in range(0, len(events), 1000):
            self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i : i + 1000])

    def _put_metrics(self, metrics: list[dict[str, Any]]) -> None:
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for entry in metrics:
            namespace = entry.pop("Namespace")
            if namespace:
                by_namespace.setdefault(namespace, []).append(entry)
        for namespace, data in by_namespace.items():
            for i in range(0, len(data), METRICS_PER_CALL):
                self.cloudwatch.put_metric_data(
                    Namespace=namespace, MetricData=data[i : i + METRICS_PER_CALL]
                )
