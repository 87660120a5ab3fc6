"""Alerting figures: alerts ingested per second, end-to-end latency from event to the Slack
mock beyond the configured group_wait, and notifications per alert flood — each next to a
baseline measured in the same run.

Set-up (in a child interpreter, so nothing leaks into other sections): SQLite in a temporary
directory, SQS in moto (in-process), the mock Slack Web API from `devstack/slack_mock.py`
on 127.0.0.1, the default routing config with group_wait forced to GROUP_WAIT_S.

- Ingest: `lotabots.alerts.service.ingest` (dedup, merge, routing, groups, members) on batches
  of distinct alerts; baseline: a bare executemany INSERT of the same rows into `alerts`.
- Latency: ingest → wait group_wait → `flush_due` (claim, notification, SQS send) → receive →
  `alert_notify` handler → the mock records the post; reported beyond group_wait. Baseline: a
  bare `WebClient.chat_postMessage` to the same mock. In AWS the flush runs every minute, which
  adds up to 60 s on top of this.
- Flood: 10,000 alerts in one group → notifications and Slack posts after group_wait, and after
  a further group_interval with no change (Alertmanager: one message per group per interval).
Run alone with `python -m bench alerts`.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INGEST_BATCH = int(os.environ.get("BENCH_ALERT_BATCH", "10000"))
INGEST_ROUNDS = int(os.environ.get("BENCH_ALERT_ROUNDS", "3"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_ALERT_LATENCY_SAMPLES", "20"))
FLOOD = 10_000
GROUP_WAIT_S = 0.5


# --- child side -------------------------------------------------------------------------------


def _labels(prefix: str, n: int) -> list[dict[str, str]]:
    return [{"alertname": prefix, "source": "bench", "instance": f"i-{i:06d}"} for i in range(n)]


def _ingest_figures() -> dict[str, Any]:
    from sqlalchemy import insert

    from lotabots.alerts import service
    from lotabots.alerts.engine import normalise_posted
    from lotabots.alerts.models import Alert
    from lotabots.db import new_id, session_scope, utcnow

    service_s: list[float] = []
    update_s: list[float] = []
    baseline_s: list[float] = []
    for rnd in range(INGEST_ROUNDS):
        now = utcnow()
        alerts = [
            normalise_posted(labels, {"summary": "bench"}, None, None, now=now, resolve_timeout=300)
            for labels in _labels(f"Ingest{rnd}", INGEST_BATCH)
        ]
        started = time.perf_counter()
        with session_scope() as session:
            service.ingest(session, alerts, now=now)
        service_s.append(time.perf_counter() - started)
        # The same batch again: every alert is a duplicate (dedup + merge path).
        again = [
            normalise_posted(a.labels, a.annotations, None, None, now=utcnow(), resolve_timeout=300)
            for a in alerts
        ]
        started = time.perf_counter()
        with session_scope() as session:
            service.ingest(session, again)
        update_s.append(time.perf_counter() - started)
        rows = [
            {
                "id": new_id(),
                "fingerprint": hashlib.sha256(f"baseline:{a.fingerprint}".encode()).hexdigest(),
                "labels": {**a.labels, "baseline": "1"},
                "annotations": a.annotations,
                "severity": None,
                "source": "bench",
                "starts_at": a.starts_at,
                "ends_at": a.ends_at,
                "last_event_at": a.event_at,
                "created_at": now,
                "updated_at": now,
            }
            for a in alerts
        ]
        started = time.perf_counter()
        with session_scope() as session:
            session.execute(insert(Alert.__table__), rows)  # type: ignore[arg-type]
        baseline_s.append(time.perf_counter() - started)
    return {
        "batch": INGEST_BATCH,
        "service_s": statistics.median(service_s),
        "update_s": statistics.median(update_s),
        "baseline_s": statistics.median(baseline_s),
    }


def _latency_figures(queue_url: str, slack: Any) -> dict[str, Any]:
    from slack_sdk import WebClient

    from lotabots import aws
    from lotabots.alerts import flush, service
    from lotabots.alerts.engine import normalise_posted
    from lotabots.db import session_scope, utcnow
    from tests.support.alerts_helpers import run_worker, sqs_event

    sqs = aws.client("sqs")
    # Settle the groups the ingest figures created so each sample below sees only its own.
    flush.flush_due()
    sqs.purge_queue(QueueUrl=queue_url)
    beyond: list[float] = []
    for i in range(LATENCY_SAMPLES):
        posts_before = len(slack.posts())
        started = time.time()  # the mock stamps each request with time.time()
        alert = normalise_posted(
            {"alertname": f"Latency{i}", "source": "bench"}, {}, None, None, now=utcnow(), resolve_timeout=0
        )
        with session_scope() as session:
            service.ingest(session, [alert])
        time.sleep(max(0.0, GROUP_WAIT_S - (time.time() - started)))
        flush.flush_due()
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        run_worker("alert_notify", sqs_event([m["Body"] for m in messages], queue="alert-notify"))
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if len(slack.posts()) != posts_before + 1:
            raise RuntimeError(
                f"sample {i}: expected one Slack post, saw {len(slack.posts()) - posts_before}"
            )
        beyond.append(slack.posts()[-1].at - started - GROUP_WAIT_S)
    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=slack.base_url)
    bare: list[float] = []
    for i in range(LATENCY_SAMPLES):
        started = time.perf_counter()
        client.chat_postMessage(channel="#bench", text=f"bare {i}")
        bare.append(time.perf_counter() - started)
    ordered = sorted(beyond)
    return {
        "samples": LATENCY_SAMPLES,
        "beyond_median_s": statistics.median(beyond),
        "beyond_p95_s": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "bare_post_median_s": statistics.median(bare),
    }


def _flood_figures(queue_url: str, slack: Any) -> dict[str, Any]:
    from datetime import timedelta

    from sqlalchemy import select

    from lotabots import aws
    from lotabots.alerts import flush, service
    from lotabots.alerts.engine import normalise_posted
    from lotabots.alerts.models import AlertNotification
    from lotabots.db import session_scope, utcnow
    from tests.support.alerts_helpers import run_worker, sqs_event

    sqs = aws.client("sqs")
    now = utcnow()
    alerts = [
        normalise_posted(labels, {"summary": "flood"}, None, None, now=now, resolve_timeout=0)
        for labels in _labels("Flood", FLOOD)
    ]
    with session_scope() as session:
        service.ingest(session, alerts, now=now)
    posts_before = len(slack.posts())
    counts = []
    for at in (now + timedelta(seconds=GROUP_WAIT_S), now + timedelta(seconds=GROUP_WAIT_S + 300)):
        report = flush.flush_due(now=at)
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        run_worker("alert_notify", sqs_event([m["Body"] for m in messages], queue="alert-notify"))
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        with session_scope() as session:
            created = session.scalars(
                select(AlertNotification).where(AlertNotification.id.in_(report.notifications))
            )
            # Other groups of this run (the ingest batches resolving) may notify too: count the flood's.
            counts.append(sum(1 for n in created if n.payload["group_labels"].get("alertname") == "Flood"))
    posts = [p for p in slack.posts()[posts_before:] if "Flood" in p.payload["blocks"][0]["text"]["text"]]
    return {
        "alerts": FLOOD,
        "notifications_first_interval": counts[0],
        "notifications_next_interval": counts[1],
        "slack_posts": len(posts),
        "blocks": len(posts[0].payload["blocks"]) if posts else 0,
    }


def _child() -> None:
    from moto import mock_aws

    from devstack.slack_mock import MockSlack

    with mock_aws(), MockSlack() as slack:
        from lotabots import aws
        from lotabots.db import migrate

        queue_url = aws.client("sqs").create_queue(QueueName="alert-notify")["QueueUrl"]
        os.environ.update(
            {"NOTIFY_QUEUE_URL": queue_url, "SLACK_API_URL": slack.base_url, "SLACK_BOT_TOKEN": "xoxb-bench"}
        )
        migrate.upgrade()
        result = {
            "ingest": _ingest_figures(),
            "latency": _latency_figures(queue_url, slack),
            "flood": _flood_figures(queue_url, slack),
        }
    print("BENCH-RESULT " + json.dumps(result))


# --- parent side ------------------------------------------------------------------------------


def _run_child() -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="lotabots-bench-alerts-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "DATABASE_URL"))},
        "PYTHONPATH": str(ROOT),
        "LOTABOTS_SQLITE_PATH": str(state / "alerts.db"),
        "LOTABOTS_STAGE": "bench",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_NAMESPACE": "LotaBotsBench",
        "ALERTS_GROUP_WAIT_SECONDS": str(GROUP_WAIT_S),
    }
    env.pop("ALERTS_CONFIG_PARAMETER", None)
    done = subprocess.run(
        [sys.executable, "-c", "from bench.alerts import _child; _child()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            return dict(json.loads(line.removeprefix("BENCH-RESULT ")))
    raise RuntimeError(
        f"alerts bench child failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )


def run() -> str:
    started = time.perf_counter()
    r = _run_child()
    ingest, latency, flood = r["ingest"], r["latency"], r["flood"]
    per_s = ingest["batch"] / ingest["service_s"]
    dedup_per_s = ingest["batch"] / ingest["update_s"]
    baseline_per_s = ingest["batch"] / ingest["baseline_s"]
    ms = 1000.0
    one_per_interval = (
        flood["notifications_first_interval"] == 1 and flood["notifications_next_interval"] == 0
    )
    lines = [
        "## Alerts",
        "",
        "Command: `python -m bench alerts` (part of `make bench`); SQLite, SQS in moto, the mock Slack API "
        f"on 127.0.0.1; group_wait forced to {GROUP_WAIT_S} s. Medians over {INGEST_ROUNDS} rounds / "
        f"{latency['samples']} samples.",
        "",
        "| figure | value | baseline (same run) | ratio |",
        "|---|---|---|---|",
        f"| alerts ingested per second (batches of {ingest['batch']:,} new alerts: dedup, routing, groups) "
        f"| {per_s:,.0f}/s | bare executemany INSERT: {baseline_per_s:,.0f}/s | "
        f"{ingest['service_s'] / ingest['baseline_s']:.2f}x the time |",
        f"| duplicates re-ingested per second (same {ingest['batch']:,} again) | {dedup_per_s:,.0f}/s | "
        f"bare INSERT: {baseline_per_s:,.0f}/s | {ingest['update_s'] / ingest['baseline_s']:.2f}x the time |",
        "| event → Slack mock, beyond group_wait (median / p95) | "
        f"{latency['beyond_median_s'] * ms:.1f} ms / "
        f"{latency['beyond_p95_s'] * ms:.1f} ms | bare `chat.postMessage`: "
        f"{latency['bare_post_median_s'] * ms:.1f} ms | "
        f"{latency['beyond_median_s'] / latency['bare_post_median_s']:.1f}x |",
        f"| notifications for a flood of {flood['alerts']:,} alerts in one group | "
        f"{flood['notifications_first_interval']} after group_wait, "
        f"{flood['notifications_next_interval']} at the next interval; "
        f"{flood['slack_posts']} Slack post ({flood['blocks']} blocks) | "
        "Alertmanager: 1 per group per interval | "
        f"{'OK' if one_per_interval else 'FAILED'} |",
        "",
        "The latency excludes the flush schedule: in AWS `alert_flush` runs every minute, so a group's "
        "first message leaves between group_wait and group_wait + 60 s after its first alert.",
        f"\n_section took {time.perf_counter() - started:.0f} s_\n",
    ]
    if not one_per_interval:
        raise AssertionError(f"flood produced {flood} notifications; expected 1 then 0")
    return "\n".join(lines)
