"""AWS Batch backend: `submit_job` on the GPU job queue with the job spec in the command.

`SubmitJob` has no idempotency token, so dispatch's conditional-write map guards against a
second submission; after a crash between submit and recording the handle, `find()` looks
the job up by its deterministic name. Completion arrives as "Batch Job State Change" events
(`job_results`), with `poll()` (DescribeJobs) as the safety net.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lotabots import aws, config
from lotabots.config import JobSettings
from lotabots.jobs.backends import BackendRejected, BackendUnavailable, PollResult
from lotabots.jobs.spec import JobSpec
from lotabots.observability import logger

TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "ExpiredTokenException",
    }
)
_STATES: dict[str, Any] = {
    "SUBMITTED": "pending",
    "PENDING": "pending",
    "RUNNABLE": "pending",
    "STARTING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
}


STAGE_TAG = "lotabots:stage"


def job_name(spec: JobSpec) -> str:
    """Deterministic per job attempt (Batch names: 128 chars of [A-Za-z0-9_-])."""
    return f"lotabots-{spec.type}-{spec.job_id}-{spec.attempt}"[:128]


def command(spec: JobSpec) -> list[str]:
    return ["python", "-m", "gpu_jobs", "run", "--job", spec.model_dump_json()]


class BatchBackend:
    name = "batch"

    def __init__(self, settings: JobSettings) -> None:
        self._settings = settings

    def _call(self, action: str, **kwargs: Any) -> Any:
        try:
            return getattr(aws.client("batch"), action)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in TRANSIENT_CODES or status == 429 or status >= 500:
                raise BackendUnavailable(f"AWS Batch {action} failed ({code}): {exc}") from exc
            raise BackendRejected(f"AWS Batch {action} refused ({code}): {exc}") from exc
        except BotoCoreError as exc:  # connection errors, retries exhausted by botocore
            raise BackendUnavailable(f"AWS Batch {action} unreachable: {exc}") from exc

    def submit(self, spec: JobSpec) -> str:
        response = self._call(
            "submit_job",
            jobName=job_name(spec),
            jobQueue=self._settings.batch_job_queue,
            jobDefinition=self._settings.batch_job_definition,
            containerOverrides={
                "command": command(spec),
                "environment": [
                    {"name": "LOTABOTS_JOB_ID", "value": spec.job_id},
                    {"name": "EVENT_BUS_NAME", "value": spec.event_bus_name},
                ],
            },
            timeout={"attemptDurationSeconds": max(60, spec.timeout_s)},
            # The stage tag is what IAM lets this stack terminate (and tag) later: see grants.py.
            tags={
                "lotabots:job-id": spec.job_id,
                "lotabots:job-type": spec.type,
                STAGE_TAG: config.core().stage,
            },
            propagateTags=True,
        )
        handle = str(response["jobId"])
        logger.info("submitted Batch job", extra={"job_id": spec.job_id, "handle": handle})
        return handle

    def find(self, spec: JobSpec) -> str | None:
        response = self._call(
            "list_jobs",
            jobQueue=self._settings.batch_job_queue,
            filters=[{"name": "JOB_NAME", "values": [job_name(spec)]}],
        )
        summaries = response.get("jobSummaryList") or []
        return str(summaries[0]["jobId"]) if summaries else None

    def poll(self, handle: str) -> PollResult:
        jobs = self._call("describe_jobs", jobs=[handle]).get("jobs") or []
        if not jobs:
            return PollResult("unknown", error=f"AWS Batch has no job {handle}")
        job = jobs[0]
        state = _STATES.get(str(job.get("status")), "unknown")
        error = None
        if state == "failed":
            container = job.get("container") or {}
            reasons = [job.get("statusReason"), container.get("reason")]
            if container.get("exitCode") is not None:
                reasons.append(f"exit code {container['exitCode']}")
            error = "; ".join(str(r) for r in reasons if r) or "AWS Batch job failed"
        return PollResult(state, error=error, details={"batch_status": job.get("status")})

    def cancel(self, handle: str) -> None:
        self._call("terminate_job", jobId=handle, reason="cancelled by LotaBots")


def create() -> BatchBackend:
    return BatchBackend(config.load(JobSettings))
