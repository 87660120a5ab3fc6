"""The audit anchors in the cloud: the Object Lock bucket, the two functions' exact grants,
the anchoring schedule and the tampering alarm."""

from __future__ import annotations

from typing import Any

import pytest

from lotabots import topology
from lotabots.storage_keys import AUDIT_ANCHORS_PREFIX
from tests.infra.conftest import Synth, env_of, functions_by_service, live_alias, ref_id
from tests.infra.test_grants import READ_SECRET, On, _allowed, _assert_exactly, _expect, _role_of

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _bucket(synth: Synth) -> tuple[str, dict[str, Any]]:
    logical_id = synth.logical_id(synth.stack.storage.audit_anchors)
    return logical_id, synth.resources[logical_id]


def test_anchor_bucket_is_object_locked_in_compliance_mode_and_logged(synth: Synth) -> None:
    _, bucket = _bucket(synth)
    props = bucket["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert ref_id(props["LoggingConfiguration"]["DestinationBucketName"]) == synth.logical_id(
        synth.stack.storage.access_logs
    )
    # Versions are evidence: nothing may expire them.
    for rule in props.get("LifecycleConfiguration", {}).get("Rules", []):
        assert not {
            "ExpirationInDays",
            "NoncurrentVersionExpiration",
            "NoncurrentVersionExpirationInDays",
        } & set(rule), rule
    assert bucket["DeletionPolicy"] == "Retain"


def test_anchor_bucket_refuses_puts_that_could_overwrite(synth: Synth) -> None:
    logical_id, _ = _bucket(synth)
    statements = [
        statement
        for policy in synth.of_type("AWS::S3::BucketPolicy").values()
        if ref_id(policy["Properties"]["Bucket"]) == logical_id
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (create_only,) = [s for s in statements if s.get("Sid") == "AnchorsAreCreateOnly"]
    assert create_only["Effect"] == "Deny" and create_only["Principal"] == {"AWS": "*"}
    assert create_only["Action"] == "s3:PutObject"
    assert create_only["Condition"] == {"Null": {"s3:if-none-match": "true"}}


def test_audit_functions_may_make_exactly_the_calls_their_code_makes(synth: Synth) -> None:
    """audit: database + list the anchors' versions; audit_anchor: the same + put new anchors."""
    anchors_id, _ = _bucket(synth)
    database = (READ_SECRET, On(synth.logical_id(synth.stack.database.secret)))
    listing = ("s3:ListBucketVersions", On(anchors_id))
    expected = {
        "audit": _expect(database, listing),
        "audit_anchor": _expect(
            database, listing, ("s3:PutObject", On(anchors_id, prefix=AUDIT_ANCHORS_PREFIX))
        ),
    }
    for name, grants in expected.items():
        _assert_exactly(name, _allowed(synth, _role_of(synth, name)), grants)


def test_both_functions_are_told_the_anchor_bucket(synth: Synth) -> None:
    anchors_id, _ = _bucket(synth)
    deployed = functions_by_service(synth)
    for name in ("audit", "audit_anchor"):
        assert env_of(deployed[name][1])["AUDIT_ANCHOR_BUCKET"] == {"Ref": anchors_id}


def test_the_anchoring_schedule_runs_every_15_minutes_with_a_dlq(synth: Synth) -> None:
    (schedule,) = topology.function("audit_anchor").schedules
    rules = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("Name") == f"lotabots-dev-{schedule.name}"
    ]
    assert [r["ScheduleExpression"] for r in rules] == ["rate(15 minutes)"]
    (target,) = rules[0]["Targets"]
    assert ref_id(target["Arn"]) == live_alias(synth, functions_by_service(synth)["audit_anchor"][0])
    assert "DeadLetterConfig" in target


def test_tampering_raises_a_critical_alarm(synth: Synth) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }
    alarm = alarms["lotabots-dev-audit-chain-invalid-critical"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("LotaBots", "AuditChainInvalid")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "audit_anchor"}]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] and alarm["OKActions"]


def test_production_keeps_anchors_longer_and_retention_is_configurable() -> None:
    from aws_cdk import App
    from lotabots_infra.settings import StageSettings

    def retention(context: dict[str, Any]) -> int:
        return StageSettings.from_node(App(context=context).node, "us-east-1").audit_anchor_retention_days

    assert retention({}) == 1
    assert retention({"stage": "prod"}) == 400
    assert retention({"stage": "prod", "auditAnchorRetentionDays": 2557}) == 2557
