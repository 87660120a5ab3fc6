"""Worker: alarm, job-failure, attestation and AIOps events (EventBridge → SQS) become alerts.

Each SQS record is one EventBridge event; a record that fails is reported as a batch item
failure and redelivered (then dead-lettered). Re-processing an event is harmless: alerts are
deduplicated by fingerprint and older updates than the stored one are ignored.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.alerts import service, sources
from lotabots.db import session_scope
from lotabots.observability import logger, metrics, tracer


class AlertEventRecord(SqsRecordModel):
    body: Json[EventBridgeModel]  # type: ignore[assignment]


processor = BatchProcessor(
    event_type=EventType.SQS, model=AlertEventRecord, raise_on_entire_batch_failure=False
)


@tracer.capture_method
def record_handler(record: AlertEventRecord) -> None:
    event = record.body
    logger.append_keys(event_id=event.id, detail_type=event.detail_type)
    correlation_id = event.detail.get("correlation_id") if isinstance(event.detail, dict) else None
    if correlation_id:
        logger.set_correlation_id(str(correlation_id))
    try:
        alerts = sources.from_event(event)
    except sources.UnsupportedEvent as exc:
        logger.info("event ignored", extra={"reason": str(exc)})
        metrics.add_metric(name="AlertEventsIgnored", unit="Count", value=1)
        return
    with session_scope() as session:
        result = service.ingest(session, alerts)
    metrics.add_metric(name="AlertEventsIngested", unit="Count", value=1)
    logger.info(
        "event ingested",
        # Not "created": a LogRecord attribute name in `extra` raises KeyError (after the commit).
        extra={
            "alerts_created": result.created,
            "alerts_updated": result.updated,
            "alerts_ignored": result.ignored,
        },
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


gc.freeze()  # loaded: see the top of the module
gc.enable()
