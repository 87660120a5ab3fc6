"""What each topology function needs from the cloud, beyond what topology says.

`lotabots.topology` is the plan (handler, triggers, memory, timeout); this module adds the
infrastructure facts: which settings classes the function reads (its environment is exactly
the variables of those classes that the stack can fill), whether it talks to the database
(then it runs in the VPC), whether it needs the internet (Slack, Modal: then it runs in the
subnets with a NAT route) and which pyproject extras its dependency layer carries.
Every topology function must have a profile; the stack refuses to synthesize otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lotabots import topology
from lotabots.config import (
    AIOpsSettings,
    AlertSettings,
    AttestationSettings,
    AuditSettings,
    AuthSettings,
    CoreSettings,
    DocumentSettings,
    EnvSettings,
    JobSettings,
)


@dataclass(frozen=True)
class FunctionProfile:
    settings: tuple[type[EnvSettings], ...] = ()
    database: bool = True
    internet: bool = False
    extras: tuple[str, ...] = ()


PROFILES: Mapping[str, FunctionProfile] = {
    # No database and no VPC: the authorizer only verifies ES256 tokens against the JWKS and
    # the revocation list it reads from SSM through the Parameters and Secrets extension.
    "authorizer": FunctionProfile(settings=(AuthSettings,), database=False),
    "auth": FunctionProfile(settings=(AuthSettings,)),
    # Health and the AIOps reads (presigned chart and report URLs from the state bucket).
    "aiops": FunctionProfile(settings=(AIOpsSettings,)),
    # Serves the OpenAPI document it was deployed with: no database, no VPC.
    "api_docs": FunctionProfile(database=False),
    # Also creates the model-signing key on deploy (attestation).
    "migrate": FunctionProfile(settings=(AttestationSettings,)),
    "documents": FunctionProfile(settings=(DocumentSettings,)),
    "document_ingest": FunctionProfile(settings=(DocumentSettings,)),
    # Cancelling a running job stops it on Modal (its API is on the internet) or AWS Batch (no
    # VPC endpoint: reached the same way), so the jobs API needs the modal package and NAT too.
    "jobs": FunctionProfile(settings=(JobSettings,), internet=True, extras=("modal",)),
    # Dispatch and results also sign attestation verdicts (EAR tokens with the JWT keys: AuthSettings);
    # results verifies NVIDIA's CC tokens against NVIDIA's JWKS (internet) and signs model baselines.
    "job_dispatch": FunctionProfile(
        settings=(JobSettings, AuthSettings, AttestationSettings), internet=True, extras=("modal",)
    ),
    "job_results": FunctionProfile(
        settings=(JobSettings, AuthSettings, AttestationSettings), internet=True, extras=("modal",)
    ),
    "alerts": FunctionProfile(settings=(AlertSettings,)),
    "alert_ingest": FunctionProfile(settings=(AlertSettings,)),
    "alert_flush": FunctionProfile(settings=(AlertSettings,)),
    # Slack's Web API is on the internet.
    "alert_notify": FunctionProfile(settings=(AlertSettings,), internet=True),
    "audit": FunctionProfile(settings=(AuditSettings,)),
    "audit_anchor": FunctionProfile(settings=(AuditSettings,)),
    # Attestation API: starts attestation jobs (gpu-jobs queue), reads evidence from the artifacts bucket.
    "attestations": FunctionProfile(settings=(JobSettings, AttestationSettings)),
    # The re-attestation sweep also signs the failed verdicts of attestations that expired unanswered.
    "attestation_schedule": FunctionProfile(settings=(JobSettings, AuthSettings, AttestationSettings)),
    # AIOps schedules: CloudWatch (metrics, logs), SQS, SSM, S3 and EventBridge are reached through
    # the VPC endpoints; the health probe of the public API, Slack, Application Auto Scaling and
    # Batch (no endpoints here) through the NAT. The planner draws charts: Pillow is
    # its layer variant (`aiops`), never in the core layer the API functions load.
    "aiops_monitor": FunctionProfile(settings=(AIOpsSettings,), internet=True),
    "aiops_planner": FunctionProfile(
        settings=(AIOpsSettings, AlertSettings), internet=True, extras=("aiops",)
    ),
}


def profile(name: str) -> FunctionProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(
            f"topology function {name!r} has no entry in lotabots_infra.profiles.PROFILES "
            "(settings it reads, database, internet, layer extras)"
        ) from None


def check_profiles() -> None:
    """Every topology function has a profile and every profile names a topology function."""
    names = {fn.name for fn in topology.FUNCTIONS}
    missing = sorted(names - PROFILES.keys())
    extra = sorted(PROFILES.keys() - names)
    if missing or extra:
        raise ValueError(f"profiles out of step with topology: missing {missing}, unknown {extra}")


def env_name(settings: type[EnvSettings], field: str) -> str:
    """The environment variable a settings field is read from (its alias)."""
    info = settings.model_fields[field]
    if not info.alias:
        raise ValueError(f"{settings.__name__}.{field} has no alias")
    return info.alias


def env_names(settings: tuple[type[EnvSettings], ...]) -> set[str]:
    classes: tuple[type[EnvSettings], ...] = (CoreSettings, *settings)
    return {info.alias for cls in classes for info in cls.model_fields.values() if info.alias}


DATABASE_FIELDS = ("db_secret_arn", "db_proxy_endpoint", "db_name")


def function_environment(
    fn: topology.Function, values: Mapping[str, str], common: Mapping[str, str]
) -> dict[str, str]:
    """The function's environment: `common`, then every variable of its settings classes that
    the stack has a value for (the database ones only if it uses the database), then the
    topology's `extra_env`."""
    needs = profile(fn.name)
    wanted = env_names(needs.settings)
    if not needs.database:
        wanted -= {env_name(CoreSettings, field) for field in DATABASE_FIELDS}
    env = dict(common)
    env.update({name: value for name, value in values.items() if name in wanted})
    env.update(fn.extra_env)
    return env
