"""Per-stage knobs, read from CDK context (`cdk deploy -c stage=prod -c natGateways=2 ...`).

Every value has a default suited to a development stage; `stage=prod` switches on the
production defaults (deletion protection, longer retention, two NAT gateways).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import aws_logs as logs
from constructs import Node

from lotabots import __version__

PRODUCTION_STAGES = frozenset({"prod", "production"})
# us-east-1 build of the AWS Parameters and Secrets Lambda Extension (x86_64). Other regions
# publish it from other accounts: pass `-c paramsSecretsExtensionArn=<arn>` there.
PARAMS_SECRETS_EXTENSION_ACCOUNT = "177933569100"
PARAMS_SECRETS_EXTENSION_VERSION = 19
PARAMS_SECRETS_EXTENSION_REGION = "us-east-1"
# Provisioned concurrency per function on production stages: the authorizer sits in front of
# every API call, so two warm environments keep its cold start off the request path.
PRODUCTION_PROVISIONED_CONCURRENCY = {"authorizer": 2}
DEPLOYMENT_CONFIGS = ("canary", "linear", "allAtOnce")


def pascal(name: str) -> str:
    """Construct-id form of a topology name: `alert-ingest` / `alert_ingest` → `AlertIngest`."""
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def parse_function_counts(value: Any) -> dict[str, int]:
    """`{"auth": 1}` (cdk.json) or `auth=1,authorizer=2` (`-c` on the command line)."""
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    else:
        text = str(value).strip()
        if text.startswith("{"):
            return parse_function_counts(json.loads(text))
        items = [tuple(part.split("=", 1)) for part in text.split(",") if part.strip()]  # type: ignore[misc]
    counts: dict[str, int] = {}
    for item in items:
        if len(item) != 2:
            raise ValueError(f"expected name=count, got {'='.join(item)!r}")
        name, count = item[0].strip(), int(item[1])
        if count < 0:
            raise ValueError(f"{name}: a concurrency cannot be negative")
        if count:
            counts[name] = count
    return counts


def params_secrets_extension_arn(region: str, version: int = PARAMS_SECRETS_EXTENSION_VERSION) -> str:
    return (
        f"arn:aws:lambda:{region}:{PARAMS_SECRETS_EXTENSION_ACCOUNT}:layer:"
        f"AWS-Parameters-and-Secrets-Lambda-Extension:{version}"
    )


_RETENTION_BY_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    try:
        return _RETENTION_BY_DAYS[days]
    except KeyError:
        raise ValueError(
            f"logRetentionDays={days} is not a CloudWatch retention; use one of {sorted(_RETENTION_BY_DAYS)}"
        ) from None


@dataclass(frozen=True)
class StageSettings:
    stage: str
    api_stage_name: str
    region: str
    job_backend: str
    gpu_image_tag: str
    gpu_instance_types: tuple[str, ...]
    gpu_max_vcpus: int
    cors_allow_origin: str
    nat_gateways: int
    db_min_capacity: float
    db_max_capacity: float
    db_backup_days: int
    log_retention_days: int
    api_rate_limit: int
    api_burst_limit: int
    auth_rate_limit: int
    auth_burst_limit: int
    waf_rate_limit: int
    waf_auth_rate_limit: int
    params_secrets_extension_arn: str
    alarm_email: str | None
    jwt_issuer: str
    jwt_audience: str
    # A template for `sam local invoke` against the local stack (never deploy it): every function
    # also declares the variables events/env.json overrides (endpoint, database URL), there is
    # no Serverless Application Repository app and no layer referenced by ARN (docs/operations.md).
    sam_local: bool = False
    # Compliance-mode Object Lock retention of the audit anchors: nobody can delete one sooner.
    audit_anchor_retention_days: int = 1
    # Releases (docs/operations.md): SnapStart on published versions, provisioned concurrency on
    # the `live` alias per function (a version with it cannot also use SnapStart), reserved
    # concurrency from topology (off for accounts still at the default quota of 10), and how
    # CodeDeploy shifts traffic to a new version.
    snap_start: bool = True
    provisioned_concurrency: dict[str, int] = field(default_factory=dict)
    reserved_concurrency: bool = True
    deployment_config: str = "canary"

    @property
    def production(self) -> bool:
        return self.stage in PRODUCTION_STAGES

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _retention(self.log_retention_days)

    def name(self, suffix: str) -> str:
        """A physical name unique per stage, e.g. `lotabots-dev-gpu`."""
        return f"lotabots-{self.stage}-{suffix}"

    def path(self, suffix: str) -> str:
        """A hierarchical name (secrets, parameters), e.g. `/lotabots/dev/jwks`."""
        return f"/lotabots/{self.stage}/{suffix}"

    @classmethod
    def from_node(cls, node: Node, region: str) -> StageSettings:
        def get(key: str, default: Any) -> Any:
            value = node.try_get_context(key)
            return default if value is None else value

        stage = str(get("stage", "dev"))
        if not stage.isalnum() or not stage.islower():
            raise ValueError(f"stage={stage!r}: use lower-case letters and digits only")
        prod = stage in PRODUCTION_STAGES
        extension = get("paramsSecretsExtensionArn", None)
        if extension is None:
            if region != PARAMS_SECRETS_EXTENSION_REGION:
                raise ValueError(
                    f"region {region}: pass -c paramsSecretsExtensionArn=<this region's ARN of the "
                    "AWS Parameters and Secrets Lambda Extension (x86_64)>"
                )
            extension = params_secrets_extension_arn(region)
        types = get("gpuInstanceTypes", "g6.xlarge,g6.2xlarge,g5.xlarge,g5.2xlarge")
        return cls(
            stage=stage,
            api_stage_name=str(get("apiStageName", "api")),
            region=region,
            job_backend=str(get("jobBackend", "batch")),
            gpu_image_tag=str(get("gpuImageTag", __version__)),
            gpu_instance_types=tuple(t.strip() for t in str(types).split(",") if t.strip()),
            gpu_max_vcpus=int(get("gpuMaxVcpus", 32)),
            cors_allow_origin=str(get("corsAllowOrigin", "*")),
            nat_gateways=int(get("natGateways", 2 if prod else 1)),
            db_min_capacity=float(get("dbMinCapacity", 1 if prod else 0.5)),
            db_max_capacity=float(get("dbMaxCapacity", 16 if prod else 4)),
            db_backup_days=int(get("dbBackupDays", 14 if prod else 7)),
            log_retention_days=int(get("logRetentionDays", 365 if prod else 30)),
            api_rate_limit=int(get("apiRateLimit", 200)),
            api_burst_limit=int(get("apiBurstLimit", 400)),
            auth_rate_limit=int(get("authRateLimit", 10)),
            auth_burst_limit=int(get("authBurstLimit", 20)),
            waf_rate_limit=int(get("wafRateLimit", 2000)),
            waf_auth_rate_limit=int(get("wafAuthRateLimit", 100)),
            params_secrets_extension_arn=str(extension),
            alarm_email=get("alarmEmail", None),
            jwt_issuer=str(get("jwtIssuer", f"https://lotabots.{stage}")),
            jwt_audience=str(get("jwtAudience", "lotabots-api")),
            audit_anchor_retention_days=int(get("auditAnchorRetentionDays", 400 if prod else 1)),
            sam_local=_truthy(get("samLocal", "false")),
            snap_start=_truthy(get("snapStart", "true")),
            provisioned_concurrency=parse_function_counts(
                get("provisionedConcurrency", PRODUCTION_PROVISIONED_CONCURRENCY if prod else {})
            ),
            reserved_concurrency=_truthy(get("reservedConcurrency", "true")),
            deployment_config=_deployment_config(str(get("deploymentConfig", "canary"))),
        )


def _deployment_config(value: str) -> str:
    if value not in DEPLOYMENT_CONFIGS:
        raise ValueError(f"deploymentConfig={value!r}: use one of {', '.join(DEPLOYMENT_CONFIGS)}")
    return value
