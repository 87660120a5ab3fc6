"""Every Lambda function of `lotabots.topology`, with its role, log group, environment,
network placement, SQS triggers and schedules.

Releases: each function publishes a version on every change and serves it through its `live`
alias. Everything that invokes a function (API Gateway, the authorizer, SQS event-source
mappings, schedules) points at the alias, so CodeDeploy (`releases.py`) can shift traffic to a
new version gradually and roll it back. SnapStart snapshots published versions of the Python
functions (`lotabots.snapstart` holds the runtime hooks); a function with provisioned
concurrency on this stage keeps its environments warm instead (a version cannot have both).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from lotabots import topology
from lotabots.config import CoreSettings
from lotabots_infra import assets, grants
from lotabots_infra.network import Network
from lotabots_infra.profiles import check_profiles, env_name, function_environment, profile
from lotabots_infra.settings import StageSettings, pascal

METRICS_NAMESPACE = "LotaBots"
# SQS must not hand a message to a second consumer while the first may still be working on it:
# AWS recommends a visibility timeout of at least six times the function's timeout.
VISIBILITY_FACTOR = 6
SCHEDULE_RETRIES = 2
LIVE_ALIAS = "live"
# `sam local invoke` only overrides variables the template declares: the samLocal template
# declares these (empty) so events/env.json can point functions at the local stack.
SAM_LOCAL_VARIABLES = ("AWS_ENDPOINT_URL", "DATABASE_URL", "POWERTOOLS_TRACE_DISABLED")
# What Lambda needs to attach an in-VPC function to its subnets: the EC2 part of the AWS managed
# AWSLambdaVPCAccessExecutionRole, scoped. Only the Describe calls lack resource-level
# permissions; creating an interface is allowed in the function's own subnets with its own
# security group, and every interface action only on interfaces in this stack's VPC.
VPC_DESCRIBE_ACTIONS = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
VPC_INTERFACE_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


def check_visibility_timeouts() -> None:
    for fn in topology.FUNCTIONS:
        for trigger in fn.queues:
            queue = topology.queue(trigger.queue)
            if queue.visibility_timeout_s < VISIBILITY_FACTOR * fn.timeout_s:
                raise ValueError(
                    f"queue {queue.name}: visibility timeout {queue.visibility_timeout_s}s is less than "
                    f"{VISIBILITY_FACTOR}x the {fn.timeout_s}s timeout of {fn.name}"
                )


# Revocations must reach the authorizer quickly (see lotabots.config.REVOCATION_BOUND_SECONDS).
PARAMETERS_EXTENSION_TTL_SECONDS = 10


def sam_logical_id(function_name: str) -> str:
    """Logical id of a topology function in the SAM variant: `alert_notify` → `AlertNotifyFunction`."""
    return f"{pascal(function_name)}Function"


def uses_snap_start(spec: topology.Function, settings: StageSettings) -> bool:
    """SnapStart for every Python function that serves traffic, unless the stage keeps it warm
    with provisioned concurrency (not both on one version). The migration function runs once
    per deploy: a snapshot would only add to the deploy's time."""
    return (
        settings.snap_start
        and spec.kind != "migration"
        and spec.name not in settings.provisioned_concurrency
        and assets.RUNTIME.family == lambda_.RuntimeFamily.PYTHON
    )


def check_concurrency(settings: StageSettings) -> None:
    """Concurrency settings name topology functions and are within what Lambda accepts."""
    names = {fn.name for fn in topology.FUNCTIONS}
    unknown = sorted(set(settings.provisioned_concurrency) - names)
    if unknown:
        raise ValueError(f"provisionedConcurrency names functions that topology does not have: {unknown}")
    for fn in topology.FUNCTIONS:
        for trigger in fn.queues:
            if not 2 <= trigger.max_concurrency <= 1000:
                raise ValueError(
                    f"{fn.name}: SQS maximum concurrency must be 2..1000, got {trigger.max_concurrency}"
                )
            if fn.reserved_concurrency is not None and fn.reserved_concurrency < trigger.max_concurrency:
                raise ValueError(
                    f"{fn.name}: reserved concurrency {fn.reserved_concurrency} is below the "
                    f"{trigger.max_concurrency} its {trigger.queue} trigger may start (throttled messages "
                    "would be redelivered and end in the DLQ)"
                )


def network_interface_statements(
    vpc: ec2.IVpc, subnets: ec2.SubnetSelection, security_group: ec2.ISecurityGroup
) -> list[iam.PolicyStatement]:
    stack = Stack.of(vpc)

    def arn(resource: str, name: str) -> str:
        return stack.format_arn(service="ec2", resource=resource, resource_name=name)

    subnet_arns = [
        arn("subnet", subnet.subnet_id)
        for subnet in vpc.select_subnets(subnet_type=subnets.subnet_type).subnets
    ]
    return [
        iam.PolicyStatement(actions=VPC_DESCRIBE_ACTIONS, resources=["*"]),
        iam.PolicyStatement(
            actions=["ec2:CreateNetworkInterface"],
            resources=[*subnet_arns, arn("security-group", security_group.security_group_id)],
        ),
        iam.PolicyStatement(
            actions=VPC_INTERFACE_ACTIONS,
            resources=[arn("network-interface", "*")],
            conditions={"ArnEquals": {"ec2:Vpc": arn("vpc", vpc.vpc_id)}},
        ),
    ]


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        network: Network,
        resources: grants.Resources,
        values: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        check_profiles()
        check_visibility_timeouts()
        check_concurrency(settings)
        self.settings = settings
        self.functions: dict[str, lambda_.Function] = {}
        # What invokers call: the `live` alias of each function's current version.
        self.aliases: dict[str, lambda_.Alias] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.roles: dict[str, iam.Role] = {}
        self._layers: dict[tuple[str, ...], lambda_.LayerVersion] = {}
        extension = lambda_.ParamsAndSecretsLayerVersion.from_version_arn(
            settings.params_secrets_extension_arn,
            cache_enabled=True,
            # Revocations must reach the authorizer quickly; the JWKS is cached by the code itself.
            parameter_store_ttl=Duration.seconds(PARAMETERS_EXTENSION_TTL_SECONDS),
            http_port=2773,
        )
        for spec in topology.FUNCTIONS:
            needs = profile(spec.name)
            name = pascal(spec.name)
            log_group = logs.LogGroup(
                self,
                f"{name}Logs",
                retention=settings.log_retention,
                removal_policy=RemovalPolicy.RETAIN if settings.production else RemovalPolicy.DESTROY,
            )
            role = iam.Role(
                self,
                f"{name}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"LotaBots {spec.name}: {spec.description}"[:1000],
            )
            common = {
                env_name(CoreSettings, "service_name"): spec.name,
                env_name(CoreSettings, "stage"): settings.stage,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                # Responses carry tokens and presigned URLs: never copy them into X-Ray.
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
                # pydantic would scan every installed distribution's entry points for plugins
                # on its first model: a tenth of a cold start, for plugins we never use.
                "PYDANTIC_DISABLE_PLUGINS": "__all__",
            }
            if settings.sam_local:
                common.update(dict.fromkeys(SAM_LOCAL_VARIABLES, ""))
            vpc_args: dict[str, object] = {}
            if needs.database:
                subnets, security_group = network.function_placement(needs.internet)
                vpc_args = {"vpc": network.vpc, "vpc_subnets": subnets, "security_groups": [security_group]}
            provisioned = settings.provisioned_concurrency.get(spec.name)
            fn = lambda_.Function(
                self,
                name,
                description=spec.description,
                runtime=assets.RUNTIME,
                architecture=assets.ARCHITECTURE,
                handler=spec.handler,
                code=assets.function_code(
                    spec.code_dir,
                    assets.GENERATED_FILES[spec.name]() if spec.name in assets.GENERATED_FILES else None,
                ),
                layers=[self._layer(needs.extras)],
                memory_size=spec.memory_mb,
                timeout=Duration.seconds(spec.timeout_s),
                environment=function_environment(spec, values, common),
                role=role,
                log_group=log_group,
                logging_format=lambda_.LoggingFormat.JSON,
                tracing=lambda_.Tracing.ACTIVE,
                params_and_secrets=(
                    extension if spec.kind == "authorizer" and not settings.sam_local else None
                ),
                snap_start=(
                    lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if uses_snap_start(spec, settings) else None
                ),
                reserved_concurrent_executions=(
                    spec.reserved_concurrency if settings.reserved_concurrency else None
                ),
                **vpc_args,  # type: ignore[arg-type]
            )
            if settings.sam_local:
                # Readable ids for `sam local invoke <id>` (samconfig.toml lists them).
                sam_resource = fn.node.default_child
                assert isinstance(sam_resource, lambda_.CfnFunction)
                sam_resource.override_logical_id(sam_logical_id(spec.name))
            alias = lambda_.Alias(
                self,
                f"{name}Live",
                alias_name=LIVE_ALIAS,
                version=fn.current_version,
                description=f"{spec.name}: the version that receives traffic",
                provisioned_concurrent_executions=provisioned,
            )
            log_group.grant_write(role)
            if needs.database:
                subnets, security_group = network.function_placement(needs.internet)
                for statement in network_interface_statements(network.vpc, subnets, security_group):
                    role.add_to_policy(statement)
            grants.apply(spec.name, resources, fn)
            for trigger in spec.queues:
                alias.add_event_source(
                    sources.SqsEventSource(
                        resources.messaging.queues[trigger.queue],
                        batch_size=trigger.batch_size,
                        max_batching_window=(
                            Duration.seconds(trigger.max_batching_window_s)
                            if trigger.max_batching_window_s
                            else None
                        ),
                        report_batch_item_failures=True,
                        max_concurrency=trigger.max_concurrency,
                    )
                )
            for schedule in spec.schedules:
                events.Rule(
                    self,
                    f"{name}{pascal(schedule.name)}Schedule",
                    rule_name=settings.name(schedule.name),
                    description=f"{schedule.expression} → {spec.name}",
                    schedule=events.Schedule.expression(schedule.expression),
                    targets=[
                        targets.LambdaFunction(
                            alias,
                            dead_letter_queue=resources.messaging.rule_dlq,
                            retry_attempts=SCHEDULE_RETRIES,
                            max_event_age=Duration.minutes(5),
                        )
                    ],
                )
            self.functions[spec.name] = fn
            self.aliases[spec.name] = alias
            self.log_groups[spec.name] = log_group
            self.roles[spec.name] = role

    def _layer(self, extras: tuple[str, ...]) -> lambda_.LayerVersion:
        if extras not in self._layers:
            suffix = "".join(pascal(extra) for extra in extras)
            self._layers[extras] = lambda_.LayerVersion(
                self,
                f"CoreLayer{suffix}",
                code=assets.dependency_layer_code(extras),
                compatible_runtimes=[assets.RUNTIME],
                compatible_architectures=[assets.ARCHITECTURE],
                description="lotabots package and its dependencies" + "".join(f" + {e}" for e in extras),
            )
        return self._layers[extras]

    @property
    def layers(self) -> dict[tuple[str, ...], lambda_.LayerVersion]:
        return dict(self._layers)
