"""The local stack's own machinery end to end: the event-source mapping retries a message
that keeps failing, SQS redrive moves it to the DLQ, the DLQ alarm stand-in fires, and the
alerting pipeline turns it into an alert an operator sees over HTTP (resolved once the DLQ
is drained)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.harness import Stack, User

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ALARM = "lotabots-local-document-ingest-dlq-not-empty"


def _dlq_depth(stack: Stack, queue: str) -> int:
    sqs = stack.aws("sqs")
    url = sqs.get_queue_url(QueueName=f"{queue}-dlq")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_a_message_that_keeps_failing_ends_in_the_dlq_and_becomes_an_alert(
    stack: Stack, http: httpx.Client, make_user: Callable[..., User]
) -> None:
    operator = make_user("operator")
    queue_url = stack.info["queues"]["document-ingest"]
    stack.aws("sqs").send_message(QueueUrl=queue_url, MessageBody="this is not an S3 notification")

    deadline = time.monotonic() + 60
    while _dlq_depth(stack, "document-ingest") == 0:
        assert time.monotonic() < deadline, f"the poison message never reached the DLQ:\n{stack.output()}"
        time.sleep(0.5)

    found: list[dict[str, object]] = []
    while not found:
        assert time.monotonic() < deadline, f"no alert for the DLQ alarm:\n{stack.output()}"
        response = http.get("/alerts", params={"state": "active"}, headers=operator.headers)
        assert response.status_code == 200, response.text
        found = [a for a in response.json()["alerts"] if a["labels"].get("alertname") == ALARM]
        time.sleep(0.5)
    assert found[0]["labels"]["source"] == "cloudwatch"
    assert "document-ingest-dlq" in found[0]["annotations"]["reason"]

    # Draining the DLQ returns the alarm to OK, which resolves the alert.
    sqs = stack.aws("sqs")
    sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName="document-ingest-dlq")["QueueUrl"])
    state = found[0]["state"]
    while state != "resolved":
        assert time.monotonic() < deadline, f"the alert was not resolved:\n{stack.output()}"
        time.sleep(0.5)
        response = http.get(f"/alerts/{found[0]['id']}", headers=operator.headers)
        assert response.status_code == 200, response.text
        state = response.json()["state"]
