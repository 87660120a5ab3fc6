"""AIOps in the synthesized stack: each schedule function may make exactly the calls its code
makes, runs on its schedule through the `live` alias with a DLQ, reads the inventory parameter
the stack writes, and only the planner (forecast, report) carries Pillow (its layer)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lotabots import topology
from tests.infra.conftest import Synth, env_of, functions_by_service, live_alias, ref_id
from tests.infra.test_grants import (
    DEFAULT_BUS,
    READ_SECRET,
    STAR,
    On,
    _allowed,
    _assert_exactly,
    _expect,
    _role_of,
)

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]
SCHEDULES = {
    "aiops-health": ("aiops_monitor", "rate(1 minute)"),
    "aiops-logs": ("aiops_monitor", "rate(5 minutes)"),
    "aiops-anomaly": ("aiops_monitor", "rate(5 minutes)"),
    "aiops-forecast": ("aiops_planner", "rate(1 hour)"),
    "aiops-report": ("aiops_planner", "cron(0 7 * * ? *)"),
}


def test_aiops_functions_may_make_exactly_the_calls_their_code_makes(synth: Synth) -> None:
    stack = synth.stack
    artifacts = synth.logical_id(stack.storage.artifacts)
    database = (READ_SECRET, On(synth.logical_id(stack.database.secret)))
    inventory = ("ssm:GetParameter", On(suffix=":parameter/lotabots/dev/aiops/inventory"))
    state = (("s3:GetObject", "s3:PutObject"), On(artifacts, prefix="aiops/"))
    listing = ("s3:ListBucket", On(artifacts))
    metrics = ("cloudwatch:GetMetricData", STAR)
    events = ("events:PutEvents", DEFAULT_BUS)
    common = (database, inventory, state, listing, events)
    queues = [synth.logical_id(q) for q in stack.messaging.queues.values()]
    queues += [synth.logical_id(q) for q in stack.messaging.all_dlqs.values()]
    queue_grants = [(("sqs:GetQueueUrl", "sqs:GetQueueAttributes"), On(q)) for q in queues]
    compute = [On(synth.logical_id(ce)) for ce in (stack.gpu.spot, stack.gpu.on_demand)]
    expected = {
        "aiops": _expect(database, ("s3:GetObject", On(artifacts, prefix="aiops/"))),
        "aiops_monitor": _expect(
            *common,
            metrics,
            *queue_grants,
            ("logs:FilterLogEvents", On(suffix=":log-group:LotaBots-dev-*")),
        ),
        "aiops_planner": _expect(
            *common,
            metrics,
            ("application-autoscaling:RegisterScalableTarget", STAR),
            ("application-autoscaling:PutScheduledAction", STAR),
            *[("batch:UpdateComputeEnvironment", ce) for ce in compute],
            (READ_SECRET, On(synth.logical_id(stack.secrets.slack))),
        ),
    }
    for name, grants in expected.items():
        _assert_exactly(name, _allowed(synth, _role_of(synth, name)), grants)


def test_scaling_statement_is_limited_to_the_lambda_namespace(synth: Synth) -> None:
    role = _role_of(synth, "aiops_planner")
    statements = [
        s
        for p in synth.of_type("AWS::IAM::Policy").values()
        if any(ref_id(r) == role for r in p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "application-autoscaling:PutScheduledAction" in json.dumps(s["Action"])
    ]
    assert [s["Condition"] for s in statements] == [
        {"StringEquals": {"application-autoscaling:service-namespace": "lambda"}}
    ]


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_each_schedule_invokes_the_live_alias_with_a_dlq(synth: Synth, schedule: str) -> None:
    name, expression = SCHEDULES[schedule]
    assert (schedule, expression) in {(t.name, t.expression) for t in topology.function(name).schedules}
    rules = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("Name") == f"lotabots-dev-{schedule}"
    ]
    assert [r["ScheduleExpression"] for r in rules] == [expression]
    (target,) = rules[0]["Targets"]
    assert ref_id(target["Arn"]) == live_alias(synth, functions_by_service(synth)[name][0])
    assert "DeadLetterConfig" in target


def test_inventory_parameter_names_every_function_and_its_log_group(synth: Synth) -> None:
    (parameter,) = [
        p["Properties"]
        for p in synth.of_type("AWS::SSM::Parameter").values()
        if p["Properties"].get("Name") == "/lotabots/dev/aiops/inventory"
    ]
    text = json.dumps(parameter["Value"])
    deployed = functions_by_service(synth)
    for fn in topology.FUNCTIONS:
        assert fn.name in text and deployed[fn.name][0] in text, fn.name
    assert "lotabots-dev-" in text


def test_environment_of_the_schedules(synth: Synth) -> None:
    deployed = functions_by_service(synth)
    artifacts = synth.logical_id(synth.stack.storage.artifacts)
    for name in ("aiops", "aiops_monitor", "aiops_planner"):
        env = env_of(deployed[name][1])
        assert env["AIOPS_BUCKET"] == {"Ref": artifacts}, name
        assert env["AIOPS_INVENTORY_PARAMETER"] == "/lotabots/dev/aiops/inventory", name
    # The health probe's URL travels in the inventory parameter, not the environment (a function
    # depending on the API stage would close a cycle through the aliases' alarms).
    assert "AIOPS_API_URL" not in env_of(deployed["aiops_monitor"][1])
    parameters = synth.of_type("AWS::SSM::Parameter").values()
    (inventory,) = [v for v in parameters if v["Properties"]["Name"].endswith("aiops/inventory")]
    assert "api_url" in json.dumps(inventory["Properties"]["Value"])
    assert "SLACK_SECRET_ID" in env_of(deployed["aiops_planner"][1])


def _layers(function: dict[str, Any]) -> list[str]:
    return [str(ref_id(layer)) for layer in function["Properties"]["Layers"]]


def test_only_the_planner_carries_the_charting_layer(synth: Synth) -> None:
    deployed = functions_by_service(synth)
    charting = tuple(_layers(deployed["aiops_planner"][1]))
    for name, (_, resource) in deployed.items():
        if name != "aiops_planner":
            assert tuple(_layers(resource)) != charting, name
