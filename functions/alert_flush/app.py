"""Scheduled worker (every minute): flushes due alert groups into notifications.

Runs until every due group is handled or the invocation is about to time out; overlapping
runs are safe (each group tick is claimed with a conditional update). Each run also sends the
notification outbox: new notifications, and undone ones whose retry is due (a Slack outage of
any length is retried from here), and publishes how long groups have waited for Slack.
"""

from __future__ import annotations

import gc

# Cold start: no cyclic garbage collection while the modules below load (their imports create
# hundreds of thousands of long-lived objects); at the end they are frozen out of the collector's
# generations and collection resumes. About 10% off a cold start (docs/benchmarks.md).
gc.disable()

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lotabots import snapstart  # noqa: F401  (registers the SnapStart runtime hooks)
from lotabots.alerts import flush
from lotabots.alerts.metrics import DELIVERY_LAG_METRIC, UNDELIVERED_METRIC
from lotabots.observability import logger, metrics, tracer

SAFETY_MARGIN_S = 5.0


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
    report = flush.flush_due(deadline=deadline)
    metrics.add_metric(name="AlertGroupsFlushed", unit="Count", value=report.groups_claimed)
    metrics.add_metric(name="AlertNotificationsCreated", unit="Count", value=len(report.notifications))
    metrics.add_metric(name="AlertNotificationsResent", unit="Count", value=report.resent)
    # The outage alarm (CDK observability) watches these: how long Slack has kept groups waiting.
    metrics.add_metric(name=DELIVERY_LAG_METRIC, unit="Seconds", value=report.delivery_lag_s)
    metrics.add_metric(name=UNDELIVERED_METRIC, unit="Count", value=report.undelivered)
    return report.as_dict()


gc.freeze()  # loaded: see the top of the module
gc.enable()
