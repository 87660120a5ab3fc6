"""Plays the CloudWatch alarms on DLQ depth that the CDK app creates for every queue.

moto has no alarm evaluation, so a watcher looks at each DLQ's depth and, when it changes
between empty and not empty, publishes the "CloudWatch Alarm State Change" event that
CloudWatch would put on the default bus: the `alarms-to-alerts` rule then carries it to the
alerting pipeline, so a message that ends in a DLQ locally also ends in an alert.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from datetime import UTC, datetime
from typing import Any

from devstack.runtime import ACCOUNT_ID

log = logging.getLogger("devstack.alarms")


def alarm_name(stage: str, queue: str) -> str:
    return f"lotabots-{stage}-{queue}-dlq-not-empty"


def alarm_event(name: str, region: str, state: str, previous: str, depth: int, queue: str) -> dict[str, Any]:
    """A PutEvents entry shaped like CloudWatch's alarm state change event."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    reason = f"Threshold Crossed: ApproximateNumberOfMessagesVisible of {queue}-dlq is {depth} (threshold 0)"
    detail = {
        "alarmName": name,
        "state": {"value": state, "reason": reason, "timestamp": now},
        "previousState": {"value": previous, "timestamp": now},
        "configuration": {
            "description": f"Messages in the dead-letter queue of {queue}",
            "metrics": [
                {
                    "id": "m1",
                    "metricStat": {
                        "metric": {
                            "namespace": "AWS/SQS",
                            "name": "ApproximateNumberOfMessagesVisible",
                            "dimensions": {"QueueName": f"{queue}-dlq"},
                        },
                        "period": 60,
                        "stat": "Maximum",
                    },
                }
            ],
        },
    }
    return {
        "Source": "aws.cloudwatch",
        "DetailType": "CloudWatch Alarm State Change",
        "Resources": [f"arn:aws:cloudwatch:{region}:{ACCOUNT_ID}:alarm:{name}"],
        "Detail": json.dumps(detail),
    }


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
        return transitions

    def run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            try:
                self.check_once()
            except Exception:
                if self.stop_event.is_set():
                    break
                log.error("DLQ alarm check failed:\n%s", traceback.format_exc(limit=2))
