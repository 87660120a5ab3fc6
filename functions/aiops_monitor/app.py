"""Scheduled worker: the AIOps runs that watch the platform, one per schedule.

- `aiops-health` (every minute): every health check → findings, one stored run (lotabots.aiops.monitor);
- `aiops-logs` (every 5 minutes): CloudWatch log lines → templates, error clusters, new
  templates and spikes (lotabots.aiops.logs);
- `aiops-anomaly` (every 5 minutes): streaming anomaly scores on the key metric series
  (lotabots.aiops.anomalies).

One function for the three (not one each): a Lambda function costs the stack a dozen
CloudFormation resources (role, policy, log group, version, alias, alarms, deployment group)
and the stack stays under CloudFormation's 500; the schedule's rule says which run this is.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.aiops import anomalies, logs, monitor
from lotabots.aiops.schedules import schedule_of
from lotabots.observability import logger, metrics, tracer

RUNS: dict[str, Callable[[], BaseModel]] = {
    "aiops-health": monitor.run,
    "aiops-logs": logs.run,
    "aiops-anomaly": anomalies.run,
}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    schedule = parse(event=event, model=EventBridgeModel)
    name = schedule_of(schedule.resources, RUNS)
    logger.append_keys(schedule=name, schedule_time=schedule.time.isoformat())
    result = RUNS[name]()
    metrics.add_metric(name="AIOpsRuns", unit="Count", value=1)
    return {"schedule": name, **result.model_dump(mode="json")}


gc.freeze()  # loaded: see the top of the module
gc.enable()
