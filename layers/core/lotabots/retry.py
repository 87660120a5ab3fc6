"""Retry and back-off for SQS workers: the one rule every domain uses.

A worker that cannot finish a message now retries it later in one of two ways:

- **Keep the message, hide it** (`RetryLater` + `delay_message`): the record is reported as a
  batch item failure and `ChangeMessageVisibility` makes it visible again after the back-off.
  The queue's `maxReceiveCount` bounds the tries, then the DLQ (and its alarm) takes it. The
  job dispatcher does this while a GPU backend is unavailable.
- **Acknowledge it, keep the retry in the database** (an outbox): the row records when it is
  due and a schedule sends it to the queue again, with `DelaySeconds` (`send_delay`) when it
  is due before the next run. Alert notifications do this, so that a Slack outage of any length
  never exhausts `maxReceiveCount`.

Both wait `backoff_seconds`: base * 2^(attempt - 1), capped, never sooner than a floor the
remote side asked for (Slack's Retry-After).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from lotabots import aws
from lotabots.observability import logger

# SQS limits: a message can be hidden for at most 12 hours, delayed for at most 15 minutes.
MAX_VISIBILITY_TIMEOUT_S = 43_200
MAX_DELAY_S = 900


class RetryLater(Exception):
    """Leave the message on the queue; it becomes visible again after `delay_s`."""

    def __init__(self, message: str, delay_s: int) -> None:
        super().__init__(message)
        self.delay_s = delay_s


def backoff_seconds(attempt: int, *, base_s: float, cap_s: float, at_least: float | None = None) -> int:
    """Seconds to wait before try `attempt + 1`: base * 2^(attempt - 1), at most `cap_s`, and
    never less than `at_least` (a Retry-After), which may exceed the cap."""
    backoff = min(base_s * 2 ** (max(1, attempt) - 1), cap_s)
    return int(max(backoff, at_least or 0))


def send_delay(seconds: float) -> int:
    """`DelaySeconds` for a message due in `seconds` (SQS allows 0..900; later is the outbox's job)."""
    return int(min(MAX_DELAY_S, max(0, seconds)))


def delay_message(queue_url: str | None, receipt_handle: str, delay_s: int) -> bool:
    """Hide a received message for `delay_s` so that its retry waits the back-off.

    Returns False when it could not (no queue URL, or SQS refused): the message then comes back
    after the queue's own visibility timeout, later than asked but never lost.
    """
    if not queue_url:
        return False
    try:
        aws.client("sqs").change_message_visibility(
            QueueUrl=queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(delay_s, MAX_VISIBILITY_TIMEOUT_S)),
        )
    except ClientError:
        logger.exception("could not extend the message's visibility; SQS redelivers it after the default")
        return False
    return True
