"""Dispatch requests on the gpu-jobs queue (`{job_id, correlation_id}`), sent after the job
is committed; `dispatch` consumes them."""

from __future__ import annotations

import json

from lotabots import aws
from lotabots.jobs.service import settings
from lotabots.observability import logger


def enqueue(job_id: str) -> None:
    """Put a dispatch request for the job on the gpu-jobs queue."""
    queue_url = settings().queue_url
    if not queue_url:
        raise RuntimeError("GPU_JOBS_QUEUE_URL is not set")
    aws.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"job_id": job_id, "correlation_id": logger.get_correlation_id()}),
    )


def enqueue_quietly(job_id: str) -> None:
    """After the job is committed: a failure here is logged and repaired by the sweeper."""
    try:
        enqueue(job_id)
    except Exception:
        logger.exception(
            "could not enqueue job; the poll-gpu-jobs sweeper will retry", extra={"job_id": job_id}
        )
