"""Scheduled worker (hourly): 24 h forecasts, the scaling plan (dry-run unless AIOPS_SCALING_APPLY)
and its chart (`GET /aiops/forecasts`); see lotabots.aiops.forecasts. Runs with the `aiops` layer
(matplotlib)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.aiops import forecasts
from lotabots.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    schedule = parse(event=event, model=EventBridgeModel)
    logger.append_keys(schedule_time=schedule.time.isoformat())
    result = forecasts.run()
    metrics.add_metric(name="AIOpsScalingActions", unit="Count", value=result.actions)
    return result.model_dump(mode="json")
