"""Records GPU job results from the gpu-results queue (job events, Batch state changes) and, on
the `poll-gpu-jobs` schedule, polls backends, times out stale jobs and re-queues lost ones."""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.jobs import results
from lotabots.jobs.schemas import GpuResultsRecord
from lotabots.observability import logger, metrics, tracer

processor = BatchProcessor(
    event_type=EventType.SQS, model=GpuResultsRecord, raise_on_entire_batch_failure=False
)


@tracer.capture_method
def record_handler(record: GpuResultsRecord) -> str:
    return results.handle_record(record)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext
) -> PartialItemFailureResponse | dict[str, Any]:
    if "Records" in event:
        results.register_lambda_context(context)
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    # EventBridge schedule `poll-gpu-jobs` ({"source": "aws.events", "detail-type": "Scheduled Event"}).
    summary = results.poll_jobs()
    logger.info("polled GPU jobs", extra=summary.as_dict())
    return summary.as_dict()


gc.freeze()  # loaded: see the top of the module
gc.enable()
