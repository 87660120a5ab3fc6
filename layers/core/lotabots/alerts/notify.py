"""Delivering one notification to Slack, exactly once in effect.

Idempotency is keyed by the notification id, through a compare-and-set on the notification's
status in the database (chosen over Powertools Idempotency because the status row is also the
delivery log and the Slack message reference):

1. claim: `pending|enqueued|failed|uncertain → sending` (attempt + 1). A notification already
   `delivered`/`logged`/`recovered`/`superseded` is a redelivered queue message: skipped, no
   post. `sending` that is recent means another consumer is on it: retry later.
2. post (or `chat.update` the group's last message for a resolved notification), then record
   `delivered` with the channel and ts, plus a delivery row for the attempt.

The crash-after-post window (Slack accepted the post, the process died or the connection
dropped before the outcome was recorded) is closed by message metadata: every post carries
the notification id, and an attempt that follows an unknown outcome (`uncertain`, or a
`sending` claim older than ALERTS_NOTIFY_STALE_SECONDS) first looks for that post in the
channel's history (conversations.history, scope channels:history) and records it as
`recovered` instead of posting again. That needs the channel's id: a configured id, or the id
an earlier post to the same #name returned; without it (the very first post to a channel
given by name) the retry posts, so a duplicate is possible only in that narrow case.
In-call retries are limited accordingly: rate limits and 5xx are retried by slack_sdk (the
429 wait only if the Lambda has time for it), connection errors only when the request never
reached Slack; anything else fails the attempt and the queue redelivers it later.
"""

from __future__ import annotations

import http.client
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.error import URLError

from slack_sdk.errors import SlackApiError

from lotabots import aws
from lotabots import config as settings_module
from lotabots.alerts import repository, slack
from lotabots.config import AlertSettings
from lotabots.db import new_id, session_scope, utcnow
from lotabots.observability import logger

FINAL_STATUSES = frozenset({"delivered", "logged", "recovered", "superseded"})
CLAIMABLE_STATUSES = frozenset({"pending", "enqueued", "failed", "uncertain", "sending"})
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_UPDATE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})

# Set when Slack asks us to back off longer than this invocation can wait: the rest of the
# batch is deferred without calling Slack.
_rate_limited_until = 0.0


class DeliveryDeferred(Exception):
    """The notification was not delivered now; the queue must redeliver it (not dropped)."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outcome:
    status: str  # delivered | logged | recovered | superseded | duplicate
    slack_ts: str | None = None


@dataclass(frozen=True)
class _Claim:
    notification_id: str
    attempt: int
    channel: str
    kind: str
    payload: dict[str, Any]
    previous_message: tuple[str, str] | None
    channel_id: str | None
    uncertain_since: datetime | None


def _record(
    claim: _Claim,
    *,
    status: str,
    method: str,
    next_status: str,
    started: float,
    channel: str | None = None,
    slack_ts: str | None = None,
    error: str | None = None,
    http_status: int | None = None,
) -> None:
    now = utcnow()
    values: dict[str, Any] = {"status": next_status, "updated_at": now}
    if next_status in FINAL_STATUSES:
        values["delivered_at"] = now
    if slack_ts:
        values.update(slack_channel=channel, slack_ts=slack_ts)
    with session_scope() as session:
        if not repository.transition_notification(session, claim.notification_id, "sending", values):
            logger.warning("notification changed hands while delivering", extra={"id": claim.notification_id})
        repository.add_delivery(
            session,
            {
                "id": new_id(),
                "notification_id": claim.notification_id,
                "attempt": claim.attempt,
                "status": status,
                "method": method,
                "channel": channel or claim.channel,
                "slack_ts": slack_ts,
                "error": error[:1000] if error else None,
                "http_status": http_status,
                "duration_ms": int((time.monotonic() - started) * 1000),
                "at": now,
            },
        )


def _claim(notification_id: str, settings: AlertSettings) -> _Claim | Outcome:
    now = utcnow()
    with session_scope() as session:
        repository.write_transaction(session)
        row = repository.get_notification(session, notification_id)
        if row is None:
            raise LookupError(f"notification {notification_id} does not exist")
        if row.status in FINAL_STATUSES:
            return Outcome("duplicate", row.slack_ts)
        if row.status not in CLAIMABLE_STATUSES:
            raise RuntimeError(f"notification {notification_id} has unknown status {row.status!r}")
        uncertain_since: datetime | None = None
        if row.status == "sending":
            age = (now - row.sending_since).total_seconds() if row.sending_since else math.inf
            if age < settings.notify_stale_after_s:
                raise DeliveryDeferred(
                    "another delivery of this notification is in progress",
                    retry_after=int(settings.notify_stale_after_s - age) + 1,
                )
            uncertain_since = row.sending_since
        elif row.status == "uncertain":
            uncertain_since = row.sending_since
        if repository.newer_delivered_exists(session, row.group_id, row.seq):
            # A later snapshot of the same group already reached the channel.
            if repository.transition_notification(
                session, notification_id, row.status, {"status": "superseded", "updated_at": now}
            ):
                repository.add_delivery(
                    session,
                    {
                        "id": new_id(),
                        "notification_id": notification_id,
                        "attempt": row.attempts + 1,
                        "status": "superseded",
                        "method": "none",
                        "channel": row.channel,
                        "at": now,
                    },
                )
            return Outcome("superseded")
        attempt = row.attempts + 1
        if not repository.transition_notification(
            session,
            notification_id,
            row.status,
            {"status": "sending", "attempts": attempt, "sending_since": now, "updated_at": now},
        ):
            raise DeliveryDeferred("another consumer claimed this notification", retry_after=1)
        previous = (
            repository.last_posted_message(session, row.group_id, row.seq) if row.kind == "resolved" else None
        )
        channel_id = (
            row.channel
            if _CHANNEL_ID.match(row.channel)
            else repository.known_channel_id(session, row.channel)
        )
        return _Claim(
            notification_id=notification_id,
            attempt=attempt,
            channel=row.channel,
            kind=row.kind,
            payload=dict(row.payload),
            previous_message=previous,
            channel_id=channel_id,
            uncertain_since=uncertain_since,
        )


def _find_earlier_post(token: str, claim: _Claim, deadline: float) -> tuple[str, str] | None:
    """(channel id, ts) of a post of this notification whose outcome was never recorded."""
    if claim.uncertain_since is None or claim.channel_id is None or claim.previous_message is not None:
        return None
    try:
        response = slack.client(token, deadline=deadline, posting=False).conversations_history(
            channel=claim.channel_id,
            oldest=f"{claim.uncertain_since.timestamp() - 5:.6f}",
            limit=200,
            include_all_metadata=True,
        )
    except (SlackApiError, URLError, OSError, http.client.HTTPException) as exc:
        logger.warning(
            "could not look for an earlier post; posting again (a duplicate is possible)",
            extra={"notification_id": claim.notification_id, "error": str(exc)},
        )
        return None
    for message in response.get("messages") or []:
        meta = message.get("metadata") or {}
        if (
            meta.get("event_type") == slack.METADATA_EVENT_TYPE
            and (meta.get("event_payload") or {}).get("notification_id") == claim.notification_id
        ):
            return claim.channel_id, str(message.get("ts"))
    return None


def deliver(notification_id: str, *, deadline: float | None = None) -> Outcome:
    """Deliver one notification; raises DeliveryDeferred when it must be retried later."""
    global _rate_limited_until
    settings = settings_module.load(AlertSettings)
    deadline = deadline if deadline is not None else time.monotonic() + 60
    wait = _rate_limited_until - time.monotonic()
    if wait > 0:
        raise DeliveryDeferred("Slack rate limit in force", retry_after=math.ceil(wait))
    if deadline - time.monotonic() < settings.slack_timeout_s + 2:
        raise DeliveryDeferred("not enough time left in this invocation")
    token = slack.bot_token()  # before claiming: a failed secret read changes nothing
    claim = _claim(notification_id, settings)
    if isinstance(claim, Outcome):
        return claim
    started = time.monotonic()
    text, blocks = slack.render(claim.payload)
    if token is None:
        logger.info(
            "alert notification (no Slack bot token: logged, not sent)",
            extra={
                "notification_id": notification_id,
                "channel": claim.channel,
                "text": text,
                "blocks": blocks,
            },
        )
        _record(claim, status="logged", method="log", next_status="logged", started=started)
        return Outcome("logged")
    earlier = _find_earlier_post(token, claim, deadline)
    if earlier is not None:
        _record(
            claim,
            status="recovered",
            method="conversations.history",
            next_status="recovered",
            started=started,
            channel=earlier[0],
            slack_ts=earlier[1],
        )
        return Outcome("recovered", earlier[1])
    method = "chat.update" if claim.previous_message else "chat.postMessage"
    try:
        if claim.previous_message is not None:
            try:
                response = slack.client(token, deadline=deadline, posting=False).chat_update(
                    channel=claim.previous_message[0], ts=claim.previous_message[1], text=text, blocks=blocks
                )
            except SlackApiError as exc:
                if exc.response.get("error") not in _UPDATE_GONE:
                    raise
                method = "chat.postMessage"  # the message to update is gone: post a new one
                response = _post(token, claim, text, blocks, deadline)
        else:
            response = _post(token, claim, text, blocks, deadline)
    except SlackApiError as exc:
        status_code = int(exc.response.status_code)
        retry_after = slack.retry_after_seconds(exc.response.headers) if status_code == 429 else None
        if retry_after:
            _rate_limited_until = time.monotonic() + retry_after
        error = str(exc.response.get("error") or f"HTTP {status_code}")
        _record(
            claim,
            status="failed",
            method=method,
            next_status="failed",
            started=started,
            error=error,
            http_status=status_code,
        )
        raise DeliveryDeferred(f"Slack refused the message: {error}", retry_after=retry_after) from None
    except URLError as exc:
        # Raised before the request was sent (connect refused, DNS, connect timeout).
        _record(claim, status="failed", method=method, next_status="failed", started=started, error=str(exc))
        raise DeliveryDeferred(f"Slack unreachable: {exc.reason}") from None
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        # The request may have reached Slack: the next attempt checks before posting again.
        _record(
            claim,
            status="failed",
            method=method,
            next_status="uncertain" if method == "chat.postMessage" else "failed",
            started=started,
            error=f"{type(exc).__name__}: {exc}",
        )
        raise DeliveryDeferred(f"no answer from Slack: {type(exc).__name__}") from None
    channel = str(response.get("channel") or claim.channel)
    ts = str(response.get("ts"))
    _record(
        claim,
        status="delivered",
        method=method,
        next_status="delivered",
        started=started,
        channel=channel,
        slack_ts=ts,
        http_status=int(response.status_code),
    )
    return Outcome("delivered", ts)


def _post(token: str, claim: _Claim, text: str, blocks: list[dict[str, Any]], deadline: float) -> Any:
    return slack.client(token, deadline=deadline, posting=True).chat_postMessage(
        channel=claim.channel,
        text=text,
        blocks=blocks,
        metadata=slack.metadata(claim.notification_id),
        unfurl_links=False,
        unfurl_media=False,
    )


def redelivery_delay(exc: DeliveryDeferred, receive_count: int) -> int:
    """Seconds until the queue hands the message out again: Retry-After or exponential backoff."""
    settings = settings_module.load(AlertSettings)
    backoff = settings.notify_retry_base_s * 2 ** (max(1, receive_count) - 1)
    return int(min(max(exc.retry_after or 0, backoff), settings.notify_retry_max_s))


def delay_redelivery(receipt_handle: str, seconds: int) -> None:
    """Shorten/extend the in-flight message's visibility so the retry comes when it should."""
    queue_url = settings_module.load(AlertSettings).notify_queue_url
    if not queue_url:
        return
    try:
        aws.client("sqs").change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
    except Exception:  # the queue's own visibility timeout still brings it back
        logger.warning("could not set the redelivery delay", exc_info=True)


def reset() -> None:
    """Forget the rate-limit pause (tests)."""
    global _rate_limited_until
    _rate_limited_until = 0.0
