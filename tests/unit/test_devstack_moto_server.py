"""What the local stack leaves to moto in server mode really happens there: EventBridge rules
route matching events to their queues, S3 notifies the ingest queue, presigned POSTs work
for a plain HTTP client, and the DLQ alarm stand-in reaches the alerting queue."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from moto.server import ThreadedMotoServer

from devstack import environment
from devstack.alarms import DlqAlarmWatcher, alarm_name
from devstack.provision import provision
from lotabots import aws, config, topology


@pytest.fixture(scope="module")
def moto_env() -> Iterator[dict[str, str]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as mp:
        fake_env: dict[str, str] = {}
        environment.point_at_moto(fake_env, f"http://{host}:{port}")
        for name, value in fake_env.items():
            mp.setenv(name, value)
        config.reset()
        aws.reset()
        queues = provision()
        for name, value in queues.items():
            mp.setenv(name, value)
        config.reset()
        aws.reset()
        yield queues
    config.reset()
    aws.reset()
    server.stop()


def _drain(url: str) -> list[Any]:
    """Receive and delete everything in the queue; JSON bodies decoded."""
    sqs = aws.client("sqs")
    bodies: list[Any] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            try:
                bodies.append(json.loads(message["Body"]))
            except ValueError:
                bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _matching_entry(pattern: dict[str, Any]) -> dict[str, Any]:
    detail = {key: values[0] for key, values in pattern.get("detail", {}).items()}
    return {
        "Source": pattern["source"][0],
        "DetailType": pattern["detail-type"][0],
        "Detail": json.dumps({**detail, "probe": True}),
        "EventBusName": config.core().event_bus_name,
    }


def test_every_event_rule_delivers_matching_events_to_its_queue(moto_env: dict[str, str]) -> None:
    events = aws.client("events")
    for url in moto_env.values():
        _drain(url)
    for rule in topology.EVENT_RULES:
        entry = _matching_entry(rule.pattern)
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
        delivered = _drain(moto_env[topology.queue(rule.queue).env_var])
        assert [(e["source"], e["detail-type"]) for e in delivered] == [
            (entry["Source"], entry["DetailType"])
        ], rule.name
        assert delivered[0]["detail"]["probe"] is True
        # The whole event, as EventBridge delivers it (what the workers' Parser models need).
        EventBridgeModel.model_validate(delivered[0])
        assert delivered[0]["account"] and delivered[0]["region"] == "us-east-1"


def test_events_that_match_no_rule_go_nowhere(moto_env: dict[str, str]) -> None:
    events = aws.client("events")
    for url in moto_env.values():
        _drain(url)
    events.put_events(
        Entries=[{"Source": "lotabots.documents", "DetailType": "SomethingElse", "Detail": "{}"}]
    )
    batch = {"Source": "aws.batch", "DetailType": "Batch Job State Change", "Detail": '{"status": "RUNNING"}'}
    events.put_events(Entries=[batch])
    assert all(_drain(url) == [] for url in moto_env.values())


def test_an_uploaded_document_notifies_the_ingest_queue(moto_env: dict[str, str]) -> None:
    url = moto_env["DOCUMENT_INGEST_QUEUE_URL"]
    _drain(url)
    bucket = config.load(config.DocumentSettings).bucket
    s3 = aws.client("s3")
    post = s3.generate_presigned_post(
        bucket, "documents/u1/d1/1", Conditions=[["content-length-range", 1, 100]]
    )
    assert post["url"].startswith("http://127.0.0.1:")
    response = httpx.post(
        post["url"], data=post["fields"], files={"file": ("a.txt", b"hello", "text/plain")}, trust_env=False
    )
    assert response.status_code in (200, 204), response.text
    s3.put_object(Bucket=bucket, Key="elsewhere/ignored", Body=b"x")
    records = [r for body in _drain(url) for r in body.get("Records", [])]
    # Keys arrive URL-encoded, as from real S3.
    assert [unquote_plus(r["s3"]["object"]["key"]) for r in records] == ["documents/u1/d1/1"]
    assert records[0]["eventName"].startswith("ObjectCreated")


def test_a_message_in_a_dlq_becomes_a_cloudwatch_alarm_event_for_the_alerting_queue(
    moto_env: dict[str, str],
) -> None:
    sqs = aws.client("sqs")
    alert_events = moto_env["ALERT_EVENTS_QUEUE_URL"]
    _drain(alert_events)
    dlq = sqs.get_queue_url(QueueName="alert-notify-dlq")["QueueUrl"]
    watcher = DlqAlarmWatcher(
        sqs=sqs,
        events=aws.client("events"),
        dlq_urls={"alert-notify": dlq},
        stage="local",
        region="us-east-1",
        bus=config.core().event_bus_name,
        stop=threading.Event(),
    )
    assert watcher.check_once() == []  # empty: stays OK, nothing published
    sqs.send_message(QueueUrl=dlq, MessageBody="lost notification")
    assert watcher.check_once() == [(alarm_name("local", "alert-notify"), "ALARM")]
    assert watcher.check_once() == []  # no repeat while it stays in ALARM
    fired = _drain(alert_events)
    assert len(fired) == 1
    assert fired[0]["source"] == "aws.cloudwatch"
    assert fired[0]["detail-type"] == "CloudWatch Alarm State Change"
    assert fired[0]["detail"]["alarmName"] == "lotabots-local-alert-notify-dlq-not-empty"
    assert fired[0]["detail"]["state"]["value"] == "ALARM"
    _drain(dlq)
    assert watcher.check_once() == [(alarm_name("local", "alert-notify"), "OK")]
    resolved = _drain(alert_events)
    assert resolved[0]["detail"]["state"]["value"] == "OK"
    assert resolved[0]["detail"]["previousState"]["value"] == "ALARM"
