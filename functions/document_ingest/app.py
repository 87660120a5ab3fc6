"""Document ingest worker: S3 ObjectCreated notifications arrive through SQS in batches.

Each SQS message is one S3 notification (or the `s3:TestEvent` S3 sends when notifications
are configured, which is acknowledged and ignored). A message whose processing raises is
reported as a partial batch failure, retried by SQS and finally moved to the DLQ.

A hostile upload is not such a failure: extraction runs under budgets, and over budget the
document settles (`ready` with partial text, or `rejected`) and the message is acknowledged.
Each record gets the invocation's deadline; a record that could not get its full extraction
budget before it is deferred to its next delivery instead of outrunning the function timeout.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

import time
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.documents import ingest
from lotabots.documents.schemas import S3Notification, S3TestEvent
from lotabots.observability import logger, metrics, tracer


class S3NotificationMessage(SqsRecordModel):  # type: ignore[override]
    body: Json[S3Notification | S3TestEvent]  # type: ignore[assignment]


# Every failed record is listed in batchItemFailures, even when the whole batch failed (a batch
# of deferred records is not an invocation error).
processor = BatchProcessor(
    event_type=EventType.SQS, model=S3NotificationMessage, raise_on_entire_batch_failure=False
)


@tracer.capture_method
def record_handler(record: S3NotificationMessage, lambda_context: LambdaContext) -> list[str]:
    deadline = time.monotonic() + lambda_context.get_remaining_time_in_millis() / 1000
    body = record.body
    if isinstance(body, S3TestEvent):
        logger.info("S3 test event acknowledged", extra={"bucket": body.Bucket})
        return []
    outcomes: list[str] = []
    for s3_record in body.Records:
        if not s3_record.eventName.startswith("ObjectCreated"):
            continue
        key = unquote_plus(s3_record.s3.object.key)
        try:
            outcome = ingest.ingest_object(s3_record.s3.bucket.name, key, deadline=deadline)
        except ingest.IngestDeferred as exc:
            logger.warning("ingest deferred to the next delivery", extra={"key": key, "why": str(exc)})
            raise
        logger.info(
            "ingest outcome",
            extra={"key": key, "status": outcome.status, "document_id": outcome.document_id},
        )
        outcomes.append(outcome.status)
    return outcomes


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


gc.freeze()  # loaded: see the top of the module
gc.enable()
