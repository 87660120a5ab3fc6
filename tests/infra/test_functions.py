"""Lambda functions: one per topology entry, configured as topology and the settings contract say."""

from __future__ import annotations

from typing import Any

import pytest

from lotabots import topology
from lotabots.config import (
    AIOpsSettings,
    AlertSettings,
    AttestationSettings,
    AuditSettings,
    AuthSettings,
    CoreSettings,
    DocumentSettings,
    JobSettings,
)
from tests.infra.conftest import Synth, env_of, functions_by_service, mentions, ref_id

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

ALL_SETTINGS = (
    CoreSettings,
    AuthSettings,
    DocumentSettings,
    JobSettings,
    AlertSettings,
    AuditSettings,
    AttestationSettings,
    AIOpsSettings,
)
# Variables the platform reads that are not in a settings class: Powertools' own, and the
# Parameters and Secrets extension's configuration (set by CDK on the authorizer).
FOREIGN_PREFIXES = (
    "POWERTOOLS_",
    "PYDANTIC_",  # PYDANTIC_DISABLE_PLUGINS: no plugin scan on a cold start
    "PARAMETERS_SECRETS_EXTENSION_",
    "SSM_PARAMETER_STORE_",
    "SECRETS_MANAGER_",
)


def _is_resource_field(name: str) -> bool:
    """Settings fields naming a cloud resource: their defaults only exist in the local stack."""
    return name.endswith(
        ("_table", "_bucket", "_secret_id", "_parameter_name", "_parameter", "_queue_url")
    ) or name in {"bucket", "queue_url", "batch_job_queue", "batch_job_definition"}


def test_every_topology_function_exists_with_its_runtime_handler_memory_and_timeout(synth: Synth) -> None:
    """Each topology function is a python3.12/x86_64 Lambda with topology's handler, memory and timeout."""
    deployed = functions_by_service(synth)
    assert set(deployed) == {fn.name for fn in topology.FUNCTIONS}
    for fn in topology.FUNCTIONS:
        _, resource = deployed[fn.name]
        props = resource["Properties"]
        assert props["Runtime"] == "python3.12", fn.name
        assert props["Architectures"] == ["x86_64"], fn.name
        assert props["Handler"] == fn.handler, fn.name
        assert props["MemorySize"] == fn.memory_mb, fn.name
        assert props["Timeout"] == fn.timeout_s, fn.name
        assert props["TracingConfig"] == {"Mode": "Active"}, fn.name
        assert props["LoggingConfig"]["LogFormat"] == "JSON", fn.name
        log_group = synth.resources[ref_id(props["LoggingConfig"]["LogGroup"]) or ""]
        assert log_group["Properties"]["RetentionInDays"] == 30, fn.name


def test_function_environment_follows_the_settings_contract(synth: Synth) -> None:
    """Every variable set is one the code reads; every resource name the code reads is set."""
    from lotabots_infra.profiles import profile

    known = {info.alias for cls in ALL_SETTINGS for info in cls.model_fields.values() if info.alias}
    deployed = functions_by_service(synth)
    for fn in topology.FUNCTIONS:
        env = env_of(deployed[fn.name][1])
        unknown = {k for k in env if k not in known and not k.startswith(FOREIGN_PREFIXES)}
        assert unknown == set(), (fn.name, unknown)
        assert env["POWERTOOLS_SERVICE_NAME"] == fn.name
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "LotaBots"
        assert env["LOTABOTS_STAGE"] == "dev"
        assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
        needs = profile(fn.name)
        for cls in (CoreSettings, *needs.settings):
            for field, info in cls.model_fields.items():
                if _is_resource_field(field):
                    assert info.alias in env, (
                        f"{fn.name} reads {cls.__name__}.{field} ({info.alias}) but it is unset"
                    )
        db_vars = {"DB_SECRET_ARN", "DB_PROXY_ENDPOINT", "DB_NAME"}
        if needs.database:
            assert db_vars <= set(env), fn.name
            assert env["DB_NAME"] == "lotabots"
        else:
            assert not db_vars & set(env), fn.name


def test_functions_using_the_database_run_in_the_vpc_and_only_internet_callers_get_nat(synth: Synth) -> None:
    """DB functions are in the VPC: Slack/Modal callers in egress (NAT) subnets, the rest isolated."""
    from lotabots_infra.profiles import profile

    deployed = functions_by_service(synth)
    for fn in topology.FUNCTIONS:
        props = deployed[fn.name][1]["Properties"]
        needs = profile(fn.name)
        if not needs.database:
            assert "VpcConfig" not in props, fn.name
            continue
        subnets = [ref_id(s) or "" for s in props["VpcConfig"]["SubnetIds"]]
        assert len(subnets) == 2, fn.name
        expected = "egress" if needs.internet else "isolated"
        assert all(expected in s for s in subnets), (fn.name, subnets)
    assert all(profile(name).internet for name in ("alert_notify", "jobs", "job_dispatch", "job_results"))


def test_authorizer_uses_the_parameters_extension_and_reads_only_two_parameters(synth: Synth) -> None:
    """The authorizer has the extension layer, its URL, and ssm:GetParameter on JWKS + revocations only."""
    _, resource = functions_by_service(synth)["authorizer"]
    props = resource["Properties"]
    layers = [layer for layer in props["Layers"] if isinstance(layer, str)]
    assert layers == [
        "arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension:19"
    ]
    env = env_of(resource)
    assert env["PARAMETERS_EXTENSION_URL"] == "http://localhost:2773"
    assert env["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] == "2773"
    secrets = synth.stack.secrets
    assert ref_id(env["JWKS_PARAMETER_NAME"]) == synth.logical_id(secrets.jwks)
    assert ref_id(env["REVOCATIONS_PARAMETER_NAME"]) == synth.logical_id(secrets.revocations)
    role_id = ref_id(props["Role"])
    statements = _statements_of_role(synth, role_id or "")
    ssm = [s for s in statements if any(str(a).startswith("ssm:") for a in _actions(s))]
    assert {a for s in ssm for a in _actions(s)} == {"ssm:GetParameter"}
    resources = [s["Resource"] for s in ssm]
    assert len(resources) == 2 and all(isinstance(r, dict) for r in resources)
    assert sorted(mentions(r, synth.logical_id(secrets.jwks)) for r in resources) == [False, True]
    assert sorted(mentions(r, synth.logical_id(secrets.revocations)) for r in resources) == [False, True]
    other = {a for s in statements for a in _actions(s)} - {"ssm:GetParameter"}
    assert other == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_gpu_job_functions_get_the_modal_layer_and_others_the_lean_core_layer(synth: Synth) -> None:
    """One fully resolved dependency layer per function: +modal (GPU job functions) or +aiops
    (Pillow: the AIOps planner's charts) only where the profile asks for it."""
    from lotabots_infra.profiles import profile

    layers = {extras: synth.logical_id(layer) for extras, layer in synth.stack.functions.layers.items()}
    assert set(layers) == {(), ("modal",), ("aiops",)}
    deployed = functions_by_service(synth)
    for fn in topology.FUNCTIONS:
        refs = [ref_id(layer) for layer in deployed[fn.name][1]["Properties"]["Layers"]]
        ours = [r for r in refs if r in layers.values()]  # the authorizer also has the extension (by ARN)
        assert ours == [layers[profile(fn.name).extras]], fn.name
    for layer in synth.of_type("AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]


def test_migration_function_runs_on_deploy_after_the_database_exists(synth: Synth) -> None:
    """A CDK Trigger invokes the migrate function's current version once the cluster and proxy exist."""
    triggers = synth.of_type("Custom::Trigger")
    assert len(triggers) == 1
    trigger = next(iter(triggers.values()))
    migrate_id, _ = functions_by_service(synth)["migrate"]
    version_ids = [k for k, v in synth.of_type("AWS::Lambda::Version").items() if mentions(v, migrate_id)]
    assert len(version_ids) == 1
    assert mentions(trigger["Properties"]["HandlerArn"], version_ids[0])
    depends = set(trigger.get("DependsOn", []))
    assert synth.logical_id(synth.stack.database.cluster) in depends
    assert synth.logical_id(synth.stack.database.proxy) in depends


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def _statements_of_role(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if any(ref_id(r) == role_id for r in policy["Properties"].get("Roles", [])):
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_no_wildcard_actions_and_resource_star_only_where_iam_requires_it(synth: Synth) -> None:
    """Least privilege: no `*` in any action; `Resource: *` only for actions without resource ARNs."""
    from lotabots_infra.nag import WILDCARD_RESOURCE_ACTIONS

    bucket_notifications = {
        k for k, v in synth.of_type("AWS::IAM::Policy").items() if k.startswith("BucketNotificationsHandler")
    }
    for logical_id, policy in synth.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = _actions(statement)
            assert not [a for a in actions if "*" in a], (logical_id, actions)
            resources = statement.get("Resource", [])
            if resources == "*" or (isinstance(resources, list) and "*" in resources):
                if logical_id in bucket_notifications:
                    assert actions == ["s3:PutBucketNotification"]
                else:
                    assert set(actions) <= WILDCARD_RESOURCE_ACTIONS, (logical_id, actions)


def test_every_topology_function_has_an_explicit_grant_list_and_profile() -> None:
    """`GRANTS` and `PROFILES` name exactly the topology functions (no implicit defaults)."""
    from lotabots_infra.grants import GRANTS
    from lotabots_infra.profiles import PROFILES

    names = {fn.name for fn in topology.FUNCTIONS}
    assert set(GRANTS) == names
    assert set(PROFILES) == names


def test_a_queue_whose_visibility_timeout_is_too_short_for_its_consumer_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQS visibility must be >= 6x the consumer's timeout, or the stack refuses to synthesize."""
    from lotabots_infra.functions import check_visibility_timeouts

    check_visibility_timeouts()
    short = tuple(
        topology.Queue(q.name, q.env_var, visibility_timeout_s=30) if q.name == "document-ingest" else q
        for q in topology.QUEUES
    )
    monkeypatch.setattr(topology, "QUEUES", short)
    with pytest.raises(ValueError, match="document-ingest"):
        check_visibility_timeouts()
