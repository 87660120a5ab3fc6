"""Fault tests for the alert pipeline (issue 8): Slack down for longer than every retry budget
then back, duplicate and out-of-order messages, and poison messages.

The queues are the stack's own (moto, with the topology's redrive policies) and they are
consumed by the local stack's event-source-mapping pollers, which run the real handlers, delete
what succeeded, make failures visible again and let the redrive policy dead-letter a message
after maxReceiveCount, as Lambda and SQS do. Time is moved forward by passing `now` to the
flush schedule's run: the outbox sends undone notifications again once their retry is due.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from devstack.alarms import DeliveryLagAlarm, DlqAlarmWatcher, delivery_lag_alarm_name
from devstack.pollers import QueuePoller
from devstack.runtime import LocalFunction
from devstack.slack_mock import MockSlack
from lotabots import aws, topology
from lotabots.alerts import flush, service
from lotabots.alerts.engine import normalise_posted
from lotabots.alerts.models import Alert, AlertGroup, AlertGroupMember, AlertNotification
from lotabots.db import session_scope
from tests.support import alerts_helpers
from tests.support.alerts_helpers import alarm_event
from tests.support.api import load_function

REGION = "us-east-1"
STAGE = "test"
ACCEPTED = {"delivered", "logged", "recovered"}


@dataclass
class Pipeline:
    slack: MockSlack
    notify: QueuePoller
    events: QueuePoller
    dlqs: dict[str, str]

    def drain(self, poller: QueuePoller, *, rounds: int = 50) -> int:
        """Poll until the queue has nothing visible; returns how many messages were handled."""
        handled = 0
        for _ in range(rounds):
            received, _failed = poller.poll_once(wait_seconds=0)
            if not received:
                return handled
            handled += received
        raise AssertionError(f"{poller.trigger.queue} still busy after {rounds} polls")

    def dlq_depth(self, queue: str) -> int:
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=self.dlqs[queue], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


def _poller(function: str, queue: str) -> QueuePoller:
    spec = topology.function(function)
    [trigger] = [t for t in spec.queues if t.queue == queue]
    return QueuePoller(
        LocalFunction(spec, load_function(function).lambda_handler),
        trigger,
        sqs=aws.client("sqs"),
        queue_url=os.environ[topology.queue(queue).env_var],
        region=REGION,
        stop=threading.Event(),
        retry_visibility_s=0,  # a failed message is back at once (Lambda: the visibility timeout)
    )


@pytest.fixture
def pipeline(slack: MockSlack, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setenv("SLACK_SERVER_ERROR_RETRIES", "0")  # one request per attempt: a fast test
    alerts_helpers.reset_alerting_caches()
    sqs = aws.client("sqs")
    return Pipeline(
        slack=slack,
        notify=_poller("alert_notify", "alert-notify"),
        events=_poller("alert_ingest", "alert-events"),
        dlqs={q.name: sqs.get_queue_url(QueueName=f"{q.name}-dlq")["QueueUrl"] for q in topology.QUEUES},
    )


alerting = alerts_helpers.alerting  # the fixtures
slack = alerts_helpers.slack


def _ingest(labels: dict[str, str], at: datetime) -> str:
    alert = normalise_posted(labels, {"summary": "fault test"}, None, None, now=at, resolve_timeout=0)
    with session_scope() as session:
        return service.ingest(session, [alert], now=at).alerts[0].id


def _notifications() -> dict[str, AlertNotification]:
    with session_scope() as session:
        rows = list(session.scalars(select(AlertNotification)))
        for row in rows:
            session.expunge(row)
        return {row.id: row for row in rows}


def _posted_ids(slack: MockSlack) -> Counter[str]:
    """How many times each notification id reached the channel (message metadata)."""
    return Counter(m.metadata["event_payload"]["notification_id"] for m in slack.messages if m.metadata)


def _members() -> dict[str, str | None]:
    with session_scope() as session:
        return {m.alert_id: m.notified_state for m in session.scalars(select(AlertGroupMember))}


@pytest.mark.parametrize("outage", ["server_error", "drop"])
def test_slack_down_longer_than_every_retry_budget_then_back_loses_and_doubles_nothing(
    pipeline: Pipeline, outage: str
) -> None:
    slack = pipeline.slack
    started = datetime.now(UTC) - timedelta(minutes=10)
    alert_ids = [
        _ingest({"alertname": "DiskFull", "source": "api", "host": "db1"}, started),
        _ingest({"alertname": "GpuHot", "source": "api", "severity": "critical"}, started),
        _ingest({"alertname": "QueueStuck", "source": "api", "queue": "ingest"}, started),
    ]
    slack.down(outage)
    clock = datetime.now(UTC)
    report = flush.flush_due(now=clock)
    assert report.enqueued == 3
    max_receives = topology.queue("alert-notify").max_receive_count
    rounds = max_receives + 2  # more attempts than SQS would ever redeliver one message
    for _ in range(rounds):
        assert pipeline.drain(pipeline.notify) == 3  # each attempt fails and is acknowledged
        clock += timedelta(hours=1)  # the outage goes on; every retry comes due
        report = flush.flush_due(now=clock)
        assert report.resent == 3
    assert pipeline.dlq_depth("alert-notify") == 0  # nothing dead-lettered, nothing dropped
    notifications = _notifications()
    assert len(notifications) == 3
    assert {n.status for n in notifications.values()} <= {"failed", "uncertain", "enqueued"}
    assert all(n.attempts == rounds and n.next_attempt_at is not None for n in notifications.values())
    assert _posted_ids(slack) == Counter()  # a dropped request was not processed either
    # What the groups have "notified" is only what Slack accepted: nothing yet.
    assert _members() == dict.fromkeys(alert_ids)
    with session_scope() as session:
        assert set(session.scalars(select(AlertGroup.last_notified_at))) == {None}

    # The outage is raised by another path than Slack (in AWS: the CloudWatch alarm to SNS/e-mail).
    assert report.undelivered == 3 and report.delivery_lag_s >= (rounds * 3600)
    alarm = DeliveryLagAlarm(
        events=aws.client("events"),
        stage=STAGE,
        region=REGION,
        bus="default",
        threshold_s=600,
        backlog=lambda: flush.delivery_backlog(now=clock),
    )
    assert alarm.check_once() == [(delivery_lag_alarm_name(STAGE), "ALARM")]
    assert pipeline.drain(pipeline.events) == 1  # the alarm event reached the alerting queue
    with session_scope() as session:
        [raised] = [a for a in session.scalars(select(Alert)) if a.labels["alertname"] == alarm.name]
        assert raised.severity == "critical" and raised.ends_at is None

    slack.up()
    clock += timedelta(hours=1)
    flush.flush_due(now=clock)  # the outbox sends every undone notification again (and the alarm's alert)
    pipeline.drain(pipeline.notify)
    notifications = _notifications()
    assert {n.status for n in notifications.values()} <= ACCEPTED
    posted = _posted_ids(slack)
    assert set(posted) == set(notifications) and set(posted.values()) == {1}  # each exactly once
    assert _members() == dict.fromkeys(alert_ids, "firing") | {raised.id: "firing"}
    with session_scope() as session:
        assert None not in set(session.scalars(select(AlertGroup.last_notified_at)))
    # Nothing is due any more, and late duplicates of every message post nothing.
    assert flush.resend_due(now=clock + timedelta(days=1)) == 0
    notify_url = os.environ["NOTIFY_QUEUE_URL"]
    for notification_id in notifications:
        aws.client("sqs").send_message(
            QueueUrl=notify_url, MessageBody=json.dumps({"notification_id": notification_id})
        )
    pipeline.drain(pipeline.notify)
    assert _posted_ids(slack) == posted
    assert flush.delivery_backlog(now=clock) == (0, 0.0)
    assert alarm.check_once() == [(alarm.name, "OK")]


def test_duplicate_and_out_of_order_messages_change_nothing(pipeline: Pipeline) -> None:
    events = aws.client("events")
    at = datetime.now(UTC) - timedelta(minutes=30)

    def put(event: dict[str, Any]) -> None:
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": event["resources"],
            "Time": at,
        }
        events.put_events(Entries=[entry])

    firing = alarm_event("fault-disk", "ALARM", at=at)
    resolved = alarm_event("fault-disk", "OK", at=at + timedelta(minutes=2))
    put(firing)
    put(firing)  # EventBridge delivers at least once
    pipeline.drain(pipeline.events)
    put(resolved)
    put(alarm_event("fault-disk", "ALARM", at=at + timedelta(minutes=1)))  # older, arrives last
    put(firing)
    pipeline.drain(pipeline.events)
    with session_scope() as session:
        [alert] = session.scalars(select(Alert))
    assert alert.ends_at is not None and alert.ends_at <= datetime.now(UTC)  # the older updates lost
    assert abs((alert.starts_at - at).total_seconds()) < 1

    # alert-notify: a newer snapshot of a group delivered first, then the older one and copies.
    started = datetime.now(UTC) - timedelta(minutes=20)
    _ingest({"alertname": "Snap", "source": "api", "n": "1"}, started)
    flush.flush_due(now=started + timedelta(minutes=1), enqueue=False)
    _ingest({"alertname": "Snap", "source": "api", "n": "2"}, started + timedelta(minutes=2))
    flush.flush_due(now=started + timedelta(minutes=7), enqueue=False)
    rows = sorted(_notifications().values(), key=lambda n: n.seq)
    snap = [n for n in rows if n.group_key == rows[-1].group_key]
    older, newer = snap[0].id, snap[-1].id
    url = os.environ["NOTIFY_QUEUE_URL"]
    for notification_id in (newer, newer, older, newer, older):
        aws.client("sqs").send_message(
            QueueUrl=url, MessageBody=json.dumps({"notification_id": notification_id})
        )
    pipeline.drain(pipeline.notify)
    posted = _posted_ids(pipeline.slack)
    assert posted[newer] == 1 and older not in posted
    statuses = {n.id: n.status for n in _notifications().values()}
    assert statuses[newer] == "delivered" and statuses[older] == "superseded"
    assert pipeline.dlq_depth("alert-notify") == 0 and pipeline.dlq_depth("alert-events") == 0


def test_poison_messages_reach_their_dlq_and_raise_an_alert(pipeline: Pipeline) -> None:
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=os.environ["ALERT_EVENTS_QUEUE_URL"], MessageBody="not json")
    sqs.send_message(
        QueueUrl=os.environ["NOTIFY_QUEUE_URL"], MessageBody=json.dumps({"notification_id": "0" * 32})
    )
    sqs.send_message(QueueUrl=os.environ["NOTIFY_QUEUE_URL"], MessageBody='{"notification_id": ')
    max_receives = topology.queue("alert-notify").max_receive_count
    for poller in (pipeline.events, pipeline.notify):
        # Each failed receive makes the message visible again; the redrive policy takes it after
        # maxReceiveCount receives (on the next receive), never the consumer.
        for _ in range(max_receives + 1):
            poller.poll_once(wait_seconds=0)
    assert pipeline.dlq_depth("alert-events") == 1
    assert pipeline.dlq_depth("alert-notify") == 2
    assert pipeline.slack.requests == []

    watcher = DlqAlarmWatcher(
        sqs=sqs,
        events=aws.client("events"),
        dlq_urls={q: pipeline.dlqs[q] for q in ("alert-events", "alert-notify")},
        stage=STAGE,
        region=REGION,
        bus="default",
        stop=threading.Event(),
    )
    fired = dict(watcher.check_once())
    assert set(fired.values()) == {"ALARM"} and len(fired) == 2
    pipeline.drain(pipeline.events)  # the alarms' state changes arrive like CloudWatch's
    with session_scope() as session:
        names = {a.labels["alertname"] for a in session.scalars(select(Alert))}
    assert names == set(fired)
    # ...and become Slack notifications like any alert.
    flush.flush_due(now=datetime.now(UTC) + timedelta(minutes=1))
    pipeline.drain(pipeline.notify)
    assert len(pipeline.slack.posts()) == len(fired)  # one group per alarm (grouped by alertname)


def test_retry_backoff_doubles_is_capped_and_honours_retry_after(alerting: dict[str, str]) -> None:
    from lotabots.alerts import notify

    assert [notify.retry_delay(n) for n in (1, 2, 3, 5, 6, 40)] == [10, 20, 40, 160, 300, 300]
    assert notify.retry_delay(1, retry_after=120) == 120
    assert notify.retry_delay(6, retry_after=30) == 300


def _queued(url: str) -> tuple[int, int]:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesDelayed"]
    )


def test_a_retry_due_before_the_next_run_is_sent_now_with_an_sqs_delay(pipeline: Pipeline) -> None:
    _ingest({"alertname": "SoonAgain", "source": "api"}, datetime.now(UTC) - timedelta(minutes=5))
    pipeline.slack.fail_next("server_error")
    flush.flush_due()
    pipeline.drain(pipeline.notify)
    [row] = _notifications().values()
    assert row.status == "failed" and row.next_attempt_at is not None
    now = row.next_attempt_at - timedelta(seconds=8)  # a run 8 s before the retry is due
    assert flush.resend_due(now=now) == 1
    assert _queued(os.environ["NOTIFY_QUEUE_URL"]) == (0, 1)  # on the queue, visible in ~8 s
    [row] = _notifications().values()
    assert row.next_attempt_at == now + timedelta(seconds=8 + 900)  # resent again only if lost
    assert flush.resend_due(now=now) == 0


def test_a_queued_notification_whose_message_was_lost_is_sent_again(alerting: dict[str, str]) -> None:
    """Its message dead-lettered (the database was down for every receive) or was deleted: the
    outbox still knows it is undone and sends it again after ALERTS_NOTIFY_RESEND_AFTER_SECONDS."""
    url = os.environ["NOTIFY_QUEUE_URL"]
    at = datetime.now(UTC) - timedelta(minutes=5)
    _ingest({"alertname": "Lost", "source": "api"}, at)
    report = flush.flush_due(now=at + timedelta(minutes=1))
    alerts_helpers.receive_all(url)  # the message is gone; the notification is `enqueued`
    assert flush.resend_due(now=at + timedelta(minutes=10)) == 0  # not yet: it may still come back
    later = at + timedelta(minutes=1, seconds=900)
    assert flush.resend_due(now=later) == 1
    assert alerts_helpers.notify_from_queue(url) == {"batchItemFailures": []}
    [row] = _notifications().values()
    assert row.id == report.notifications[0] and row.status == "logged" and row.next_attempt_at is None


def test_the_upgrade_makes_notifications_the_old_code_dropped_due_again(tmp_path: Any) -> None:
    """Before 0040 a notification dead-lettered after five failed receives stayed `failed`
    forever; the migration gives every undone notification a due retry."""
    from sqlalchemy import create_engine, text

    from lotabots.db import migrate

    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0004_alerts")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO alert_groups (id, group_key, route_id, group_labels, has_flushed, version, "
                "created_at, updated_at) VALUES ('g', 'k', 'root', '{}', 1, 1, '2026-11-01', '2026-11-01')"
            )
        )
        for nid, status in (("dropped", "failed"), ("done", "delivered"), ("lost", "enqueued")):
            conn.execute(
                text(
                    "INSERT INTO alert_notifications (id, group_id, group_key, seq, kind, receiver, channel, "
                    "payload, status, attempts, created_at, updated_at) VALUES "
                    "(:id, 'g', 'k', 1, 'firing', 'ops', '#a', '{}', :status, 5, '2026-11-01', '2026-11-01')"
                ),
                {"id": nid, "status": status},
            )
    migrate.upgrade(url)
    with engine.connect() as conn:
        due = dict(conn.execute(text("SELECT id, next_attempt_at FROM alert_notifications")).all())
        assert conn.execute(text("SELECT notified_seq FROM alert_groups")).scalar() is None
    engine.dispose()
    assert due["done"] is None and due["dropped"] is not None and due["lost"] is not None
