"""Safe releases: CodeDeploy shifts each function's `live` alias to its new version gradually.

A deploy that changes a function publishes a new version; CodeDeploy then moves 10% of the
alias's traffic to it for five minutes (`deploymentConfig=canary`, the default; `linear`: 10%
more every minute; `allAtOnce` for a development inner loop) and the rest when the function's
release alarms (errors and p99 latency on the alias, `observability.py`) stayed quiet. An
alarm during the shift, or a failed deployment, rolls the alias back to the previous version
and fails the CloudFormation update.

CodeDeploy acts through one role of this stack that may read and move exactly these aliases and
read this stack's alarms (in place of the AWS managed AWSCodeDeployRoleForLambdaLimited policy,
which allows that on every function and alarm of the account).

The migration function is not shifted: the deploy-time trigger invokes its new version once,
directly, and a failure fails the deploy before any traffic moves.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from lotabots import topology
from lotabots_infra.settings import StageSettings, pascal

DEPLOYMENT_CONFIGS: Mapping[str, codedeploy.ILambdaDeploymentConfig] = {
    "canary": codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES,
    "linear": codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_1_MINUTE,
    "allAtOnce": codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE,
}


def shifted_functions() -> list[str]:
    """Topology functions whose traffic CodeDeploy shifts (all but the migration function)."""
    return [fn.name for fn in topology.FUNCTIONS if fn.kind != "migration"]


class Releases(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        aliases: Mapping[str, lambda_.Alias],
        alarms: Mapping[str, list[cloudwatch.Alarm]],
    ) -> None:
        super().__init__(scope, construct_id)
        self.application = codedeploy.LambdaApplication(
            self, "Application", application_name=settings.name("functions")
        )
        names = shifted_functions()
        self.role = iam.Role(
            self,
            "DeployRole",
            assumed_by=iam.ServicePrincipal("codedeploy.amazonaws.com"),
            description="CodeDeploy: shift the live aliases of the LotaBots functions, watch their alarms",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetProvisionedConcurrencyConfig"],
                resources=[
                    arn
                    for name in names
                    for arn in (
                        aliases[name].version.lambda_.function_arn,
                        aliases[name].function_arn,
                    )
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"],
                resources=[
                    Stack.of(self).format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name=settings.name("*"),
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        config = DEPLOYMENT_CONFIGS[settings.deployment_config]
        self.groups: dict[str, codedeploy.LambdaDeploymentGroup] = {}
        for name in names:
            self.groups[name] = codedeploy.LambdaDeploymentGroup(
                self,
                f"{pascal(name)}Deployment",
                application=self.application,
                deployment_group_name=settings.name(name.replace("_", "-")),
                alias=aliases[name],
                role=self.role,
                deployment_config=config,
                alarms=alarms[name],
                auto_rollback=codedeploy.AutoRollbackConfig(
                    failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
                ),
            )
        # LambdaDeploymentGroup attaches AWSCodeDeployRoleForLambdaLimited to any role it is given;
        # the statements above are what it needs, on these functions and alarms only.
        role_resource = self.role.node.default_child
        assert isinstance(role_resource, iam.CfnRole)
        role_resource.add_property_deletion_override("ManagedPolicyArns")
