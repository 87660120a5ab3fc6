"""Every Lambda function of `lotabots.topology`, with its role, log group, environment,
network placement, SQS triggers and schedules."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
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
# What Lambda needs to attach an in-VPC function to its subnets (the EC2 part of the AWS managed
# AWSLambdaVPCAccessExecutionRole, without its account-wide CloudWatch Logs permissions).
# `sam local invoke` only overrides variables the template declares: the samLocal template
# declares these (empty) so events/env.json can point functions at the local stack.
SAM_LOCAL_VARIABLES = ("AWS_ENDPOINT_URL", "DATABASE_URL", "POWERTOOLS_TRACE_DISABLED")
VPC_NETWORK_INTERFACE_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
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
        self.settings = settings
        self.functions: dict[str, lambda_.Function] = {}
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
            fn = lambda_.Function(
                self,
                name,
                description=spec.description,
                runtime=assets.RUNTIME,
                architecture=assets.ARCHITECTURE,
                handler=spec.handler,
                code=assets.function_code(spec.code_dir),
                layers=[self._layer(needs.extras)],
                memory_size=spec.memory_mb,
                timeout=Duration.seconds(spec.timeout_s),
                environment=function_environment(spec, values, common),
                role=role,
                log_group=log_group,
                logging_format=lambda_.LoggingFormat.JSON,
                tracing=lambda_.Tracing.ACTIVE,
                params_and_secrets=extension if spec.kind == "authorizer" else None,
                **vpc_args,  # type: ignore[arg-type]
            )
            log_group.grant_write(role)
            if needs.database:
                role.add_to_policy(
                    iam.PolicyStatement(actions=VPC_NETWORK_INTERFACE_ACTIONS, resources=["*"])
                )
            grants.apply(spec.name, resources, fn)
            for trigger in spec.queues:
                fn.add_event_source(
                    sources.SqsEventSource(
                        resources.messaging.queues[trigger.queue],
                        batch_size=trigger.batch_size,
                        max_batching_window=(
                            Duration.seconds(trigger.max_batching_window_s)
                            if trigger.max_batching_window_s
                            else None
                        ),
                        report_batch_item_failures=True,
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
                            fn,
                            dead_letter_queue=resources.messaging.rule_dlq,
                            retry_attempts=SCHEDULE_RETRIES,
                            max_event_age=Duration.minutes(5),
                        )
                    ],
                )
            self.functions[spec.name] = fn
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
