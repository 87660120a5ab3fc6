"""Slack delivery against the local mock Slack API: Block Kit limits, retries on 429/500/
timeouts/dropped connections (recorded with their next attempt, message acknowledged, sent
again by the outbox: delayed, never dropped), no duplicate post on redelivery or after a crash
between post and record, chat.update on resolve, token from Secrets Manager."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from devstack.slack_mock import MockSlack
from lotabots import aws, config
from lotabots.alerts import flush, notify, service
from lotabots.alerts.engine import normalise_posted
from lotabots.alerts.models import AlertDelivery, AlertNotification
from lotabots.db import session_scope
from tests.support import alerts_helpers
from tests.support.alerts_helpers import (
    AUDITOR,
    OPERATOR,
    receive_all,
    reset_alerting_caches,
    run_worker,
    sqs_event,
)
from tests.support.api import api_event, invoke

CHANNEL_ID = "C0ALERTS01"
CONFIG_WITH_CHANNEL_ID = f"""
route:
  receiver: ops
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: ops
    channel: {CHANNEL_ID}
"""

alerting = alerts_helpers.alerting  # the fixtures
slack = alerts_helpers.slack


@pytest.fixture
def channel_id_config(slack: MockSlack, monkeypatch: pytest.MonkeyPatch) -> str:
    """Routes from an SSM parameter whose receiver is a channel id (enables crash recovery)."""
    aws.client("ssm").put_parameter(
        Name="/lotabots/alerts/config", Value=CONFIG_WITH_CHANNEL_ID, Type="String"
    )
    monkeypatch.setenv("ALERTS_CONFIG_PARAMETER", "/lotabots/alerts/config")
    reset_alerting_caches()
    return CHANNEL_ID


def _fire(labels: dict[str, str], at: datetime | None = None, **annotations: str) -> tuple[str, str]:
    """Ingest one alert and flush its group; returns (alert id, queued message body)."""
    at = at or datetime.now(UTC) - timedelta(minutes=1)
    alert = normalise_posted(labels, annotations, None, None, now=at, resolve_timeout=0)
    with session_scope() as session:
        [accepted] = service.ingest(session, [alert], now=at).alerts
    flush.flush_due(now=at + timedelta(seconds=30))
    [message] = receive_all(config.load(config.AlertSettings).notify_queue_url or "")
    return accepted.id, message["Body"]


def _notify(*bodies: str, receive_count: int = 1) -> dict[str, Any]:
    return run_worker(
        "alert_notify", sqs_event(list(bodies), receive_count=receive_count, queue="alert-notify")
    )


def _resend(after: timedelta = timedelta(hours=1)) -> list[str]:
    """What the alert_flush schedule sends again once the retries are due (bodies)."""
    flush.resend_due(now=datetime.now(UTC) + after)
    return [m["Body"] for m in receive_all(config.load(config.AlertSettings).notify_queue_url or "")]


def _row(body: str) -> AlertNotification:
    with session_scope() as session:
        row = session.get(AlertNotification, json.loads(body)["notification_id"])
        assert row is not None
        session.expunge(row)
        return row


def _deliveries(alert_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The whole delivery log, read `limit` at a time by cursor."""
    found: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": str(limit)}
    while True:
        event = api_event("GET", f"/alerts/{alert_id}/deliveries", principal=AUDITOR, query=query)
        status, _, body = invoke("alerts", event)
        assert status == 200, body
        assert len(body["items"]) <= limit
        found += body["items"]
        if body["next_cursor"] is None:
            return found
        query = {"limit": str(limit), "cursor": body["next_cursor"]}


def test_posts_block_kit_to_the_route_channel_and_records_it(slack: MockSlack) -> None:
    alert_id, body = _fire(
        {"alertname": "HighCPU", "source": "api", "severity": "warning"}, summary="CPU at 97%"
    )
    assert _notify(body) == {"batchItemFailures": []}
    [post] = slack.posts()
    assert post.authorization == "Bearer xoxb-test-token"
    assert post.payload["channel"] == "#lotabots-alerts"
    assert post.payload["blocks"][0]["type"] == "header"
    assert "[FIRING:1] HighCPU" in post.payload["blocks"][0]["text"]["text"]
    assert "CPU at 97%" in json.dumps(post.payload["blocks"])
    assert post.payload["metadata"]["event_payload"]["notification_id"] == json.loads(body)["notification_id"]
    [delivery] = _deliveries(alert_id)
    assert delivery["status"] == "delivered" and delivery["slack_ts"] == slack.messages[0].ts
    assert delivery["channel"] == slack.channel_id("#lotabots-alerts")


def test_redelivered_message_never_posts_twice(slack: MockSlack) -> None:
    _, body = _fire({"alertname": "Dup", "source": "api"})
    assert _notify(body, body) == {"batchItemFailures": []}  # same message twice in one batch
    assert _notify(body, receive_count=2) == {"batchItemFailures": []}  # and again later
    assert len(slack.posts()) == 1


def test_rate_limit_within_budget_is_retried_in_the_call(slack: MockSlack) -> None:
    alert_id, body = _fire({"alertname": "Limited", "source": "api"})
    slack.fail_next("rate_limit", retry_after=1)
    assert _notify(body) == {"batchItemFailures": []}
    assert [r.fault for r in slack.calls("chat.postMessage")] == ["rate_limit", None]
    assert [d["status"] for d in _deliveries(alert_id)] == ["delivered"]


def test_rate_limit_beyond_budget_is_retried_by_the_outbox_after_retry_after(slack: MockSlack) -> None:
    alert_id, body = _fire({"alertname": "Limited", "source": "api"})
    slack.fail_next("rate_limit", retry_after=120)  # longer than the invocation has left
    before = datetime.now(UTC)
    assert _notify(body) == {"batchItemFailures": []}  # acknowledged: the outbox owns the retry
    [failed] = _deliveries(alert_id)
    assert failed["status"] == "failed" and failed["http_status"] == 429
    row = _row(body)
    assert row.status == "failed" and row.next_attempt_at is not None
    assert 119 <= (row.next_attempt_at - before).total_seconds() <= 125  # not before Retry-After
    # Later records are deferred without calling Slack while the limit holds.
    outcome = notify.deliver(json.loads(body)["notification_id"])
    assert outcome.status == "deferred" and outcome.retry_at is not None
    assert (outcome.retry_at - before).total_seconds() > 100
    assert len(slack.requests) == 1
    assert flush.resend_due() == 0  # not due yet
    notify.reset()  # the Retry-After has passed
    assert _notify(*_resend()) == {"batchItemFailures": []}
    assert [d["status"] for d in _deliveries(alert_id)] == ["failed", "delivered"]
    assert [d["status"] for d in _deliveries(alert_id, limit=1)] == ["failed", "delivered"]  # by cursor
    assert len(slack.posts()) == 1
    assert _row(body).next_attempt_at is None  # done: never sent again
    assert _resend() == []


def test_during_a_rate_limit_pause_poison_still_fails_and_done_ones_stay_done(slack: MockSlack) -> None:
    _, done = _fire({"alertname": "Done", "source": "api"})
    assert _notify(done) == {"batchItemFailures": []}
    _, body = _fire({"alertname": "Limited", "source": "api"})
    slack.fail_next("rate_limit", retry_after=120)
    unknown = json.dumps({"notification_id": "0" * 32})
    result = _notify(body, unknown, done)  # the 429 starts the pause; the rest is handled within it
    assert len(result["batchItemFailures"]) == 1  # only the unknown notification (to the DLQ path)
    assert _row(done).status == "delivered" and _row(body).status == "failed"
    assert len(slack.posts()) == 1


def test_server_errors_are_retried_in_the_call_then_by_the_outbox(slack: MockSlack) -> None:
    alert_id, body = _fire({"alertname": "Flaky", "source": "api"})
    slack.fail_next("server_error", count=1)
    assert _notify(body) == {"batchItemFailures": []}  # one 500 absorbed by the retry handler
    assert len(slack.posts()) == 1

    alert_id, body = _fire({"alertname": "Down", "source": "api"})
    slack.fail_next("server_error", count=3)  # the first try and both retries fail
    assert _notify(body) == {"batchItemFailures": []}
    assert [(d["status"], d["http_status"]) for d in _deliveries(alert_id)] == [("failed", 500)]
    assert _row(body).status == "failed"
    assert _notify(*_resend()) == {"batchItemFailures": []}
    assert [d["status"] for d in _deliveries(alert_id)] == ["failed", "delivered"]


def test_ok_false_is_recorded_and_retried(slack: MockSlack) -> None:
    alert_id, body = _fire({"alertname": "NoChannel", "source": "api"})
    slack.fail_next("ok_false", error="not_in_channel")
    assert _notify(body) == {"batchItemFailures": []}
    [failed] = _deliveries(alert_id)
    assert failed["error"] == "not_in_channel" and failed["http_status"] == 200
    assert _notify(*_resend()) == {"batchItemFailures": []}
    assert len(slack.posts()) == 1


def test_dropped_connection_after_the_post_is_recovered_without_reposting(
    slack: MockSlack, channel_id_config: str
) -> None:
    alert_id, body = _fire({"alertname": "Dropped", "source": "api"})
    slack.fail_next("drop", method="chat.postMessage", process=True)  # posted, answer lost
    assert _notify(body) == {"batchItemFailures": []}
    assert _row(body).status == "uncertain"
    assert _notify(*_resend()) == {"batchItemFailures": []}
    assert len(slack.messages) == 1  # found in the channel history, not posted again
    assert [d["status"] for d in _deliveries(alert_id)] == ["failed", "recovered"]
    assert len(slack.calls("conversations.history")) == 1


def test_dropped_connection_before_the_post_posts_on_retry(slack: MockSlack, channel_id_config: str) -> None:
    _, body = _fire({"alertname": "Dropped", "source": "api"})
    slack.fail_next("drop", method="chat.postMessage", process=False)
    assert _notify(body) == {"batchItemFailures": []}
    assert _notify(*_resend()) == {"batchItemFailures": []}
    assert len(slack.messages) == 1


def test_timeout_is_retried_without_duplicate(
    slack: MockSlack, channel_id_config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_TIMEOUT_SECONDS", "1")
    alerts_helpers.reset_alerting_caches()
    alert_id, body = _fire({"alertname": "Slow", "source": "api"})
    slack.fail_next("slow", method="chat.postMessage", delay=1.5)  # client timeout is 1 s
    assert _notify(body) == {"batchItemFailures": []}
    assert "TimeoutError" in (_deliveries(alert_id)[0]["error"] or "")
    import time

    time.sleep(0.8)  # the slow request completes on the server side
    assert _notify(*_resend()) == {"batchItemFailures": []}
    assert len(slack.messages) == 1


def test_crash_between_post_and_record_does_not_post_twice(
    slack: MockSlack, channel_id_config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, body = _fire({"alertname": "Crash", "source": "api"})
    notification_id = json.loads(body)["notification_id"]
    real_record = notify._record

    def crash_on_success(claim: Any, **kwargs: Any) -> Any:
        if kwargs.get("status") == "delivered":
            raise SystemExit("killed")  # the Lambda dies right after Slack accepted the post
        return real_record(claim, **kwargs)

    monkeypatch.setattr(notify, "_record", crash_on_success)
    with pytest.raises(SystemExit):
        notify.deliver(notification_id)
    monkeypatch.setattr(notify, "_record", real_record)
    assert len(slack.messages) == 1
    # While the claim is fresh another consumer leaves it alone (and acknowledges its message)...
    assert _notify(body, receive_count=2) == {"batchItemFailures": []}
    assert _row(body).status == "sending" and len(slack.messages) == 1
    # ...and once the claim is stale, the outbox sends it again and the retry reconciles.
    with session_scope() as session:
        session.execute(
            update(AlertNotification)
            .where(AlertNotification.id == notification_id)
            .values(sending_since=datetime.now(UTC) - timedelta(minutes=5))
        )
    assert _notify(*_resend()) == {"batchItemFailures": []}
    assert len(slack.messages) == 1
    row = _row(body)
    assert row.status == "recovered" and row.slack_ts == slack.messages[0].ts


def test_resolved_notification_updates_the_original_message(slack: MockSlack) -> None:
    at = datetime.now(UTC) - timedelta(minutes=10)
    alert_id, body = _fire({"alertname": "Fixed", "source": "api"}, at=at)
    _notify(body)
    with session_scope() as session:
        service.resolve(session, alert_id, OPERATOR, None, now=at + timedelta(minutes=1))
    flush.flush_due(now=at + timedelta(seconds=30) + timedelta(minutes=5))
    [message] = receive_all(config.load(config.AlertSettings).notify_queue_url or "")
    assert _notify(message["Body"]) == {"batchItemFailures": []}
    assert len(slack.posts()) == 1
    [update_call] = slack.calls("chat.update")
    assert update_call.payload["ts"] == slack.messages[0].ts
    assert "[RESOLVED" in slack.messages[0].blocks[0]["text"]["text"]
    assert [(d["kind"], d["method"]) for d in _deliveries(alert_id)] == [
        ("firing", "chat.postMessage"),
        ("resolved", "chat.update"),
    ]


def test_huge_annotations_fit_slack_limits(slack: MockSlack) -> None:
    huge = "word " * 40_000  # 200,000 characters
    _, body = _fire(
        {"alertname": "Huge", "source": "api", "host": "x" * 1000}, description=huge, summary="s" * 5000
    )
    assert _notify(body) == {"batchItemFailures": []}  # the mock rejects blocks over Slack's limits
    [message] = slack.messages
    assert len(message.blocks) <= 50
    assert len(message.blocks[0]["text"]["text"]) <= 150
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert all(len(text) <= 3000 for text in sections)
    assert any(text.endswith("…") for text in sections)


def test_older_notification_is_superseded_by_a_delivered_newer_one(slack: MockSlack) -> None:
    at = datetime.now(UTC) - timedelta(minutes=10)
    _, first = _fire({"alertname": "Snap", "source": "api", "n": "1"}, at=at)
    later = normalise_posted(
        {"alertname": "Snap", "source": "api", "n": "2"}, {}, None, None, now=at, resolve_timeout=0
    )
    with session_scope() as session:
        service.ingest(session, [later], now=at + timedelta(seconds=40))
    flush.flush_due(now=at + timedelta(seconds=30) + timedelta(minutes=5))
    [second] = receive_all(config.load(config.AlertSettings).notify_queue_url or "")
    assert _notify(second["Body"]) == {"batchItemFailures": []}
    assert _notify(first) == {"batchItemFailures": []}  # arrives late: its content is in the newer one
    assert len(slack.posts()) == 1
    with session_scope() as session:
        statuses = sorted(session.scalars(select(AlertDelivery.status)))
    assert statuses == ["delivered", "superseded"]


def test_bot_token_comes_from_secrets_manager(slack: MockSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    aws.client("secretsmanager").put_secret_value(
        SecretId=config.load(config.AlertSettings).slack_secret_id,
        SecretString=json.dumps({"bot_token": "xoxb-secret"}),
    )
    reset_alerting_caches()
    _, body = _fire({"alertname": "Secret", "source": "api"})
    assert _notify(body) == {"batchItemFailures": []}
    assert slack.posts()[0].authorization == "Bearer xoxb-secret"


def test_unknown_notification_message_fails_to_the_dlq_path(slack: MockSlack) -> None:
    result = _notify(json.dumps({"notification_id": "0" * 32}), "not json")
    assert len(result["batchItemFailures"]) == 2
    assert slack.requests == []
