"""Queues, DLQs, alarms, event source mappings, EventBridge rules and schedules follow topology."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lotabots import topology
from tests.infra.conftest import Synth, functions_by_service, invokes_alias, live_alias, mentions, ref_id

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

FOURTEEN_DAYS = 14 * 24 * 3600


def _queues_by_name(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        v["Properties"]["QueueName"]: (k, v)
        for k, v in synth.of_type("AWS::SQS::Queue").items()
        if "QueueName" in v["Properties"]
    }


def _alarms_on_queue(synth: Synth, queue_id: str, metric: str) -> list[dict[str, Any]]:
    return [
        alarm
        for alarm in synth.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == metric
        and mentions(alarm["Properties"]["Dimensions"], queue_id)
    ]


def test_each_topology_queue_has_a_dlq_encryption_tls_and_alarms(synth: Synth) -> None:
    """Every queue: SSE, TLS-only policy, visibility from topology, DLQ (14 days) after max receives,
    an alarm on the DLQ's depth and one on the queue's oldest message, both to the alert topic."""
    queues = _queues_by_name(synth)
    topic_id = synth.logical_id(synth.stack.observability.topic)
    policies = synth.of_type("AWS::SQS::QueuePolicy")
    for spec in topology.QUEUES:
        queue_id, queue = queues[f"lotabots-dev-{spec.name}"]
        dlq_id, dlq = queues[f"lotabots-dev-{spec.name}-dlq"]
        props = queue["Properties"]
        assert props["SqsManagedSseEnabled"] is True
        assert props["VisibilityTimeout"] == spec.visibility_timeout_s
        assert props["RedrivePolicy"]["maxReceiveCount"] == spec.max_receive_count
        assert ref_id(props["RedrivePolicy"]["deadLetterTargetArn"]) == dlq_id
        assert dlq["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS
        assert dlq["Properties"]["SqsManagedSseEnabled"] is True
        for qid in (queue_id, dlq_id):
            tls = [
                st
                for p in policies.values()
                if mentions(p["Properties"]["Queues"], qid)
                for st in p["Properties"]["PolicyDocument"]["Statement"]
                if st["Effect"] == "Deny"
                and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            ]
            assert tls, f"{spec.name}: no TLS-only statement for {qid}"
        depth = _alarms_on_queue(synth, dlq_id, "ApproximateNumberOfMessagesVisible")
        age = _alarms_on_queue(synth, queue_id, "ApproximateAgeOfOldestMessage")
        assert len(depth) == 1 and len(age) == 1, spec.name
        assert depth[0]["Properties"]["Threshold"] == 1
        for alarm in (*depth, *age):
            assert ref_id(alarm["Properties"]["AlarmActions"][0]) == topic_id


def test_each_queue_trigger_is_an_event_source_mapping_reporting_partial_failures(synth: Synth) -> None:
    """Topology queue triggers → ESMs with the batch size and ReportBatchItemFailures."""
    queues = _queues_by_name(synth)
    deployed = functions_by_service(synth)
    mappings = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    expected = [(fn, trigger) for fn in topology.FUNCTIONS for trigger in fn.queues]
    assert len(list(mappings)) == len(expected)
    for fn, trigger in expected:
        queue_id, _ = queues[f"lotabots-dev-{trigger.queue}"]
        function_id, _ = deployed[fn.name]
        found = [
            m["Properties"]
            for m in mappings
            if ref_id(m["Properties"]["EventSourceArn"]) == queue_id
            and invokes_alias(m["Properties"]["FunctionName"], live_alias(synth, function_id))
        ]
        assert len(found) == 1, (fn.name, trigger.queue)
        assert found[0]["BatchSize"] == trigger.batch_size
        assert found[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert found[0]["ScalingConfig"] == {"MaximumConcurrency": trigger.max_concurrency}


def test_each_event_rule_matches_topology_and_targets_its_queue_with_a_dlq(synth: Synth) -> None:
    """EventBridge rules on the default bus: the topology pattern → the topology queue (+ target DLQ)."""
    queues = _queues_by_name(synth)
    rule_dlq_id, _ = queues["lotabots-dev-rule-target-dlq"]
    rules = {v["Properties"]["Name"]: v["Properties"] for v in synth.of_type("AWS::Events::Rule").values()}
    for spec in topology.EVENT_RULES:
        rule = rules[f"lotabots-dev-{spec.name}"]
        # Rules on AWS service events are narrowed to this stack's resources (test_releases_and_scoping).
        for key, value in spec.pattern.items():
            if isinstance(value, dict):
                assert {k: rule["EventPattern"][key][k] for k in value} == value, spec.name
            else:
                assert rule["EventPattern"][key] == value, spec.name
        assert rule["EventBusName"] == "default"
        (target,) = rule["Targets"]
        assert ref_id(target["Arn"]) == queues[f"lotabots-dev-{spec.queue}"][0]
        assert ref_id(target["DeadLetterConfig"]["Arn"]) == rule_dlq_id


def test_each_eventbridge_rule_may_send_to_its_target_queue(synth: Synth) -> None:
    """The target queue's policy lets events.amazonaws.com send, scoped to the rule's ARN."""
    policies = list(synth.of_type("AWS::SQS::QueuePolicy").values())
    rules = {v["Properties"]["Name"]: k for k, v in synth.of_type("AWS::Events::Rule").items()}
    queues = _queues_by_name(synth)
    for spec in topology.EVENT_RULES:
        rule_id = rules[f"lotabots-dev-{spec.name}"]
        queue_id, _ = queues[f"lotabots-dev-{spec.queue}"]
        allowed = [
            st
            for p in policies
            if mentions(p["Properties"]["Queues"], queue_id)
            for st in p["Properties"]["PolicyDocument"]["Statement"]
            if st.get("Principal") == {"Service": "events.amazonaws.com"}
            and mentions(st.get("Condition"), rule_id)
        ]
        assert allowed, spec.name


def test_each_schedule_invokes_its_function(synth: Synth) -> None:
    """Topology schedules become EventBridge schedule rules targeting the function (with a DLQ)."""
    deployed = functions_by_service(synth)
    rules = {v["Properties"]["Name"]: v["Properties"] for v in synth.of_type("AWS::Events::Rule").values()}
    for fn in topology.FUNCTIONS:
        for schedule in fn.schedules:
            rule = rules[f"lotabots-dev-{schedule.name}"]
            assert rule["ScheduleExpression"] == schedule.expression
            (target,) = rule["Targets"]
            assert ref_id(target["Arn"]) == live_alias(synth, deployed[fn.name][0])
            assert "DeadLetterConfig" in target
            assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2


def test_uploads_under_documents_prefix_notify_the_ingest_queue(synth: Synth) -> None:
    """S3 ObjectCreated on `documents/` of the documents bucket goes to the document-ingest queue."""
    (notification,) = synth.of_type("Custom::S3BucketNotifications").values()
    props = notification["Properties"]
    assert ref_id(props["BucketName"]) == synth.logical_id(synth.stack.storage.documents)
    (config,) = props["NotificationConfiguration"]["QueueConfigurations"]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "documents/"}]
    ingest_id, _ = _queues_by_name(synth)["lotabots-dev-document-ingest"]
    assert ref_id(config["QueueArn"]) == ingest_id


def test_function_errors_throttles_api_5xx_and_latency_raise_alarms(synth: Synth) -> None:
    """Alarms cover every function (errors, throttles), API 5xx and p99 latency, the database."""
    alarms = {
        v["Properties"]["AlarmName"]: v["Properties"]
        for v in synth.of_type("AWS::CloudWatch::Alarm").values()
    }
    throttled: list[str] = []
    for props in (v for k, v in alarms.items() if "-throttles-" in k):
        metrics = props["Metrics"]
        assert len([m for m in metrics if "MetricStat" in m]) <= 10  # CloudWatch's limit per alarm
        for query in metrics:
            if "MetricStat" in query:
                assert query["MetricStat"]["Metric"]["MetricName"] == "Throttles"
                (dimension,) = query["MetricStat"]["Metric"]["Dimensions"]
                throttled.append(json.dumps(dimension["Value"]))
    assert len(throttled) == len(topology.FUNCTIONS) == len(set(throttled))
    for fn in topology.FUNCTIONS:
        # The authorizer's refused tokens are Lambda errors by contract: its alarm counts real failures.
        expected = "AuthorizerFailures" if fn.kind == "authorizer" else "Errors"
        assert alarms[f"lotabots-dev-{fn.name}-errors-warning"]["MetricName"] == expected
    assert alarms["lotabots-dev-api-5xx-critical"]["MetricName"] == "5XXError"
    assert alarms["lotabots-dev-api-latency-p99-warning"]["ExtendedStatistic"] == "p99"
    assert alarms["lotabots-dev-db-capacity-warning"]["MetricName"] == "ACUUtilization"
    (topic,) = synth.of_type("AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for word in ("API latency", "Function errors", "Queue backlog", "Database"):
        assert word in body


def test_alarm_names_carry_the_severity_the_alerting_code_reads(synth: Synth) -> None:
    """CloudWatch alarms become alerts labelled by the severity word in their name: lost work
    (a message in a DLQ), API 5xx and a tampered audit chain page as critical, the rest warn."""
    from lotabots.alerts.sources import alarm_severity

    names = [v["Properties"]["AlarmName"] for v in synth.of_type("AWS::CloudWatch::Alarm").values()]
    for name in names:
        critical = (
            "-dlq-depth-critical",
            "-api-5xx-critical",
            "-alert-delivery-lag-critical",
            "-audit-chain-invalid-critical",
        )
        expected = "critical" if name.endswith(critical) else "warning"
        assert alarm_severity(name) == expected, name
    assert sum(alarm_severity(n) == "critical" for n in names) == len(topology.QUEUES) + 4


def test_a_slack_outage_alarms_by_email_not_through_slack(synth: Synth) -> None:
    """alert_flush publishes how long groups have waited for Slack; 10 minutes of it (or no
    datapoint: the flush, which retries, is not running) alarms the SNS topic on-call gets."""
    from lotabots.alerts.metrics import DELIVERY_LAG_METRIC

    [alarm] = [
        v["Properties"]
        for v in synth.of_type("AWS::CloudWatch::Alarm").values()
        if v["Properties"]["AlarmName"] == "lotabots-dev-alert-delivery-lag-critical"
    ]
    assert alarm["MetricName"] == DELIVERY_LAG_METRIC and alarm["Namespace"] == "LotaBots"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "alert_flush"}]
    assert alarm["Threshold"] == 600 and alarm["TreatMissingData"] == "breaching"
    topic_id = synth.logical_id(synth.stack.observability.topic)
    assert [ref_id(a) for a in alarm["AlarmActions"]] == [topic_id]
    assert [ref_id(a) for a in alarm["OKActions"]] == [topic_id]
