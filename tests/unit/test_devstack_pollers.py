"""The local event-source mappings: SQS events shaped as Lambda sends them, only successes
deleted (partial batch failures), nothing deleted when the handler raises, and moto's redrive
moving a message that keeps failing to the DLQ after maxReceiveCount."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.pollers import QueuePoller, failed_message_ids, sqs_event
from devstack.runtime import LocalFunction
from lotabots import topology

MAX_RECEIVES = 3


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queues(sqs: Any) -> tuple[str, str]:
    dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName="work",
        Attributes={
            "VisibilityTimeout": "300",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}
            ),
        },
    )["QueueUrl"]
    return url, dlq


class Recorder:
    """A worker handler: fails the records whose body is in `fail`, or raises."""

    def __init__(self, fail: set[str] | None = None, raises: bool = False) -> None:
        self.fail = fail or set()
        self.raises = raises
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], _context: Any) -> Any:
        self.events.append(event)
        if self.raises:
            raise RuntimeError("handler crashed")
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] in self.fail]
        return {"batchItemFailures": failures}


def _poller(sqs: Any, url: str, handler: Recorder, batch_size: int = 10) -> QueuePoller:
    function = LocalFunction(topology.function("document_ingest"), handler)
    return QueuePoller(
        function,
        topology.QueueTrigger("work", batch_size=batch_size),
        sqs=sqs,
        queue_url=url,
        region="us-east-1",
        stop=threading.Event(),
        retry_visibility_s=0,
    )


def _bodies(sqs: Any, url: str) -> list[str]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
        "Messages", []
    )
    return sorted(m["Body"] for m in messages)


def test_batch_item_failure_semantics_match_lambda() -> None:
    ids = ["a", "b", "c"]
    assert failed_message_ids(None, ids) == set()
    assert failed_message_ids({}, ids) == set()
    assert failed_message_ids({"batchItemFailures": []}, ids) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == {"b"}
    # An identifier Lambda cannot match fails the whole batch.
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, ids) == set(ids)
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids) == set(ids)
    assert failed_message_ids({"batchItemFailures": "b"}, ids) == set(ids)


def test_sqs_event_records_look_like_lambdas() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "rh",
        "Body": "hello",
        "MD5OfBody": "md5",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": "x"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    }
    record = sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:work", "us-east-1")["Records"][0]
    assert record["messageId"] == "m1" and record["receiptHandle"] == "rh" and record["body"] == "hello"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["kind"] == {
        "dataType": "String",
        "stringValue": "x",
        "stringListValues": [],
        "binaryListValues": [],
    }
    assert base64.b64decode(record["messageAttributes"]["blob"]["binaryValue"]) == b"\x00\x01"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":work")
    assert record["awsRegion"] == "us-east-1"


def test_only_successful_messages_are_deleted(sqs: Any, queues: tuple[str, str]) -> None:
    url, _ = queues
    for body in ("ok-1", "bad", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    handler = Recorder(fail={"bad"})
    received, failed = _poller(sqs, url, handler).poll_once(wait_seconds=0)
    assert (received, failed) == (3, 1)
    record = handler.events[0]["Records"][0]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert _bodies(sqs, url) == ["bad"]


def test_a_handler_that_returns_nothing_consumes_the_whole_batch(sqs: Any, queues: tuple[str, str]) -> None:
    url, _ = queues
    sqs.send_message(QueueUrl=url, MessageBody="one")
    sqs.send_message(QueueUrl=url, MessageBody="two")
    function = LocalFunction(topology.function("document_ingest"), lambda _e, _c: None)
    poller = _poller(sqs, url, Recorder())
    poller.function = function
    assert poller.poll_once(wait_seconds=0) == (2, 0)
    assert _bodies(sqs, url) == []


def test_nothing_is_deleted_when_the_handler_raises(sqs: Any, queues: tuple[str, str]) -> None:
    url, _ = queues
    sqs.send_message(QueueUrl=url, MessageBody="one")
    sqs.send_message(QueueUrl=url, MessageBody="two")
    assert _poller(sqs, url, Recorder(raises=True)).poll_once(wait_seconds=0) == (2, 2)
    assert _bodies(sqs, url) == ["one", "two"]


def test_a_message_that_keeps_failing_ends_in_the_dlq(sqs: Any, queues: tuple[str, str]) -> None:
    url, dlq = queues
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    handler = Recorder(fail={"poison"})
    poller = _poller(sqs, url, handler)
    for _ in range(MAX_RECEIVES):
        assert poller.poll_once(wait_seconds=0) == (1, 1)
    counts = [e["Records"][0]["attributes"]["ApproximateReceiveCount"] for e in handler.events]
    assert counts == [str(n) for n in range(1, MAX_RECEIVES + 1)]
    # The next receive moves it (SQS redrive) instead of delivering it again.
    assert poller.poll_once(wait_seconds=0) == (0, 0)
    assert len(handler.events) == MAX_RECEIVES
    assert _bodies(sqs, dlq) == ["poison"]
    assert _bodies(sqs, url) == []


def test_batches_respect_the_triggers_batch_size(sqs: Any, queues: tuple[str, str]) -> None:
    url, _ = queues
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    handler = Recorder()
    poller = _poller(sqs, url, handler, batch_size=2)
    received = [poller.poll_once(wait_seconds=0)[0] for _ in range(4)]
    assert received == [2, 2, 1, 0]
    assert all(len(e["Records"]) <= 2 for e in handler.events)


def test_the_poller_thread_delivers_until_asked_to_stop(sqs: Any, queues: tuple[str, str]) -> None:
    url, _ = queues
    handler = Recorder()
    poller = _poller(sqs, url, handler)
    poller.start()
    sqs.send_message(QueueUrl=url, MessageBody="x")
    deadline = time.monotonic() + 10
    while not handler.events and time.monotonic() < deadline:
        time.sleep(0.02)
    poller.stop_event.set()
    poller.join(5)
    assert not poller.is_alive()
    assert [r["body"] for e in handler.events for r in e["Records"]] == ["x"]
    assert _bodies(sqs, url) == []
