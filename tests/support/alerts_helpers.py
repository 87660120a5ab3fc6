"""Shared helpers for the alerting tests: principals, event builders, queue draining."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.slack_mock import MockSlack
from lotabots import config
from lotabots.access import Principal, Role
from tests.support.api import FakeLambdaContext, load_function

ADMIN = Principal("u-admin", "admin@example.test", Role.ADMIN)
OPERATOR = Principal("u-operator", "operator@example.test", Role.OPERATOR)
MEMBER = Principal("u-member", "member@example.test", Role.MEMBER)
AUDITOR = Principal("u-auditor", "auditor@example.test", Role.AUDITOR)
INTEGRATION = Principal("i-prometheus", "", Role.INTEGRATION)


def reset_alerting_caches() -> None:
    from aws_lambda_powertools.utilities import parameters

    from lotabots.alerts import configuration, notify

    config.reset()
    configuration.reset()
    notify.reset()
    parameters.clear_caches()


@pytest.fixture
def alerting(db: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Database + moto resources, no Slack token (notifications are logged), caches cleared."""
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_API_URL", raising=False)
    monkeypatch.delenv("ALERTS_CONFIG_PARAMETER", raising=False)
    reset_alerting_caches()
    yield aws_env
    reset_alerting_caches()


@pytest.fixture
def slack(alerting: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[MockSlack]:
    """`alerting` with a bot token and the mock Slack Web API (devstack/slack_mock.py)."""
    with MockSlack() as server:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        monkeypatch.setenv("SLACK_API_URL", server.base_url)
        # Generous enough for a loaded CI machine; the timeout test shortens it.
        monkeypatch.setenv("SLACK_TIMEOUT_SECONDS", "5")
        monkeypatch.setenv("ALERTS_NOTIFY_STALE_SECONDS", "60")
        reset_alerting_caches()
        yield server


@pytest.fixture
def alerts_db(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Database only (API tests that need no queue), default config, caches cleared."""
    monkeypatch.delenv("ALERTS_CONFIG_PARAMETER", raising=False)
    reset_alerting_caches()
    yield db
    reset_alerting_caches()


def eventbridge_event(
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    *,
    time: datetime | None = None,
    resources: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": (time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": resources or [],
        "detail": detail,
    }


def alarm_event(
    name: str, state: str, *, at: datetime | None = None, reason: str = "Threshold Crossed"
) -> dict[str, Any]:
    stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return eventbridge_event(
        "aws.cloudwatch",
        "CloudWatch Alarm State Change",
        {
            "alarmName": name,
            "state": {"value": state, "reason": reason, "timestamp": stamp},
            "previousState": {
                "value": "OK" if state == "ALARM" else "ALARM",
                "reason": "",
                "timestamp": stamp,
            },
            "configuration": {"description": f"{name} description"},
        },
        time=at,
        resources=[f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"],
    )


def sqs_event(bodies: list[Any], *, receive_count: int = 1, queue: str = "queue") -> dict[str, Any]:
    """An SQS batch as Lambda's event source mapping delivers it."""
    records = []
    for body in bodies:
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"rh-{uuid.uuid4().hex}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1700000000001",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def run_worker(name: str, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = load_function(name).lambda_handler(event, FakeLambdaContext())
    return result


def receive_all(queue_url: str) -> list[dict[str, Any]]:
    """Every visible message of a (moto) queue, deleted as read."""
    from lotabots import aws

    sqs = aws.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        found.extend(batch)


def notify_from_queue(queue_url: str) -> dict[str, Any]:
    """Hand everything on the notify queue to the alert_notify function in one batch."""
    messages = receive_all(queue_url)
    return run_worker("alert_notify", sqs_event([m["Body"] for m in messages], queue="alert-notify"))
