"""AIOps findings: `AIOpsFinding` events on the bus, with a runbook, sent once per condition.

The alert pipeline already turns `lotabots.aiops` / `AIOpsFinding` events into alerts (labels
`alertname=AIOpsFinding`, `finding_id`, `kind`, `function`, ...), groups and posts them to
Slack. `finding_id` is the condition's stable key, so the alert for "documents has a 12% error
rate" is the same alert on every run, and a `status: resolved` event closes it.

`Ledger` keeps the open findings of one source in the state bucket: a finding is sent when it
first appears, again only after `AIOPS_FINDING_REPEAT_SECONDS` while it persists, and resolved
once when a condition finding stops appearing. One-off findings (a new log template, an
anomaly at one point in time) carry a key that names the occurrence and are never resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from lotabots import events
from lotabots.aiops import store
from lotabots.observability import logger

SOURCE = "lotabots.aiops"
DETAIL_TYPE = "AIOpsFinding"
Severity = Literal["info", "warning", "critical"]
MAX_KEY = 200

# What the person on call does first; docs/aiops.md has the long form of each.
RUNBOOKS: dict[str, str] = {
    "api_down": "docs/aiops.md#api-down: GET /health failed; check the API function's errors and the "
    "database check; roll back the last release if it started with a deploy.",
    "database": "docs/aiops.md#database: the database check failed; check RDS Proxy connections and "
    "the Aurora cluster's status; credentials rotate through Secrets Manager.",
    "queue_backlog": "docs/aiops.md#queue-backlog: messages wait longer than usual; check the consumer "
    "function's errors and throttles, then its maximum concurrency.",
    "dlq": "docs/aiops.md#dlq: messages reached a DLQ; read one, fix the cause, redrive with "
    "StartMessageMoveTask.",
    "lambda_errors": "docs/aiops.md#lambda-errors: the function's error rate is above the threshold; "
    "GET /aiops/log-clusters?level=ERROR shows the templates behind it.",
    "lambda_throttles": "docs/aiops.md#lambda-throttles: invocations were throttled; check reserved and "
    "account concurrency, and the scaling plan of GET /aiops/forecasts.",
    "lambda_latency": "docs/aiops.md#lambda-latency: p99 duration is above the threshold; compare with "
    "the anomalies and the last deploy.",
    "gpu_pool": "docs/aiops.md#gpu-pool: a GPU pool is not trusted; GET /gpu-pools/{name} and its "
    "latest attestation say why; jobs avoid it until it re-attests.",
    "job_failures": "docs/aiops.md#job-failures: GPU jobs fail more than usual; GET /jobs?status=failed "
    "and the backend's console.",
    "new_log_template": "docs/aiops.md#new-log-template: a log line of a shape never seen before; read "
    "its examples in GET /aiops/log-clusters.",
    "log_spike": "docs/aiops.md#log-spike: a known log template is far more frequent than its baseline.",
    "anomaly": "docs/aiops.md#anomaly: a metric left its learned daily/weekly pattern; GET "
    "/aiops/anomalies lists the points and scores.",
    "state_reset": "docs/aiops.md#state-reset: a persisted AIOps state was unreadable and was replaced; "
    "the learned baseline starts again (earlier versions stay in the versioned bucket).",
    "source_unavailable": "docs/aiops.md#source-unavailable: CloudWatch (or another source) throttled or "
    "failed after retries; the run skipped that part and the next run catches up.",
    "report_delivery": "docs/aiops.md#report-delivery: the daily report could not be posted to Slack; "
    "it stays pending and every run retries it.",
}


@dataclass(frozen=True)
class Finding:
    kind: str
    key: str
    summary: str
    severity: Severity = "warning"
    labels: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    # A condition is resolved when a later run no longer finds it; an occurrence never is.
    condition: bool = True

    @property
    def runbook(self) -> str:
        return RUNBOOKS.get(self.kind, "docs/aiops.md#findings")

    def detail(self, status: Literal["firing", "resolved"] = "firing") -> dict[str, Any]:
        return {
            "finding_id": self.key[:MAX_KEY],
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "status": status,
            "labels": self.labels,
            "annotations": {"runbook": self.runbook},
            "details": self.details,
        }


def publish(finding: Finding, status: Literal["firing", "resolved"] = "firing") -> None:
    events.publish(SOURCE, DETAIL_TYPE, finding.detail(status))


def source_unavailable(source: str, reason: str) -> Finding:
    """A source (CloudWatch, SQS, ...) that could not be read after retries: the run carries on
    with what it has, and the next run catches up."""
    return Finding(
        "source_unavailable",
        f"source:{source}",
        f"{source} could not be read after retries ({reason}); the next run catches up",
        labels={"resource": source},
    )


@dataclass
class Ledger:
    """The open findings of one source (`health`, `logs`, ...), read from and written to the store."""

    source: str
    open: dict[str, dict[str, Any]]
    etag: str | None
    reset_problem: str | None = None

    @classmethod
    def load(cls, source: str) -> Ledger:
        stored = store.load(f"findings-{source}")
        body = stored.body if isinstance(stored.body, dict) else {}
        open_findings = {k: v for k, v in body.items() if isinstance(v, dict)}
        return cls(source, open_findings, stored.etag, stored.problem)

    def reconcile(self, found: list[Finding], now: float, repeat_s: float) -> dict[str, int]:
        """Publish what is new or due again, resolve conditions that are gone; counts per outcome."""
        sent = repeated = resolved = 0
        seen: set[str] = set()
        for finding in found:
            key = finding.key[:MAX_KEY]
            if key in seen:
                continue
            seen.add(key)
            entry = self.open.get(key)
            if entry is not None and now - float(entry.get("sent_at", 0)) < repeat_s:
                continue
            publish(finding)
            if entry is None:
                sent += 1
            else:
                repeated += 1
            self.open[key] = {
                "sent_at": now,
                "first_at": entry.get("first_at", now) if entry else now,
                "condition": finding.condition,
                "finding": finding.detail(),
            }
        for key in list(self.open):
            entry = self.open[key]
            if key in seen:
                continue
            if entry.get("condition"):
                detail = entry.get("finding") or {}
                publish(
                    Finding(
                        kind=str(detail.get("kind", "health")),
                        key=key,
                        summary=f"resolved: {detail.get('summary', key)}",
                        severity=detail.get("severity", "warning"),
                        labels=dict(detail.get("labels") or {}),
                    ),
                    "resolved",
                )
                resolved += 1
                del self.open[key]
            elif now - float(entry.get("sent_at", 0)) >= repeat_s:
                del self.open[key]  # an occurrence is forgotten once it could be sent again
        if sent or repeated or resolved:
            logger.info(
                "findings published",
                extra={"source": self.source, "new": sent, "repeated": repeated, "resolved": resolved},
            )
        return {"new": sent, "repeated": repeated, "resolved": resolved}

    def save(self) -> None:
        self.etag = store.save(f"findings-{self.source}", self.open, self.etag)
