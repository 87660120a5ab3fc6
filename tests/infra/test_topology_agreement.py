"""The synthesized template and `lotabots.topology` describe the same platform, both ways."""

from __future__ import annotations

import pytest

from lotabots import topology
from tests.infra.conftest import Synth, env_of

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# Lambda functions CDK adds for deploy-time plumbing (not part of the platform's topology).
CDK_PLUMBING_PREFIXES = ("AWSCDKTrigger", "BucketNotificationsHandler")


def test_template_has_exactly_the_topology_functions(synth: Synth) -> None:
    """Every platform Lambda in the template is a topology function, and vice versa."""
    platform = {
        env_of(resource).get("POWERTOOLS_SERVICE_NAME")
        for logical_id, resource in synth.of_type("AWS::Lambda::Function").items()
        if not logical_id.startswith(CDK_PLUMBING_PREFIXES)
    }
    assert platform == {fn.name for fn in topology.FUNCTIONS}


def test_template_has_exactly_the_topology_queues_and_their_dlqs(synth: Synth) -> None:
    names = {q["Properties"].get("QueueName") for q in synth.of_type("AWS::SQS::Queue").values()}
    expected = {f"lotabots-dev-{q.name}" for q in topology.QUEUES}
    expected |= {f"lotabots-dev-{q.name}-dlq" for q in topology.QUEUES}
    expected.add("lotabots-dev-rule-target-dlq")
    assert names == expected


def test_template_has_exactly_the_topology_rules_and_schedules(synth: Synth) -> None:
    names = {r["Properties"].get("Name") for r in synth.of_type("AWS::Events::Rule").values()}
    expected = {f"lotabots-dev-{rule.name}" for rule in topology.EVENT_RULES}
    expected |= {f"lotabots-dev-{s.name}" for fn in topology.FUNCTIONS for s in fn.schedules}
    assert names == expected


def test_queue_url_variables_point_at_the_topology_queue_of_that_name(synth: Synth) -> None:
    """A function told `GPU_JOBS_QUEUE_URL` gets the URL of the `gpu-jobs` queue, and so on."""
    queue_ids = {
        q["Properties"]["QueueName"].removeprefix("lotabots-dev-"): logical_id
        for logical_id, q in synth.of_type("AWS::SQS::Queue").items()
    }
    seen = 0
    for resource in synth.of_type("AWS::Lambda::Function").values():
        env = env_of(resource)
        for spec in topology.QUEUES:
            if spec.env_var in env:
                assert env[spec.env_var] == {"Ref": queue_ids[spec.name]}, spec.env_var
                seen += 1
    assert seen > 0
