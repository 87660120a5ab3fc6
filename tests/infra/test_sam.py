"""`sam local invoke` support: samconfig.toml, events/env.json and the samLocal template variant."""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from lotabots.config import (
    AlertSettings,
    AuditSettings,
    AuthSettings,
    CoreSettings,
    DocumentSettings,
    JobSettings,
)
from tests.infra.conftest import SKIP_BUNDLING, Synth, env_of

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / "events" / "env.json"


@pytest.fixture(scope="module")
def sam_local_template() -> dict[str, Any]:
    from lotabots_infra.app import build_app, stack_name

    with tempfile.TemporaryDirectory() as out:
        app = build_app(outdir=out, context={**SKIP_BUNDLING, "samLocal": True}, nag=False)
        app.synth()
        return dict(json.loads((Path(out) / f"{stack_name('dev')}.template.json").read_text()))


def test_samconfig_points_at_the_synthesized_stack_and_the_env_file() -> None:
    from lotabots_infra.app import stack_name

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    assert (
        config["default"]["global"]["parameters"]["template_file"]
        == f"cdk.out/{stack_name('dev')}.template.json"
    )
    assert config["default"]["local_invoke"]["parameters"]["env_vars"] == "events/env.json"


def test_env_file_only_overrides_variables_the_sam_local_template_declares(
    sam_local_template: dict[str, Any],
) -> None:
    """SAM ignores variables a function does not declare: every key must be declared somewhere."""
    declared: set[str] = set()
    for resource in sam_local_template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            declared |= set(env_of(resource))
    overrides = json.loads(ENV_FILE.read_text())["Parameters"]
    assert set(overrides) <= declared
    assert {"AWS_ENDPOINT_URL", "DATABASE_URL"} <= declared


def test_deployable_template_declares_no_local_override_variables(synth: Synth) -> None:
    for resource in synth.of_type("AWS::Lambda::Function").values():
        assert not {"AWS_ENDPOINT_URL", "DATABASE_URL"} & set(env_of(resource))


def test_env_file_names_the_resources_the_local_stack_creates() -> None:
    """The local stack provisions with the settings' defaults: env.json uses the same names."""
    overrides = json.loads(ENV_FILE.read_text())["Parameters"]
    for cls in (CoreSettings, AuthSettings, DocumentSettings, JobSettings, AlertSettings, AuditSettings):
        for field, info in cls.model_fields.items():
            if info.alias in overrides and field.endswith(
                ("_table", "bucket", "_secret_id", "_parameter_name")
            ):
                assert overrides[info.alias] == info.default, info.alias
    assert overrides["DB_SECRET_ARN"] == ""  # use DATABASE_URL, not the cloud secret
    assert overrides["AWS_ENDPOINT_URL"].startswith("http://host.docker.internal:")
