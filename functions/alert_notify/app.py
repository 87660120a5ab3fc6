"""Worker: delivers notifications from the notify queue to Slack.

A failed or deferred delivery is recorded with the time of its next attempt and the message is
acknowledged: retries belong to the notification outbox, which the alert_flush schedule sends
again when due, for as long as Slack fails (lotabots.alerts.notify). A Slack outage delays
notifications and never drops them. Only a message no attempt can handle (malformed, unknown
notification, the database down) fails here; after the queue's max receives it goes to the DLQ,
whose alarm becomes an alert. Redelivered messages never post twice.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, Json

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.alerts import notify
from lotabots.observability import logger, metrics, tracer


class NotifyMessage(BaseModel):
    notification_id: str = Field(min_length=1, max_length=32)


class NotifyRecord(SqsRecordModel):
    body: Json[NotifyMessage]  # type: ignore[assignment]


# Every failed record is listed in batchItemFailures, even when the whole batch failed.
processor = BatchProcessor(event_type=EventType.SQS, model=NotifyRecord, raise_on_entire_batch_failure=False)
SAFETY_MARGIN_S = 3.0


@tracer.capture_method
def record_handler(record: NotifyRecord, lambda_context: LambdaContext) -> str:
    notification_id = record.body.notification_id
    logger.append_keys(notification_id=notification_id)
    deadline = time.monotonic() + lambda_context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
    outcome = notify.deliver(notification_id, deadline=deadline)
    metrics.add_metric(name=f"Notifications{outcome.status.capitalize()}", unit="Count", value=1)
    if outcome.done:
        logger.info("notification handled", extra={"outcome": outcome.status})
    else:
        logger.warning(
            "notification not delivered yet; the outbox sends it again",
            extra={
                "outcome": outcome.status,
                "reason": outcome.reason,
                "retry_at": outcome.retry_at.isoformat() if outcome.retry_at else None,
            },
        )
    return outcome.status


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


gc.freeze()  # loaded: see the top of the module
gc.enable()
