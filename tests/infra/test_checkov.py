"""checkov (its own venv, `make tools`) on the synthesized stack: every finding is one of the
skipped checks in infra/checkov-skips.yaml, each with a written reason, and every skip still
matches a finding (a skip that no longer applies is removed, not kept "just in case")."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from lotabots import access
from tests.infra.conftest import ROOT, Synth, tool

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

SKIPS_FILE = ROOT / "infra" / "checkov-skips.yaml"


def skips() -> dict[str, str]:
    return dict(yaml.safe_load(SKIPS_FILE.read_text()))


@pytest.fixture(scope="module")
def findings(synth: Synth) -> dict[str, list[str]]:
    """check id → resources it fails, for a checkov run without any skip."""
    template = synth.outdir / f"{synth.stack.stack_name}.template.json"
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_EXPERIMENTAL_IMAGE_REFERENCING": "False"}
    done = subprocess.run(
        [
            str(tool("checkov", "checkov")),
            "--file",
            str(template),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
        cwd=Path(template).parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    found: dict[str, list[str]] = {}
    for failed in report["results"]["failed_checks"]:
        found.setdefault(failed["check_id"], []).append(failed["resource"])
    return found


def test_every_checkov_finding_is_a_skipped_check_with_a_reason(findings: dict[str, list[str]]) -> None:
    unexplained = {check: resources for check, resources in findings.items() if check not in skips()}
    assert unexplained == {}
    for check, reason in skips().items():
        assert len(reason) >= 60 and "TODO" not in reason, check


def test_every_skip_still_matches_a_finding(findings: dict[str, list[str]]) -> None:
    assert sorted(set(skips()) - set(findings)) == []


def test_the_skips_that_name_resources_match_only_those(findings: dict[str, list[str]]) -> None:
    """Skips justified by specific resources must not hide the check on any other one."""
    assert [r.split(".", 1)[0] for r in findings["CKV_AWS_18"]] == ["AWS::S3::Bucket"]
    assert len(findings["CKV_AWS_18"]) == 1 and "AccessLogs" in findings["CKV_AWS_18"][0]
    outside_vpc = findings["CKV_AWS_117"]
    assert all(
        "Authorizer" in r
        or "ApiDocs" in r
        or "BucketNotificationsHandler" in r
        or "CustomResourceProvider" in r
        for r in outside_vpc
    )
    public = {r.split(".", 1)[1] for r in findings["CKV_AWS_59"]}
    assert len(public) == len(access.public_routes())
