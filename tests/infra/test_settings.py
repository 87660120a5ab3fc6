"""Stage settings from CDK context: defaults, production switches, refusals."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _settings(context: dict[str, Any], region: str = "us-east-1") -> Any:
    from aws_cdk import App
    from lotabots_infra.settings import StageSettings

    return StageSettings.from_node(App(context=context).node, region)


def test_development_defaults() -> None:
    s = _settings({})
    assert (s.stage, s.api_stage_name, s.job_backend, s.nat_gateways) == ("dev", "api", "batch", 1)
    assert not s.production and s.log_retention_days == 30
    assert s.name("gpu") == "lotabots-dev-gpu" and s.path("jwks") == "/lotabots/dev/jwks"
    assert s.params_secrets_extension_arn.startswith("arn:aws:lambda:us-east-1:177933569100:layer:")


def test_production_defaults_and_overrides() -> None:
    s = _settings(
        {"stage": "prod", "jobBackend": "modal", "apiStageName": "v1", "gpuInstanceTypes": "g6.xlarge"}
    )
    assert s.production and s.nat_gateways == 2 and s.db_backup_days == 14 and s.log_retention_days == 365
    assert (s.job_backend, s.api_stage_name, s.gpu_instance_types) == ("modal", "v1", ("g6.xlarge",))


@pytest.mark.parametrize("stage", ["Prod", "dev-1", "a b", ""])
def test_stage_names_must_be_lower_case_alphanumeric(stage: str) -> None:
    with pytest.raises(ValueError, match="stage"):
        _settings({"stage": stage})


def test_other_regions_must_name_their_parameters_extension_layer() -> None:
    with pytest.raises(ValueError, match="paramsSecretsExtensionArn"):
        _settings({}, region="eu-west-1")
    arn = "arn:aws:lambda:eu-west-1:015030872274:layer:AWS-Parameters-and-Secrets-Lambda-Extension:21"
    assert (
        _settings({"paramsSecretsExtensionArn": arn}, region="eu-west-1").params_secrets_extension_arn == arn
    )


def test_log_retention_must_be_a_cloudwatch_value() -> None:
    from aws_cdk import aws_logs as logs

    assert _settings({"logRetentionDays": 90}).log_retention == logs.RetentionDays.THREE_MONTHS
    with pytest.raises(ValueError, match="logRetentionDays=42"):
        _ = _settings({"logRetentionDays": 42}).log_retention
