"""The platform's shape, declared once.

Every function, its API routes, the queues and schedules that trigger it and the EventBridge
rules that feed those queues. The CDK app builds the cloud from this module and the local
stack wires the same triggers in one process; a test checks that the synthesized template
agrees with it. EventBridge rules always target a queue (never a function directly) so
every asynchronous path has a DLQ and redelivery.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

FunctionKind = Literal["api", "authorizer", "worker", "migration"]


@dataclass(frozen=True)
class Queue:
    name: str
    env_var: str  # where functions find the queue's URL
    visibility_timeout_s: int = 180
    max_receive_count: int = 5
    description: str = ""


@dataclass(frozen=True)
class QueueTrigger:
    queue: str
    batch_size: int = 10
    max_batching_window_s: int = 0
    # Most concurrent invocations the event-source mapping starts (Lambda's minimum is 2). It bounds
    # what the consumer does downstream (database connections, third-party rate limits) without
    # throttling, which reserved concurrency alone would turn into redeliveries and DLQ entries.
    max_concurrency: int = 2


@dataclass(frozen=True)
class ScheduleTrigger:
    name: str
    expression: str  # EventBridge syntax: "rate(1 minute)", "cron(0 7 * * ? *)"


@dataclass(frozen=True)
class EventRule:
    name: str
    pattern: dict[str, Any]
    queue: str
    description: str = ""


@dataclass(frozen=True)
class Function:
    name: str
    kind: FunctionKind
    description: str
    routes: tuple[str, ...] = ()  # API path prefixes this function serves
    queues: tuple[QueueTrigger, ...] = ()
    schedules: tuple[ScheduleTrigger, ...] = ()
    memory_mb: int = 512
    timeout_s: int = 15
    handler: str = "app.lambda_handler"
    extra_env: dict[str, str] = field(default_factory=dict)
    # Reserved concurrency where something downstream cannot take more (a rate-limited third
    # party, work that must never overlap); None leaves the function in the account's pool.
    reserved_concurrency: int | None = None

    @property
    def code_dir(self) -> str:
        return f"functions/{self.name}"


QUEUES: tuple[Queue, ...] = (
    Queue(
        "document-ingest",
        "DOCUMENT_INGEST_QUEUE_URL",
        visibility_timeout_s=6 * 120,
        description="S3 ObjectCreated for uploaded documents",
    ),
    Queue(
        "gpu-jobs",
        "GPU_JOBS_QUEUE_URL",
        visibility_timeout_s=6 * 60,
        description="GPU job requests (API and EventBridge)",
    ),
    Queue(
        "gpu-results",
        "GPU_RESULTS_QUEUE_URL",
        visibility_timeout_s=6 * 30,
        description="GPU job completions (jobs, Batch, Modal)",
    ),
    Queue(
        "alert-events",
        "ALERT_EVENTS_QUEUE_URL",
        visibility_timeout_s=6 * 30,
        description="Alarm, job-failure and finding events",
    ),
    Queue(
        "alert-notify",
        "NOTIFY_QUEUE_URL",
        visibility_timeout_s=6 * 60,
        description="Notifications to deliver to Slack",
    ),
)

EVENT_RULES: tuple[EventRule, ...] = (
    EventRule(
        "document-ingested-to-embed",
        {"source": ["lotabots.documents"], "detail-type": ["DocumentIngested"]},
        queue="gpu-jobs",
        description="Embed every document that becomes ready",
    ),
    EventRule(
        "gpu-job-results",
        {"source": ["lotabots.gpu"], "detail-type": ["GpuJobCompleted", "GpuJobFailed"]},
        queue="gpu-results",
        description="Results reported by GPU jobs (Modal, Batch, local)",
    ),
    EventRule(
        "batch-job-state",
        {
            "source": ["aws.batch"],
            "detail-type": ["Batch Job State Change"],
            "detail": {"status": ["SUCCEEDED", "FAILED"]},
        },
        queue="gpu-results",
        description="AWS Batch terminal job states",
    ),
    EventRule(
        "alarms-to-alerts",
        {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]},
        queue="alert-events",
        description="CloudWatch alarms fire and resolve alerts",
    ),
    EventRule(
        "failures-to-alerts",
        {
            "source": ["lotabots.jobs", "lotabots.attestation", "lotabots.aiops"],
            "detail-type": ["GpuJobFailed", "AttestationFailed", "AIOpsFinding"],
        },
        queue="alert-events",
        description="Failed jobs, attestation failures and AIOps findings become alerts",
    ),
)

FUNCTIONS: tuple[Function, ...] = (
    Function(
        "authorizer",
        "authorizer",
        "API Gateway REQUEST authorizer (ES256 access tokens)",
        memory_mb=256,
        timeout_s=5,
    ),
    Function(
        "auth",
        "api",
        "Register, login, refresh, logout, users, JWKS",
        routes=("/auth", "/users", "/.well-known"),
        memory_mb=1024,
        timeout_s=10,
    ),
    Function(
        "aiops",
        "api",
        "Health and the AIOps results (clusters, anomalies, forecasts, reports)",
        routes=("/health", "/aiops"),
        memory_mb=256,
        timeout_s=10,
    ),
    Function(
        "api_docs",
        "api",
        "The OpenAPI document and Swagger UI (public)",
        routes=("/openapi.json", "/docs"),
        memory_mb=256,
        timeout_s=10,
    ),
    Function(
        "migrate",
        "migration",
        "Applies Alembic migrations on deploy",
        memory_mb=512,
        timeout_s=300,
        # Two migrations must never run against the database at once.
        reserved_concurrency=1,
    ),
    Function(
        "documents",
        "api",
        "Document metadata, presigned upload/download, search",
        routes=("/documents",),
        memory_mb=512,
        timeout_s=10,
    ),
    Function(
        "document_ingest",
        "worker",
        "Checks, hashes and extracts uploaded documents",
        queues=(QueueTrigger("document-ingest", batch_size=5, max_concurrency=5),),
        memory_mb=1024,
        timeout_s=120,
    ),
    Function("jobs", "api", "GPU job API", routes=("/jobs",), memory_mb=512, timeout_s=10),
    Function(
        "job_dispatch",
        "worker",
        "Submits queued GPU jobs to Modal, AWS Batch or local",
        queues=(QueueTrigger("gpu-jobs", batch_size=10, max_concurrency=5),),
        memory_mb=512,
        timeout_s=60,
    ),
    Function(
        "job_results",
        "worker",
        "Records GPU job results; polls Modal and times out stale jobs",
        queues=(QueueTrigger("gpu-results", batch_size=10, max_concurrency=5),),
        schedules=(ScheduleTrigger("poll-gpu-jobs", "rate(1 minute)"),),
        memory_mb=512,
        timeout_s=30,
    ),
    Function(
        "alerts",
        "api",
        "Alerts, silences, acknowledgements",
        routes=("/alerts", "/silences"),
        memory_mb=512,
        timeout_s=10,
    ),
    Function(
        "alert_ingest",
        "worker",
        "Normalises alarm/job/finding events into alerts",
        queues=(QueueTrigger("alert-events", batch_size=10, max_concurrency=5),),
        memory_mb=512,
        timeout_s=30,
    ),
    Function(
        "alert_flush",
        "worker",
        "Grouping timers: flushes due alert groups to notifications",
        schedules=(ScheduleTrigger("flush-alert-groups", "rate(1 minute)"),),
        memory_mb=512,
        timeout_s=50,
        # One flush at a time: a retried schedule invocation must not race the next minute's run.
        reserved_concurrency=1,
    ),
    Function(
        "alert_notify",
        "worker",
        "Delivers notifications to Slack",
        # Slack allows about one message per second per channel: two deliveries at a time.
        queues=(QueueTrigger("alert-notify", batch_size=5, max_concurrency=2),),
        memory_mb=256,
        timeout_s=60,
        reserved_concurrency=2,
    ),
    # Audit log: its own function (least privilege: the database and a listing of the anchor
    # bucket); verify walks the whole chain, hence the API Gateway maximum and more CPU.
    Function(
        "audit",
        "api",
        "Audit log search and verification against the Object Lock anchors",
        routes=("/audit",),
        memory_mb=1024,
        timeout_s=29,
    ),
    Function(
        "audit_anchor",
        "worker",
        "Verifies the audit chain and anchors its head in the Object Lock bucket",
        schedules=(ScheduleTrigger("anchor-audit-log", "rate(15 minutes)"),),
        memory_mb=1024,
        timeout_s=300,
    ),
    Function(
        "attestations",
        "api",
        "Hardware/model/inference attestations, EAR tokens, policies, GPU pools, models",
        routes=("/attestations", "/attestation-policies", "/gpu-pools", "/models"),
        memory_mb=512,
        timeout_s=15,
    ),
    Function(
        "attestation_schedule",
        "worker",
        "Re-attests every GPU pool whose interval has passed (fresh nonces)",
        schedules=(ScheduleTrigger("reattest-gpu-pools", "rate(5 minutes)"),),
        memory_mb=256,
        timeout_s=60,
    ),
    # AIOps schedules (docs/aiops.md): two functions, not one per schedule (each function costs the
    # stack a dozen CloudFormation resources); the handler runs what the schedule's rule names.
    # A run's learned state is written conditionally, so an overlapping run only loses its write.
    Function(
        "aiops_monitor",
        "worker",
        "AIOps: health checks (every minute), log mining and anomaly detection (every 5 minutes)",
        schedules=(
            ScheduleTrigger("aiops-health", "rate(1 minute)"),
            ScheduleTrigger("aiops-logs", "rate(5 minutes)"),
            ScheduleTrigger("aiops-anomaly", "rate(5 minutes)"),
        ),
        memory_mb=1024,
        timeout_s=240,
        # One run per schedule at a time.
        reserved_concurrency=3,
    ),
    Function(
        "aiops_planner",
        "worker",
        "AIOps: 24 h forecasts and the scaling plan (hourly), the daily report to S3 and Slack",
        schedules=(
            ScheduleTrigger("aiops-forecast", "rate(1 hour)"),
            ScheduleTrigger("aiops-report", "cron(0 7 * * ? *)"),
        ),
        memory_mb=1024,
        timeout_s=300,
        reserved_concurrency=2,
    ),
)


def load_function_module(name: str, root: Path, prefix: str) -> Any:
    """Import `functions/<name>/app.py` under `root` as module `<prefix><name>`, once: each
    function's handler module is its own, as in Lambda (the local stack, the OpenAPI build)."""
    module_name = f"{prefix}{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = root / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def function(name: str) -> Function:
    for fn in FUNCTIONS:
        if fn.name == name:
            return fn
    raise KeyError(name)


def queue(name: str) -> Queue:
    for q in QUEUES:
        if q.name == name:
            return q
    raise KeyError(name)


def api_functions() -> tuple[Function, ...]:
    return tuple(fn for fn in FUNCTIONS if fn.kind == "api")


def function_for_path(path: str) -> Function | None:
    """The API function serving `path` (longest matching prefix)."""
    best: tuple[int, Function] | None = None
    for fn in api_functions():
        for prefix in fn.routes:
            if (path == prefix or path.startswith(prefix.rstrip("/") + "/")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), fn)
    return best[1] if best else None
