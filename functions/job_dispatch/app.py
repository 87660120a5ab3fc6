"""Consumes the gpu-jobs queue (API dispatch requests and `DocumentIngested` events) and submits
each job to its backend exactly once; partial batch failures go back to the queue."""

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
from lotabots.jobs import dispatch
from lotabots.jobs.schemas import GpuJobsRecord
from lotabots.observability import logger, metrics, tracer

# A batch whose records all fail is reported as such (each goes back with its own back-off)
# rather than raised as a function error.
processor = BatchProcessor(event_type=EventType.SQS, model=GpuJobsRecord, raise_on_entire_batch_failure=False)


@tracer.capture_method
def record_handler(record: GpuJobsRecord) -> str:
    return dispatch.handle_record(record)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


gc.freeze()  # loaded: see the top of the module
gc.enable()
