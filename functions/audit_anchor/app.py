"""Scheduled worker (every 15 minutes): anchors the audit chain's head in the Object Lock bucket.

Each run verifies the whole chain against the anchors already stored, then writes
`audit-anchors/<entries>-<head>.json` with `If-None-Match: *` (a run that finds the head
already anchored writes nothing, so retries and overlapping runs are harmless). A chain that
shows tampering is not anchored: the run records the `AuditChainInvalid` metric, whose alarm
reaches the alert pipeline, and fails.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.audit import service
from lotabots.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    schedule = parse(event=event, model=EventBridgeModel)
    logger.append_keys(schedule_time=schedule.time.isoformat())
    run = service.anchor_head()
    metrics.add_metric(name="AuditAnchorsWritten", unit="Count", value=1 if run.status == "anchored" else 0)
    return run.model_dump()


gc.freeze()  # loaded: see the top of the module
gc.enable()
