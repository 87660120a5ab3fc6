"""The tag-triggered delivery workflow (.github/workflows/deliver.yml) runs the checks in order
and deploys with OIDC: test + audit → synth (cdk-nag, cfn-lint, checkov) → diff → staging →
smoke → production behind the environment's approval; the make targets it calls exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.infra]

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "deliver.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return dict(yaml.safe_load(WORKFLOW.read_text()))


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_runs_on_version_tags_only(workflow: dict[str, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {"contents": "read"}


def test_jobs_run_in_delivery_order(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert set(jobs["synth"]["needs"]) == {"test", "audit"}
    assert jobs["staging"]["needs"] == "synth"
    assert jobs["production"]["needs"] == "staging"
    assert "make test" in _runs(jobs["test"])
    assert "make audit" in _runs(jobs["audit"])
    synth = _runs(jobs["synth"])
    assert synth.index("make synth") < synth.index("cfn-lint") < synth.index("make checkov")
    for name in ("staging", "production"):
        runs = _runs(jobs[name])
        assert runs.index("make diff") < runs.index("make deploy") < runs.index("make smoke")


def test_deploys_assume_a_role_through_oidc_in_protected_environments(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert jobs["staging"]["environment"]["name"] == "staging"
    assert jobs["production"]["environment"]["name"] == "production"
    for name, job in jobs.items():
        deploys = "make deploy" in _runs(job)
        assert (job.get("permissions", {}).get("id-token") == "write") == deploys, name
        if deploys:
            (credentials,) = [
                s
                for s in job["steps"]
                if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials")
            ]
            assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
            assert "aws-access-key-id" not in credentials["with"]
    assert "postgres" in jobs["test"]["services"]


def test_every_make_target_the_workflow_calls_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.MULTILINE))
    called = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", WORKFLOW.read_text()))
    assert called and called <= targets, called - targets
