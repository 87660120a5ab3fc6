"""Plays, locally, the CloudWatch alarms the CDK app creates that the platform must see.

moto has no alarm evaluation, so a watcher evaluates them itself and, on each change of state,
publishes the "CloudWatch Alarm State Change" event that CloudWatch would put on the default
bus (the `alarms-to-alerts` rule then carries it to the alerting pipeline) and logs it:
- every DLQ's depth (empty or not): a message that ends in a DLQ locally also ends in an alert;
- `alert-delivery-lag`: how long alert groups have waited for Slack to accept a notification
  (`lotabots.alerts.flush.delivery_backlog`, what alert_flush publishes in AWS). In AWS that
  alarm reaches on-call by SNS/e-mail because Slack cannot announce its own outage; locally the
  warning in the log and the alert (`GET /alerts`) are the record.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devstack.runtime import ACCOUNT_ID
from lotabots.alerts.metrics import DELIVERY_LAG_METRIC

log = logging.getLogger("devstack.alarms")


def alarm_name(stage: str, queue: str) -> str:
    return f"lotabots-{stage}-{queue}-dlq-not-empty"


def _state_change(
    name: str, region: str, state: str, previous: str, reason: str, description: str, metric: dict[str, Any]
) -> dict[str, Any]:
    """A PutEvents entry shaped like CloudWatch's alarm state change event."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    detail = {
        "alarmName": name,
        "state": {"value": state, "reason": reason, "timestamp": now},
        "previousState": {"value": previous, "timestamp": now},
        "configuration": {
            "description": description,
            "metrics": [{"id": "m1", "metricStat": {**metric, "period": 60, "stat": "Maximum"}}],
        },
    }
    return {
        "Source": "aws.cloudwatch",
        "DetailType": "CloudWatch Alarm State Change",
        "Resources": [f"arn:aws:cloudwatch:{region}:{ACCOUNT_ID}:alarm:{name}"],
        "Detail": json.dumps(detail),
    }


def alarm_event(name: str, region: str, state: str, previous: str, depth: int, queue: str) -> dict[str, Any]:
    """The DLQ depth alarm's state change."""
    return _state_change(
        name,
        region,
        state,
        previous,
        f"Threshold Crossed: ApproximateNumberOfMessagesVisible of {queue}-dlq is {depth} (threshold 0)",
        f"Messages in the dead-letter queue of {queue}",
        {
            "metric": {
                "namespace": "AWS/SQS",
                "name": "ApproximateNumberOfMessagesVisible",
                "dimensions": {"QueueName": f"{queue}-dlq"},
            }
        },
    )


def delivery_lag_alarm_name(stage: str) -> str:
    return f"lotabots-{stage}-alert-delivery-lag-critical"  # the CDK alarm's name


class DeliveryLagAlarm:
    """The `alert-delivery-lag` alarm: Slack has kept alert groups waiting `threshold_s` or more."""

    def __init__(
        self,
        *,
        events: Any,
        stage: str,
        region: str,
        bus: str,
        threshold_s: float,
        backlog: Callable[[], tuple[int, float]] | None = None,
    ) -> None:
        self.events = events
        self.name = delivery_lag_alarm_name(stage)
        self.region = region
        self.bus = bus
        self.threshold_s = threshold_s
        self.backlog = backlog or _delivery_backlog
        self.state = "OK"

    def check_once(self) -> list[tuple[str, str]]:
        undelivered, lag_s = self.backlog()
        state = "ALARM" if lag_s >= self.threshold_s else "OK"
        if state == self.state:
            return []
        previous, self.state = self.state, state
        reason = (
            f"Threshold Crossed: {DELIVERY_LAG_METRIC} is {lag_s:.0f} (threshold {self.threshold_s:.0f}); "
            f"{undelivered} notification(s) not yet accepted by Slack, kept and retried"
        )
        entry = _state_change(
            self.name,
            self.region,
            state,
            previous,
            reason,
            "Slack has not accepted alert notifications (outage, token or channel)",
            {
                "metric": {
                    "namespace": "LotaBots",
                    "name": DELIVERY_LAG_METRIC,
                    "dimensions": {"service": "alert_flush"},
                }
            },
        )
        self.events.put_events(Entries=[{**entry, "EventBusName": self.bus}])
        log.warning("alarm %s: %s -> %s (%s)", self.name, previous, state, reason)
        return [(self.name, state)]


def _delivery_backlog() -> tuple[int, float]:
    from lotabots.alerts import flush

    return flush.delivery_backlog()


class DlqAlarmWatcher(threading.Thread):
    def __init__(
        self,
        *,
        sqs: Any,
        events: Any,
        dlq_urls: dict[str, str],
        stage: str,
        region: str,
        bus: str,
        stop: threading.Event,
        interval_s: float = 5.0,
        delivery_lag: DeliveryLagAlarm | None = None,
    ) -> None:
        super().__init__(name="dlq-alarms", daemon=True)
        self.sqs = sqs
        self.events = events
        self.dlq_urls = dlq_urls  # queue name → its DLQ's URL
        self.stage = stage
        self.region = region
        self.bus = bus
        self.stop_event = stop
        self.interval_s = interval_s
        self.states: dict[str, str] = {}
        self.delivery_lag = delivery_lag

    def check_once(self) -> list[tuple[str, str]]:
        """Evaluate every alarm; returns the (alarm, new state) transitions published."""
        transitions = []
        for queue, url in self.dlq_urls.items():
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depth = int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
                attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
            )
            name = alarm_name(self.stage, queue)
            previous = self.states.get(name, "OK")
            state = "ALARM" if depth > 0 else "OK"
            self.states[name] = state
            if state == previous:
                continue
            entry = alarm_event(name, self.region, state, previous, depth, queue)
            self.events.put_events(Entries=[{**entry, "EventBusName": self.bus}])
            log.warning("alarm %s: %s -> %s (%d message(s) in %s-dlq)", name, previous, state, depth, queue)
            transitions.append((name, state))
        if self.delivery_lag is not None:
            transitions += self.delivery_lag.check_once()
        return transitions

    def run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            try:
                self.check_once()
            except Exception:
                if self.stop_event.is_set():
                    break
                log.error("DLQ alarm check failed:\n%s", traceback.format_exc(limit=2))
