"""Synthesize the CDK app once per test session (cdk-nag on, asset bundling skipped).

Every infra test reads the same cloud assembly: `synth` (the template as a dict, the
validation report, the stack object). Synth runs in this process, so the tests can also look
at the constructs themselves.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK_DIR = ROOT / "infra" / "cdk"
if str(CDK_DIR) not in sys.path:
    sys.path.insert(0, str(CDK_DIR))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

SKIP_BUNDLING: dict[str, list[str]] = {"aws:cdk:bundling-stacks": []}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): run in the same xdist worker as the group")


@dataclass
class Synth:
    outdir: Path
    stack: Any
    template: dict[str, Any]
    report: dict[str, Any]
    error: str | None

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template["Resources"])

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == cfn_type}

    def logical_id(self, construct: Any) -> str:
        child = construct.node.default_child or construct
        return str(self.stack.resolve(child.logical_id))


@pytest.fixture(scope="session")
def synth() -> Iterator[Synth]:
    from lotabots_infra.app import build_app, stack_name

    with tempfile.TemporaryDirectory(prefix="lotabots-cdk-") as tmp:
        app = build_app(outdir=tmp, context=SKIP_BUNDLING)
        error = None
        try:
            app.synth()
        except Exception as exc:  # cdk-nag violations surface as a synth error
            error = str(exc)
        stack = app.node.find_child(stack_name("dev"))
        out = Path(tmp)
        template_path = out / f"{stack.stack_name}.template.json"
        template = json.loads(template_path.read_text()) if template_path.exists() else {"Resources": {}}
        # The nested Monitoring stack's resources (alarms, dashboard, alert topic) are read with the
        # parent's: the tests ask what the deployment holds, wherever CloudFormation keeps it.
        # A nested stack's parameters are replaced by what the parent passes, so its references
        # read like the parent's own (a queue alarm names the queue's logical id).
        resources = template["Resources"].values()
        nested_stacks = [r for r in resources if r["Type"] == "AWS::CloudFormation::Stack"]
        passed = {
            str(r.get("Metadata", {}).get("aws:asset:path")): r["Properties"].get("Parameters", {})
            for r in nested_stacks
        }
        for nested in sorted(out.glob(f"{stack.node.id.replace('-', '')}*.nested.template.json")):
            parameters = passed.get(nested.name, {})
            for logical_id, resource in json.loads(nested.read_text())["Resources"].items():
                template["Resources"].setdefault(logical_id, _substitute(resource, parameters))
        report_path = out / "validation-report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        yield Synth(outdir=out, stack=stack, template=template, report=report, error=error)


def _substitute(value: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        return {k: _substitute(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, parameters) for v in value]
    return value


def env_of(function: dict[str, Any]) -> dict[str, Any]:
    return dict(function["Properties"].get("Environment", {}).get("Variables", {}))


def functions_by_service(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """Topology function name → (logical id, resource), found by POWERTOOLS_SERVICE_NAME."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for logical_id, resource in synth.of_type("AWS::Lambda::Function").items():
        service = env_of(resource).get("POWERTOOLS_SERVICE_NAME")
        if isinstance(service, str):
            found[service] = (logical_id, resource)
    return found


def ref_id(value: Any) -> str | None:
    """The logical id a `Ref` / `Fn::GetAtt` points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def mentions(value: Any, logical_id: str) -> bool:
    """Whether a template fragment references `logical_id` anywhere."""
    return logical_id in json.dumps(value)


TOOLS_DIR = ROOT / ".tools"


def tool(name: str, executable: str) -> Path:
    """A tool from its own venv under .tools/ (`make tools`). `make test` installs them and sets
    LOTABOTS_REQUIRE_TOOLS=1, so there a missing tool fails; a bare pytest run skips."""
    path = TOOLS_DIR / name / "bin" / executable
    if not path.exists():
        if os.environ.get("LOTABOTS_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{path} is missing: run `make tools`")
        pytest.skip(f"{executable} is not installed (make tools)")
    return path


@dataclass
class SamSynth:
    outdir: Path
    template_path: Path
    template: dict[str, Any]


@pytest.fixture(scope="session")
def sam_synth() -> Iterator[SamSynth]:
    """The SAM-ready variant (`make sam-template`), synthesized once per session."""
    from lotabots_infra.app import SAM_LOCAL_CONTEXT, build_app, stack_name

    with tempfile.TemporaryDirectory(prefix="lotabots-sam-") as tmp:
        app = build_app(outdir=tmp, context={**SKIP_BUNDLING, **SAM_LOCAL_CONTEXT}, nag=False)
        app.synth()
        path = Path(tmp) / f"{stack_name('dev')}.template.json"
        yield SamSynth(outdir=Path(tmp), template_path=path, template=json.loads(path.read_text()))


def live_alias(synth: Synth, function_logical_id: str) -> str:
    """The logical id of a function's `live` alias (what every invoker calls)."""
    (alias_id,) = [
        logical_id
        for logical_id, alias in synth.of_type("AWS::Lambda::Alias").items()
        if ref_id(alias["Properties"]["FunctionName"]) == function_logical_id
    ]
    return alias_id


def invokes_alias(function_name: Any, alias_logical_id: str) -> bool:
    """An event-source mapping's FunctionName: `<function name>:live`, which CDK joins from the
    alias's ARN (`Ref` of the alias)."""
    return mentions(function_name, alias_logical_id) and json.dumps(function_name).endswith(':live"]]}')
