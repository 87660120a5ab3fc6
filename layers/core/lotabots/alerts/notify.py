"""Delivering one notification to Slack, exactly once in effect, however long Slack is down.

Idempotency is keyed by the notification id, through a compare-and-set on the notification's
status in the database (chosen over Powertools Idempotency because the status row is also the
delivery log, the Slack message reference and the outbox's retry schedule):

1. claim: `pending|enqueued|failed|uncertain → sending` (attempt + 1). A notification already
   `delivered`/`logged`/`recovered`/`superseded` is a redelivered queue message: skipped, no
   post. `sending` that is recent means another consumer is on it: nothing to do here.
2. post (or `chat.update` the group's last message for a resolved notification), then record
   `delivered` with the channel and ts, plus a delivery row for the attempt. In the same
   transaction the group's bookkeeping follows the accepted message (`repository.
   apply_accepted`): what the group has notified is only ever what Slack accepted.

A notification is done only when Slack accepted it (or, without a bot token, it was logged).
A failed attempt records `failed` (or `uncertain`) with `next_attempt_at` (capped exponential
backoff, at least Slack's Retry-After) and the queue message is acknowledged: the retry
belongs to the outbox, which the alert_flush schedule sends again when it is due (see
`lotabots.alerts.flush`), so an outage of any length delays notifications and never drops
them, and the notify queue's DLQ only ever holds messages no attempt can handle (unknown
notification, malformed body, the database unreachable for every receive). Even those are not
lost: an undone notification whose message never came back is sent again after
ALERTS_NOTIFY_RESEND_AFTER_SECONDS.

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
reached Slack; anything else fails the attempt and the outbox retries it later.
"""

from __future__ import annotations

import http.client
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.error import URLError

from slack_sdk.errors import SlackApiError

from lotabots import config as settings_module
from lotabots import retry
from lotabots.alerts import repository, slack
from lotabots.config import AlertSettings
from lotabots.db import new_id, session_scope, utcnow
from lotabots.observability import logger

FINAL_STATUSES = frozenset({*repository.ACCEPTED_STATUSES, "superseded"})
CLAIMABLE_STATUSES = frozenset({"pending", "enqueued", "failed", "uncertain", "sending"})
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_UPDATE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})

# Set when Slack asks us to back off longer than this invocation can wait: the rest of the
# batch is deferred without calling Slack.
_rate_limited_until = 0.0


class _InProgress(Exception):
    """Another consumer holds a recent claim on the notification: it records the outcome."""


@dataclass(frozen=True)
class Outcome:
    # delivered | logged | recovered | superseded | duplicate: done (or already done);
    # failed: Slack did not accept it, retried at retry_at; deferred: not attempted now
    # (rate-limit pause, no time left, another consumer on it), retried by the outbox.
    status: str
    slack_ts: str | None = None
    retry_at: datetime | None = None
    reason: str | None = None

    @property
    def done(self) -> bool:
        return self.status not in ("failed", "deferred")


@dataclass(frozen=True)
class _Claim:
    notification_id: str
    group_id: str
    seq: int
    attempt: int
    channel: str
    kind: str
    payload: dict[str, Any]
    previous_message: tuple[str, str] | None
    channel_id: str | None
    uncertain_since: datetime | None


def retry_delay(attempt: int, retry_after: int | None = None) -> int:
    """Seconds until a failed notification is tried again (`lotabots.retry.backoff_seconds` with
    the ALERTS_NOTIFY_RETRY_* settings), never sooner than Slack's Retry-After."""
    settings = settings_module.load(AlertSettings)
    return retry.backoff_seconds(
        attempt, base_s=settings.notify_retry_base_s, cap_s=settings.notify_retry_max_s, at_least=retry_after
    )


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
    retry_after: int | None = None,
) -> datetime | None:
    """Record the attempt; returns when it is retried (None: done)."""
    now = utcnow()
    values: dict[str, Any] = {"status": next_status, "updated_at": now}
    retry_at: datetime | None = None
    if next_status in FINAL_STATUSES:
        values.update(delivered_at=now, next_attempt_at=None)
    else:
        retry_at = now + timedelta(seconds=retry_delay(claim.attempt, retry_after))
        values["next_attempt_at"] = retry_at
    if slack_ts:
        values.update(slack_channel=channel, slack_ts=slack_ts)
    with session_scope() as session:
        if next_status in repository.ACCEPTED_STATUSES:
            # Group row lock first (the order a flush takes them), then the notification.
            repository.apply_accepted(session, claim.group_id, claim.seq, claim.notification_id, now)
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
    return retry_at


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
                raise _InProgress("another delivery of this notification is in progress")
            uncertain_since = row.sending_since
        elif row.status == "uncertain":
            uncertain_since = row.sending_since
        if repository.newer_delivered_exists(session, row.group_id, row.seq):
            # A later snapshot of the same group already reached the channel.
            undone = repository.UndoneNotification(
                row.id, row.seq, row.status, row.kind, row.attempts, row.channel
            )
            repository.supersede(session, [undone], now, posted_too=True)
            return Outcome("superseded")
        attempt = row.attempts + 1
        # Should this consumer die mid-send, the outbox sends it again once the claim is stale.
        stale_at = now + timedelta(seconds=settings.notify_stale_after_s)
        if not repository.transition_notification(
            session,
            notification_id,
            row.status,
            {
                "status": "sending",
                "attempts": attempt,
                "sending_since": now,
                "next_attempt_at": stale_at,
                "updated_at": now,
            },
        ):
            raise _InProgress("another consumer claimed this notification")
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
            group_id=row.group_id,
            seq=row.seq,
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


def _defer(notification_id: str, wait_s: float, reason: str) -> Outcome:
    retry_at = utcnow() + timedelta(seconds=math.ceil(max(0.0, wait_s)))
    with session_scope() as session:
        if not repository.defer_notification(session, notification_id, retry_at):
            row = repository.get_notification(session, notification_id)
            if row is None:  # a poison message stays poison, even during a pause
                raise LookupError(f"notification {notification_id} does not exist")
            if row.status in FINAL_STATUSES:
                return Outcome("duplicate", row.slack_ts)
    return Outcome("deferred", retry_at=retry_at, reason=reason)


def deliver(notification_id: str, *, deadline: float | None = None) -> Outcome:
    """Deliver one notification, or record when it is tried again (the outbox retries it).

    Raises only when no attempt can be made at all (unknown notification, database errors):
    the queue redelivers that message, and its DLQ holds it if it never succeeds.
    """
    global _rate_limited_until
    settings = settings_module.load(AlertSettings)
    deadline = deadline if deadline is not None else time.monotonic() + 60
    wait = _rate_limited_until - time.monotonic()
    if wait > 0:
        return _defer(notification_id, wait, "Slack rate limit in force")
    if deadline - time.monotonic() < settings.slack_timeout_s + 2:
        return _defer(notification_id, 0, "not enough time left in this invocation")
    token = slack.bot_token()  # before claiming: a failed secret read changes nothing
    try:
        claim = _claim(notification_id, settings)
    except _InProgress as exc:
        return Outcome("deferred", reason=str(exc))
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
        retry_at = _record(
            claim,
            status="failed",
            method=method,
            next_status="failed",
            started=started,
            error=error,
            http_status=status_code,
            retry_after=retry_after,
        )
        return Outcome("failed", retry_at=retry_at, reason=f"Slack refused the message: {error}")
    except URLError as exc:
        # Raised before the request was sent (connect refused, DNS, connect timeout).
        retry_at = _record(
            claim, status="failed", method=method, next_status="failed", started=started, error=str(exc)
        )
        return Outcome("failed", retry_at=retry_at, reason=f"Slack unreachable: {exc.reason}")
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        # The request may have reached Slack: the next attempt checks before posting again.
        retry_at = _record(
            claim,
            status="failed",
            method=method,
            next_status="uncertain" if method == "chat.postMessage" else "failed",
            started=started,
            error=f"{type(exc).__name__}: {exc}",
        )
        return Outcome("failed", retry_at=retry_at, reason=f"no answer from Slack: {type(exc).__name__}")
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


def reset() -> None:
    """Forget the rate-limit pause (tests)."""
    global _rate_limited_until
    _rate_limited_until = 0.0
