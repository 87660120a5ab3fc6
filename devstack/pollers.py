"""SQS pollers that play Lambda's event-source mappings.

For each queue trigger in the topology a thread long-polls the queue, hands the batch to the
function as an SQS event and deletes what succeeded: every message unless the handler
reported `batchItemFailures` (then all but those), none if the handler raised. Failed messages
become visible again (after a short local retry delay) and moto's redrive policy moves them to
the DLQ once `maxReceiveCount` is reached, exactly as SQS does.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import traceback
from typing import Any

from devstack.runtime import Invocable
from lotabots import topology

log = logging.getLogger("devstack.pollers")

WAIT_SECONDS = 1  # short long-polls so that shutdown is quick


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda spells it (camelCase keys, binary as base64)."""
    converted: dict[str, Any] = {
        "dataType": value.get("DataType"),
        "stringListValues": [],
        "binaryListValues": [],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {k: _attribute(v) for k, v in (message.get("MessageAttributes") or {}).items()},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [sqs_record(m, queue_arn, region) for m in messages]}


def failed_message_ids(response: Any, batch_ids: list[str]) -> set[str]:
    """Which messages Lambda would keep, given the handler's response (ReportBatchItemFailures).

    No `batchItemFailures` (or an empty list) means the whole batch succeeded; an entry that
    is malformed or names a message outside the batch fails the whole batch, as in Lambda.
    """
    if not isinstance(response, dict) or response.get("batchItemFailures") is None:
        return set()
    failures = response["batchItemFailures"]
    if not isinstance(failures, list):
        return set(batch_ids)
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in batch_ids:
            return set(batch_ids)
        failed.add(str(identifier))
    return failed


class QueuePoller(threading.Thread):
    """One event-source mapping: queue → function."""

    def __init__(
        self,
        function: Invocable,
        trigger: topology.QueueTrigger,
        *,
        sqs: Any,
        queue_url: str,
        region: str,
        stop: threading.Event,
        retry_visibility_s: int = 5,
    ) -> None:
        super().__init__(name=f"poller-{trigger.queue}", daemon=True)
        self.function = function
        self.trigger = trigger
        self.sqs = sqs
        self.queue_url = queue_url
        self.region = region
        self.stop_event = stop
        self.retry_visibility_s = retry_visibility_s
        self._queue_arn: str | None = None

    @property
    def queue_arn(self) -> str:
        if self._queue_arn is None:
            attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
            self._queue_arn = str(attributes["Attributes"]["QueueArn"])
        return self._queue_arn

    def poll_once(self, wait_seconds: int = WAIT_SECONDS) -> tuple[int, int]:
        """Receive one batch and process it; returns (received, failed)."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(self.trigger.batch_size, 10)),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0, 0
        ids = [m["MessageId"] for m in messages]
        started = time.monotonic()
        try:
            response = self.function.invoke(sqs_event(messages, self.queue_arn, self.region))
            failed = failed_message_ids(response, ids)
            outcome = "ok" if not failed else f"{len(failed)} failed"
        except Exception:
            log.error(
                "%s raised on a batch from %s:\n%s",
                self.function.name,
                self.trigger.queue,
                traceback.format_exc(),
            )
            failed = set(ids)
            outcome = "raised"
        succeeded = [m for m in messages if m["MessageId"] not in failed]
        if succeeded:
            self._delete_messages(succeeded)
        retried = [m for m in messages if m["MessageId"] in failed]
        if retried and self.retry_visibility_s >= 0:
            self._delay_retry(retried)
        log.info(
            "%s -> %s: %d message(s), %s, %.1f ms",
            self.trigger.queue,
            self.function.name,
            len(messages),
            outcome,
            (time.monotonic() - started) * 1000,
        )
        return len(messages), len(failed)

    def _delete_messages(self, messages: list[dict[str, Any]]) -> None:
        response = self.sqs.delete_message_batch(
            QueueUrl=self.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        for failure in response.get("Failed", []):
            log.error("could not delete a message from %s: %s", self.trigger.queue, failure)

    def _delay_retry(self, messages: list[dict[str, Any]]) -> None:
        """Make failed messages visible again after a short delay instead of the queue's full
        visibility timeout (minutes), so retries and the DLQ can be watched locally."""
        for message in messages:
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self.retry_visibility_s,
                )
            except Exception as exc:  # the message keeps the queue's visibility timeout
                log.warning("could not shorten the retry delay on %s: %s", self.trigger.queue, exc)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception:
                if self.stop_event.is_set():
                    break
                log.error("polling %s failed:\n%s", self.trigger.queue, traceback.format_exc(limit=2))
                self.stop_event.wait(1.0)
