"""The one retry/back-off module that the SQS workers (job dispatch, alert notifications) share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from lotabots import aws, retry


@pytest.fixture
def sqs_queue() -> Iterator[str]:
    with mock_aws():
        aws.reset()
        yield aws.client("sqs").create_queue(QueueName="work", Attributes={"VisibilityTimeout": "60"})[
            "QueueUrl"
        ]
    aws.reset()


def test_backoff_doubles_per_attempt_and_is_capped() -> None:
    """Attempt n waits base * 2^(n-1) up to the cap; attempt 0 or less counts as the first."""
    waits = [retry.backoff_seconds(n, base_s=10, cap_s=300) for n in (0, 1, 2, 3, 5, 6, 40)]
    assert waits == [10, 10, 20, 40, 160, 300, 300]


def test_backoff_never_sooner_than_the_remote_side_asked() -> None:
    """A Retry-After above the back-off wins, even above the cap; below it changes nothing."""
    assert retry.backoff_seconds(1, base_s=10, cap_s=300, at_least=120) == 120
    assert retry.backoff_seconds(6, base_s=10, cap_s=300, at_least=30) == 300
    assert retry.backoff_seconds(6, base_s=10, cap_s=300, at_least=3600) == 3600


def test_send_delay_stays_within_what_sqs_accepts() -> None:
    """DelaySeconds is 0..900: past dues are sent now, far ones wait the maximum."""
    assert [retry.send_delay(s) for s in (-5, 0, 42, 900, 5000)] == [0, 0, 42, 900, 900]


def test_delay_message_hides_the_message_for_the_backoff(sqs_queue: str) -> None:
    """A delayed message is not received again before its back-off ends."""
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=sqs_queue, MessageBody="job")
    received = sqs.receive_message(QueueUrl=sqs_queue, VisibilityTimeout=0)["Messages"][0]
    assert retry.delay_message(sqs_queue, received["ReceiptHandle"], 120) is True
    assert sqs.receive_message(QueueUrl=sqs_queue).get("Messages", []) == []


def test_delay_message_without_a_queue_or_with_a_bad_handle_does_not_raise(sqs_queue: str) -> None:
    """A failed visibility change leaves the queue's own timeout in charge; the caller goes on."""
    assert retry.delay_message(None, "handle", 30) is False
    assert retry.delay_message(sqs_queue, "not-a-receipt-handle", 30) is False


def test_retry_later_carries_its_delay() -> None:
    """The exception a worker raises to have the message come back later says when."""
    exc = retry.RetryLater("backend down", delay_s=40)
    assert exc.delay_s == 40 and str(exc) == "backend down"
