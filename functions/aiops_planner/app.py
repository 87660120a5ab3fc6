"""Scheduled worker: the AIOps runs that plan and report, with charts (the `aiops` layer: Pillow).

- `aiops-forecast` (hourly): 24 h forecasts, the scaling plan (dry-run unless
  AIOPS_SCALING_APPLY) and its chart (lotabots.aiops.forecasts);
- `aiops-report` (daily): the report to S3 and Slack, and every earlier report Slack has not
  accepted yet (lotabots.aiops.reports).
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

import time
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.aiops import forecasts, reports
from lotabots.aiops.schedules import schedule_of
from lotabots.observability import logger, metrics, tracer

SCHEDULES = ("aiops-forecast", "aiops-report")
# Slack calls must finish before the function's timeout: this much is kept for recording the outcome.
RESERVE_S = 5


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    schedule = parse(event=event, model=EventBridgeModel)
    name = schedule_of(schedule.resources, SCHEDULES)
    logger.append_keys(schedule=name, schedule_time=schedule.time.isoformat())
    result: BaseModel
    if name == "aiops-forecast":
        result = forecasts.run()
    else:
        deadline = time.monotonic() + max(1.0, context.get_remaining_time_in_millis() / 1000 - RESERVE_S)
        report = reports.run(deadline=deadline)
        metrics.add_metric(name="AIOpsReportsPending", unit="Count", value=len(report.pending))
        result = report
    metrics.add_metric(name="AIOpsRuns", unit="Count", value=1)
    return {"schedule": name, **result.model_dump(mode="json")}


gc.freeze()  # loaded: see the top of the module
gc.enable()
