"""The scheduled AIOps functions on a day of data: time and peak memory of one run each.

A day of synthetic platform telemetry in moto (in this process): for each of ten functions, 1,440
Powertools log lines in hourly batches (a dozen message shapes with changing ids, a few errors) and
five-minute Invocations, Errors and Duration points. Then one run of the logs, anomaly, forecast
and report schedules, each through its function's real handler with its sample event, reading
the whole day (lookbacks of 24 h). The times include moto answering in-process, which is slower
than CloudWatch's own service time but runs on the same CPU as the function here.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import environment

FUNCTIONS = (
    "auth",
    "documents",
    "jobs",
    "alerts",
    "attestations",
    "document_ingest",
    "job_dispatch",
    "job_results",
    "alert_ingest",
    "alert_notify",
)
SHAPES = (
    ("INFO", "document {id} stored in {n} ms"),
    ("INFO", "job {id} queued for backend {backend}"),
    ("INFO", "user {id} signed in from {ip}"),
    ("INFO", "alert group {id} flushed with {n} alerts"),
    ("WARNING", "retrying job {id} in {n} s"),
    ("INFO", "request {id} served in {n} ms"),
    ("INFO", "notification {id} delivered to channel {channel}"),
    ("WARNING", "slow query on {table} took {n} ms"),
    ("INFO", "cache miss for key {id}"),
    ("ERROR", "backend {backend} unavailable after {n} s"),
    ("INFO", "embedding {id} written with {n} vectors"),
    ("ERROR", "document {id} rejected: {reason}"),
)


def _line(rng: random.Random) -> str:
    level, shape = SHAPES[min(len(SHAPES) - 1, int(rng.expovariate(0.35)))]
    message = shape.format(
        id=f"{rng.getrandbits(64):016x}",
        n=rng.randint(1, 5000),
        backend=rng.choice(("modal", "batch", "local")),
        ip=f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        channel=rng.choice(("#alerts", "#ops")),
        table=rng.choice(("documents", "jobs", "alerts")),
        reason=rng.choice(("size over the limit", "type not accepted")),
    )
    return json.dumps({"level": level, "message": message, "service": "bench"})


def _seed_day(now: datetime) -> int:
    from tests.support.aiops import put_logs, put_metric

    rng = random.Random(11)
    start = now - timedelta(days=1)
    lines = 0
    for function in FUNCTIONS:
        day = [_line(rng) for _ in range(1440)]
        # One batch an hour, the first a few minutes inside the runs' 24-hour lookback.
        base_ms = int((start + timedelta(minutes=10)).timestamp() * 1000)
        for hour in range(24):
            put_logs(function, day[hour * 60 : (hour + 1) * 60], at_ms=base_ms + hour * 3_600_000)
        lines += len(day)
        points = [start + timedelta(minutes=5 * i) for i in range(288)]
        daily = [1.5 + math.sin(2 * math.pi * i / 288) for i in range(288)]
        invocations = [(t, 300 * d + rng.gauss(0, 10)) for t, d in zip(points, daily, strict=True)]
        put_metric(function, "Invocations", invocations)
        put_metric(function, "Errors", [(t, float(rng.random() < 0.05)) for t in points])
        put_metric(
            function,
            "Duration",
            [(t, 120 + rng.gauss(0, 15)) for t in points],
            unit="Milliseconds",
        )
    return lines


def _measure(work: Callable[[], dict[str, Any]]) -> tuple[float, float, dict[str, Any]]:
    tracemalloc.start()
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, result


def rows() -> list[str]:
    tmp = Path(tempfile.mkdtemp(prefix="lotabots-bench-aiops-"))
    env = environment.in_process(
        tmp / "bench.db",
        AIOPS_LOG_LOOKBACK_SECONDS="86400",
        AIOPS_METRIC_LOOKBACK_SECONDS="86400",
        AIOPS_FORECAST_HISTORY_HOURS="24",
    )
    saved = environment.apply(env)
    saved.setdefault("SLACK_BOT_TOKEN", os.environ.pop("SLACK_BOT_TOKEN", None))  # the report is logged
    from moto import mock_aws

    from devstack.provision import provision
    from lotabots import aws, config
    from lotabots.aiops import sources
    from lotabots.db import engine as db_engine
    from lotabots.db import migrate
    from tests.support.aiops import run_schedule

    config.reset()
    aws.reset()
    db_engine.reset_engine()
    sources.reset()
    out = []
    try:
        with mock_aws():
            migrate.upgrade()
            for key, value in provision().items():
                os.environ[key] = value
            config.reset()
            aws.reset()
            lines = _seed_day(datetime.now(UTC))
            for schedule in ("logs", "anomaly", "forecast", "report"):

                def one_run(name: str = schedule) -> dict[str, Any]:
                    return run_schedule(name)

                seconds, peak, result = _measure(one_run)
                out.append((schedule, seconds, peak, result))
    finally:
        environment.restore(saved)
        config.reset()
        aws.reset()
        db_engine.reset_engine()
        sources.reset()
    table = [
        "### The scheduled functions on a day of data (moto, in-process)\n",
        f"One run each, through the real handler, over a synthetic day: {len(FUNCTIONS)} functions, "
        f"{lines:,} log lines and 288 five-minute points of Invocations, Errors and Duration per "
        "function (bench/aiops_runs.py). Times include moto answering in the same process.\n",
        "| schedule | seconds | peak MiB (tracemalloc) | what it did |",
        "|---|---|---|---|",
    ]
    for schedule, seconds, peak, result in out:
        keys = ("lines", "templates", "points", "anomalies", "series", "actions", "delivered", "logged")
        did = ", ".join(f"{k} {result[k]}" for k in keys if k in result)
        table.append(f"| {schedule} | {seconds:.2f} | {peak:.1f} | {did} |")
    table.append("")
    return table
