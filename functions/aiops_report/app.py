"""Scheduled worker (daily): the AIOps report to S3 and Slack, and every earlier report Slack has not
accepted yet (`GET /aiops/reports/latest`); see lotabots.aiops.reports. Runs with the `aiops` layer."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.aiops import reports
from lotabots.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    schedule = parse(event=event, model=EventBridgeModel)
    logger.append_keys(schedule_time=schedule.time.isoformat())
    result = reports.run(deadline=_deadline(context))
    metrics.add_metric(name="AIOpsReportsPending", unit="Count", value=len(result.pending))
    return result.model_dump(mode="json")


def _deadline(context: LambdaContext) -> float:
    """Slack calls must finish before the function's timeout (5 s kept for recording the outcome)."""
    import time

    return time.monotonic() + max(1.0, context.get_remaining_time_in_millis() / 1000 - 5)
