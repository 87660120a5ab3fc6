"""Scheduled worker (every minute): every health check of the platform → findings, one stored run
(`GET /aiops/health`); see lotabots.aiops.monitor."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.aiops import monitor
from lotabots.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    schedule = parse(event=event, model=EventBridgeModel)
    logger.append_keys(schedule_time=schedule.time.isoformat())
    result = monitor.run()
    metrics.add_metric(name="AIOpsHealthDegraded", unit="Count", value=0 if result.status == "ok" else 1)
    return result.model_dump(mode="json")
