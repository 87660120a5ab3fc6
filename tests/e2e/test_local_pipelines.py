"""The local stack's own machinery end to end: the event-source mapping retries a message
that keeps failing, SQS redrive moves it to the DLQ, the DLQ alarm stand-in fires, and the
alerting pipeline turns it into an alert an operator sees over HTTP (resolved once the DLQ
is drained) — for every queue of the topology."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lotabots import topology
from tests.e2e.harness import Stack, User

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

QUEUES = [queue.name for queue in topology.QUEUES]


def _alarm(queue: str) -> str:
    return f"lotabots-local-{queue}-dlq-not-empty"


def _dlq_depth(stack: Stack, queue: str) -> int:
    sqs = stack.aws("sqs")
    url = sqs.get_queue_url(QueueName=f"{queue}-dlq")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_a_poison_message_on_any_queue_ends_in_its_dlq_and_becomes_an_alert(
    stack: Stack, http: httpx.Client, make_user: Callable[..., User]
) -> None:
    operator = make_user("operator")
    sqs = stack.aws("sqs")
    for queue in QUEUES:
        sqs.send_message(QueueUrl=stack.info["queues"][queue], MessageBody="this is not a message we know")

    deadline = time.monotonic() + 90
    waiting = set(QUEUES)
    while waiting:
        assert time.monotonic() < deadline, f"never reached their DLQ: {waiting}:\n{stack.output()}"
        waiting = {queue for queue in waiting if _dlq_depth(stack, queue) == 0}
        time.sleep(0.5)

    found: dict[str, dict[str, Any]] = {}
    while len(found) < len(QUEUES):
        assert time.monotonic() < deadline, f"DLQ alarms without an alert: {set(QUEUES) - set(found)}"
        response = http.get("/alerts", params={"state": "active", "limit": "1000"}, headers=operator.headers)
        assert response.status_code == 200, response.text
        names = {_alarm(queue): queue for queue in QUEUES}
        for alert in response.json()["items"]:
            alarmed = names.get(alert["labels"].get("alertname", ""))
            if alarmed:
                found[alarmed] = alert
        time.sleep(0.5)
    for queue, alert in found.items():
        assert alert["labels"]["source"] == "cloudwatch"
        assert f"{queue}-dlq" in alert["annotations"]["reason"]

    # Draining a DLQ returns its alarm to OK, which resolves the alert.
    for queue in QUEUES:
        sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName=f"{queue}-dlq")["QueueUrl"])
    unresolved = {queue: alert["id"] for queue, alert in found.items()}
    while unresolved:
        assert time.monotonic() < deadline, f"alerts not resolved: {set(unresolved)}:\n{stack.output()}"
        time.sleep(0.5)
        for queue, alert_id in list(unresolved.items()):
            response = http.get(f"/alerts/{alert_id}", headers=operator.headers)
            assert response.status_code == 200, response.text
            if response.json()["state"] == "resolved":
                del unresolved[queue]
