"""Scheduled worker (every 5 minutes): mines the functions' CloudWatch log lines into templates
(`GET /aiops/log-clusters`), new templates and spikes → findings; see lotabots.aiops.logs."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.aiops import logs
from lotabots.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    schedule = parse(event=event, model=EventBridgeModel)
    logger.append_keys(schedule_time=schedule.time.isoformat())
    result = logs.run()
    metrics.add_metric(name="AIOpsLogLines", unit="Count", value=result.lines)
    metrics.add_metric(name="AIOpsNewLogTemplates", unit="Count", value=result.new_templates)
    return result.model_dump(mode="json")
