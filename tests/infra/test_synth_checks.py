"""The synthesized template passes cdk-nag (AwsSolutions) and cfn-lint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra.conftest import SKIP_BUNDLING, Synth

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# CDK makes every function depend on its role explicitly although `Role: !GetAtt` already
# orders them; cfn-lint flags that redundancy (W3005). It is CDK's output, not ours.
IGNORED_CFN_LINT_RULES = frozenset({"W3005"})


def test_synth_succeeds_with_cdk_nag_and_no_unacknowledged_findings(synth: Synth) -> None:
    """cdk-nag runs as a validation plugin: any unacknowledged AwsSolutions finding fails synth."""
    assert synth.error is None, synth.error
    reports = synth.report.get("pluginReports", [])
    violations = [v["ruleName"] for report in reports for v in report.get("violations", [])]
    assert violations == []


def test_every_acknowledgement_has_a_specific_reason(synth: Synth) -> None:
    """Acknowledged findings carry a written reason (not a placeholder) in the construct tree."""
    from aws_cdk import Validations

    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acknowledged: dict[str, str] = {}
    for construct in synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                # CDK itself acknowledges some of its own template-validation ids; ours are cdk-nag's.
                acknowledged.update({k: v for k, v in entry.data.items() if k.startswith("AwsSolutions-")})
    assert acknowledged, "expected the stack to acknowledge some findings"
    for rule_id, reason in acknowledged.items():
        assert len(reason) >= 40 and "TODO" not in reason, (rule_id, reason)


def test_cdk_nag_plugin_really_rejects_a_violation(tmp_path: Path) -> None:
    """The same plugin setup fails synth for an unencrypted, non-TLS queue (so a pass means something)."""
    from aws_cdk import App, Stack, Validations
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks

    app = App(outdir=str(tmp_path), context=SKIP_BUNDLING)
    stack = Stack(app, "Bad")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for r in report["pluginReports"] for v in r["violations"]}
    assert {"AwsSolutions-SQS2", "AwsSolutions-SQS4"} <= rules


def test_cfn_lint_reports_no_errors_or_warnings(synth: Synth) -> None:
    """cfn-lint (us-east-1 spec) finds nothing in the template but CDK's own redundant DependsOn."""
    from cfnlint.api import ManualArgs, lint_file

    template_path = synth.outdir / f"{synth.stack.stack_name}.template.json"
    matches = lint_file(template_path, config=ManualArgs(regions=["us-east-1"]))
    problems = [
        f"{m.rule.id} {m.message} ({m.path})" for m in matches if m.rule.id not in IGNORED_CFN_LINT_RULES
    ]
    assert problems == []


def test_every_acknowledgement_matches_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Synthesize with cdk-nag but without the acknowledgements: each acknowledgement must name a
    finding cdk-nag really reports on its construct (or below); a stale one would hide nothing
    today and a real finding tomorrow."""
    from lotabots_infra import nag
    from lotabots_infra.app import build_app

    recorded: list[tuple[str, str]] = []
    monkeypatch.setattr(
        nag, "acknowledge", lambda scope, reasons: recorded.extend((scope.node.path, r) for r in reasons)
    )
    app = build_app(outdir=str(tmp_path), context=SKIP_BUNDLING)
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    findings = [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]
    assert recorded
    stale = [
        (path, rule)
        for path, rule in recorded
        if not any(found == rule and (at == path or at.startswith(path + "/")) for found, at in findings)
    ]
    assert stale == []


def test_every_stack_keeps_headroom_under_cloudformations_resource_limit(synth: Synth) -> None:
    """CloudFormation refuses a stack of more than 500 resources: the parent stack (functions, API,
    releases) and the nested Monitoring stack (alarms, dashboard, topic) each keep room to grow."""
    templates = [synth.outdir / f"{synth.stack.stack_name}.template.json"]
    templates += sorted(synth.outdir.glob("*.nested.template.json"))
    assert len(templates) >= 2
    for path in templates:
        count = len(json.loads(path.read_text())["Resources"])
        assert count <= 460, f"{path.name}: {count} resources (limit 500); nest a capability"
