"""Releases (aliases, SnapStart, concurrency, CodeDeploy canaries), what is scoped to this stack
(Batch jobs by tag, AWS-service event rules, VPC interfaces, CodeDeploy's role), alarms on real
failures only, the dashboard, and IAM actions that the code really calls."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lotabots import topology
from tests.infra.conftest import SKIP_BUNDLING, Synth, functions_by_service, invokes_alias, mentions, ref_id

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

ROOT = Path(__file__).resolve().parents[2]


def _aliases(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """Topology function name → (alias logical id, alias resource)."""
    by_function_id = {lid: name for name, (lid, _) in functions_by_service(synth).items()}
    found = {}
    for logical_id, alias in synth.of_type("AWS::Lambda::Alias").items():
        function_id = ref_id(alias["Properties"]["FunctionName"])
        found[by_function_id[str(function_id)]] = (logical_id, alias)
    return found


def _statements(synth: Synth, action: str) -> list[dict[str, Any]]:
    found = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                found.append(statement)
    return found


# --- releases ---------------------------------------------------------------------------------


def test_every_function_has_a_live_alias_on_its_current_version(synth: Synth) -> None:
    aliases = _aliases(synth)
    assert set(aliases) == {fn.name for fn in topology.FUNCTIONS}
    for _logical_id, alias in aliases.values():
        assert alias["Properties"]["Name"] == "live"
        assert ref_id(alias["Properties"]["FunctionVersion"]) in synth.of_type("AWS::Lambda::Version")


def test_invokers_call_the_alias_not_the_function(synth: Synth) -> None:
    aliases = {name: lid for name, (lid, _) in _aliases(synth).items()}
    functions = {name: lid for name, (lid, _) in functions_by_service(synth).items()}
    for mapping in synth.of_type("AWS::Lambda::EventSourceMapping").values():
        target = mapping["Properties"]["FunctionName"]
        assert any(invokes_alias(target, lid) for lid in aliases.values()), target
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        uri = method["Properties"].get("Integration", {}).get("Uri")
        if uri is not None:
            assert any(mentions(uri, lid) for lid in aliases.values()), uri
    (authorizer,) = synth.of_type("AWS::ApiGateway::Authorizer").values()
    assert mentions(authorizer["Properties"]["AuthorizerUri"], aliases["authorizer"])
    for rule in synth.of_type("AWS::Events::Rule").values():
        for target in rule["Properties"].get("Targets", []):
            if "lambda" in json.dumps(target["Arn"]).lower() or any(
                mentions(target["Arn"], lid) for lid in functions.values()
            ):
                assert any(mentions(target["Arn"], lid) for lid in aliases.values()), target


def test_snap_start_on_every_function_but_the_migration(synth: Synth) -> None:
    for name, (_lid, fn) in functions_by_service(synth).items():
        snap = fn["Properties"].get("SnapStart")
        if topology.function(name).kind == "migration":
            assert snap is None
        else:
            assert snap == {"ApplyOn": "PublishedVersions"}, name


def test_sqs_triggers_have_topology_maximum_concurrency_and_reserved_concurrency_is_set(synth: Synth) -> None:
    aliases = _aliases(synth)
    seen = set()
    for mapping in synth.of_type("AWS::Lambda::EventSourceMapping").values():
        (name,) = [
            n for n, (lid, _) in aliases.items() if invokes_alias(mapping["Properties"]["FunctionName"], lid)
        ]
        (trigger,) = topology.function(name).queues
        assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": trigger.max_concurrency}
        seen.add(name)
    assert seen == {fn.name for fn in topology.FUNCTIONS if fn.queues}
    for name, (_lid, fn) in functions_by_service(synth).items():
        assert (
            fn["Properties"].get("ReservedConcurrentExecutions")
            == topology.function(name).reserved_concurrency
        )


def test_codedeploy_shifts_every_serving_function_as_a_canary_rolled_back_on_its_alarms(synth: Synth) -> None:
    groups = synth.of_type("AWS::CodeDeploy::DeploymentGroup")
    shifted = {fn.name for fn in topology.FUNCTIONS if fn.kind != "migration"}
    assert len(groups) == len(shifted)
    for group in groups.values():
        props = group["Properties"]
        assert props["DeploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
        assert set(props["AutoRollbackConfiguration"]["Events"]) >= {
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_ALARM",
        }
        names = [a["Name"] for a in props["AlarmConfiguration"]["Alarms"]]
        assert len(names) == 2
        assert props["AlarmConfiguration"]["Enabled"] is True
    for name, (_lid, alias) in _aliases(synth).items():
        update = alias.get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate")
        assert (update is not None) == (name in shifted), name


def test_codedeploy_role_has_no_managed_policy_and_only_this_stacks_aliases(synth: Synth) -> None:
    (role_id,) = [
        k
        for k, v in synth.of_type("AWS::IAM::Role").items()
        if "codedeploy.amazonaws.com" in json.dumps(v["Properties"]["AssumeRolePolicyDocument"])
    ]
    role = synth.resources[role_id]
    assert "ManagedPolicyArns" not in role["Properties"]
    (update_alias,) = _statements(synth, "lambda:UpdateAlias")
    resources = update_alias["Resource"]
    assert "*" not in json.dumps(resources)
    aliases = {lid for lid, _ in _aliases(synth).values()}
    assert sum(1 for r in resources if ref_id(r) in aliases) == len(
        synth.of_type("AWS::CodeDeploy::DeploymentGroup")
    )


def test_production_keeps_the_authorizer_warm_instead_of_snapshotting_it(tmp_path: Path) -> None:
    from lotabots_infra.app import build_app, stack_name

    app = build_app(outdir=str(tmp_path), context={**SKIP_BUNDLING, "stage": "prod"}, nag=False)
    app.synth()
    template = json.loads((tmp_path / f"{stack_name('prod')}.template.json").read_text())
    resources = template["Resources"]
    authorizer_id = next(
        k
        for k, v in resources.items()
        if v["Type"] == "AWS::Lambda::Function"
        and v["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        == "authorizer"
    )
    assert "SnapStart" not in resources[authorizer_id]["Properties"]
    (alias,) = [
        v
        for v in resources.values()
        if v["Type"] == "AWS::Lambda::Alias" and ref_id(v["Properties"]["FunctionName"]) == authorizer_id
    ]
    assert alias["Properties"]["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}


def test_bad_concurrency_settings_are_refused() -> None:
    from lotabots_infra.functions import check_concurrency
    from lotabots_infra.settings import parse_function_counts

    assert parse_function_counts("auth=1, authorizer=2") == {"auth": 1, "authorizer": 2}
    assert parse_function_counts({"auth": 0}) == {}
    with pytest.raises(ValueError, match="nope"):
        check_concurrency(type("S", (), {"provisioned_concurrency": {"nope": 1}})())  # type: ignore[arg-type]


# --- alarms and dashboard --------------------------------------------------------------------------


def test_authorizer_error_alarm_counts_real_failures_not_refused_tokens(synth: Synth) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }
    authorizer = alarms["lotabots-dev-authorizer-errors-warning"]
    assert authorizer["Namespace"] == "LotaBots" and authorizer["MetricName"] == "AuthorizerFailures"
    assert authorizer["Dimensions"] == [{"Name": "service", "Value": "authorizer"}]
    auth = alarms["lotabots-dev-auth-errors-warning"]
    assert auth["MetricName"] == "Errors" and any(d["Name"] == "Resource" for d in auth["Dimensions"])
    assert alarms["lotabots-dev-auth-latency-warning"]["ExtendedStatistic"] == "p99"


def test_dashboard_shows_gpu_jobs_platform_metrics_alarms_and_concurrency(synth: Synth) -> None:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "JobsQueued",
        "JobsRunning",
        "JobsFailed",
        "JobDuration",
        "GpuUtilization",
        "Logins",
        "DocumentsIngested",
        "AlertsReceived",
        "NotificationsDelivered",
        "ConcurrentExecutions",
        "AuthorizerFailures",
    ):
        assert metric in body, metric
    assert "alarms" in body  # the alarm status widget


# --- scoping -------------------------------------------------------------------------------------


def test_batch_job_actions_are_limited_to_jobs_tagged_with_this_stage(synth: Synth) -> None:
    from lotabots.jobs.backends.batch import STAGE_TAG

    terminate = _statements(synth, "batch:TerminateJob")
    assert terminate
    for statement in terminate:
        assert statement["Condition"] == {"StringEquals": {f"aws:ResourceTag/{STAGE_TAG}": "dev"}}
    for statement in _statements(synth, "batch:TagResource"):
        assert statement["Condition"] == {"StringEquals": {f"aws:RequestTag/{STAGE_TAG}": "dev"}}


def test_rules_on_aws_events_only_match_this_stacks_resources(synth: Synth) -> None:
    rules = {
        r["Properties"]["Name"]: r["Properties"]["EventPattern"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
    }
    batch = rules["lotabots-dev-batch-job-state"]
    assert ref_id(batch["detail"]["jobQueue"][0]) == synth.logical_id(synth.stack.gpu.job_queue)
    alarms = rules["lotabots-dev-alarms-to-alerts"]
    (prefix,) = alarms["resources"]
    assert "alarm:lotabots-dev-" in json.dumps(prefix["prefix"])


def test_an_unscoped_rule_on_aws_events_is_refused() -> None:
    from lotabots_infra.messaging import check_scopes

    with pytest.raises(ValueError, match="batch-job-state"):
        check_scopes({"alarms-to-alerts": {}})


def test_network_interface_actions_are_scoped_to_this_vpc(synth: Synth) -> None:
    vpc_id = synth.logical_id(synth.stack.network.vpc)
    for statement in _statements(synth, "ec2:DeleteNetworkInterface"):
        assert statement["Resource"] != "*"
        assert mentions(statement["Condition"]["ArnEquals"]["ec2:Vpc"], vpc_id)
        assert set(statement["Action"]) == {
            "ec2:CreateNetworkInterface",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        }
    for statement in _statements(synth, "ec2:CreateNetworkInterface"):
        assert statement["Resource"] != "*" and "*" not in statement["Resource"]
    for statement in _statements(synth, "ec2:DescribeSubnets"):
        assert set(statement["Action"]) == {"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}


# Granted actions the platform's code does not call by name, and who calls them.
CALLED_BY_LIBRARIES = {
    "batch:TagResource": "SubmitJob with tags (Batch authorizes the tags of a new job as TagResource)",
    "dynamodb:GetItem": "Powertools Idempotency (job_results' Batch event dedupe)",
    "dynamodb:PutItem": "Powertools Idempotency",
    "dynamodb:UpdateItem": "Powertools Idempotency",
    "dynamodb:DeleteItem": "Powertools Idempotency",
    "ssm:GetParameter": "Powertools Parameters and the Parameters and Secrets extension (authorizer)",
    "secretsmanager:GetSecretValue": "Powertools Parameters (get_secret)",
    "s3:ListBucket": "lets S3 answer 404 rather than 403 for a missing key (head_object/get_object)",
    "s3:ListBucketVersions": "ListObjectVersions (audit anchors): the API's IAM action has another name",
    # The SQS event-source mapping polls with the function's role.
    "sqs:ReceiveMessage": "Lambda's SQS event-source mapping",
    "sqs:DeleteMessage": "Lambda's SQS event-source mapping",
    "sqs:GetQueueAttributes": "Lambda's SQS event-source mapping",
    "sqs:GetQueueUrl": "Lambda's SQS event-source mapping (CDK grants it with consume)",
    "logs:CreateLogStream": "the Lambda runtime",
    "logs:PutLogEvents": "the Lambda runtime",
    "xray:PutTraceSegments": "the Lambda runtime (active tracing)",
    "xray:PutTelemetryRecords": "the Lambda runtime (active tracing)",
    "ec2:CreateNetworkInterface": "Lambda, for in-VPC functions",
    "ec2:DescribeNetworkInterfaces": "Lambda, for in-VPC functions",
    "ec2:DescribeSubnets": "Lambda, for in-VPC functions",
    "ec2:DeleteNetworkInterface": "Lambda, for in-VPC functions",
    "ec2:AssignPrivateIpAddresses": "Lambda, for in-VPC functions",
    "ec2:UnassignPrivateIpAddresses": "Lambda, for in-VPC functions",
}


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action.split(":", 1)[1]).lower()


def test_every_action_granted_to_a_function_is_one_its_code_calls(synth: Synth) -> None:
    """No leftovers from broad CDK grants (DescribeSecret, GetObjectVersion, UpdateSecret...)."""
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("layers/core/lotabots", "functions")
        for p in (ROOT / folder).rglob("*.py")
    )
    roles = {f"{synth.logical_id(role)}" for role in synth.stack.functions.roles.values()}
    granted: set[str] = set()
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if any(ref_id(r) in roles for r in policy["Properties"]["Roles"]):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                action = statement["Action"]
                granted.update([action] if isinstance(action, str) else action)
    unused = sorted(
        a
        for a in granted
        if a not in CALLED_BY_LIBRARIES and f".{_snake(a)}(" not in source and f'"{_snake(a)}"' not in source
    )
    assert unused == []
