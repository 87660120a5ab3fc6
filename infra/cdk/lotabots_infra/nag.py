"""cdk-nag (AwsSolutions) acknowledgements, each with the reason it is acceptable.

cdk-nag 3 reads acknowledgements from construct metadata under
`Validations.ACKNOWLEDGED_RULES_METADATA_KEY` (rule id → reason) on the flagged construct or any
parent. Ids match exactly, including granular findings such as
`AwsSolutions-IAM5[Resource::<Bucket.Arn>/documents/*]`, so each acknowledgement below names
the one finding it covers and sits as close to the flagged resource as possible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aws_cdk import CfnResource, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from lotabots.storage_keys import (
    AIOPS_PREFIX,
    AUDIT_ANCHORS_PREFIX,
    DOCUMENTS_PREFIX,
    JOBS_PREFIX,
    QUARANTINE_PREFIX,
)

if TYPE_CHECKING:
    from lotabots_infra.stack import LotaBotsStack

# Actions that only exist on "*" in IAM (no resource-level permissions), and where they come from.
WILDCARD_RESOURCE_ACTIONS = frozenset(
    {
        # Lambda active tracing (added by CDK for tracing=ACTIVE).
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        # Looking up network interfaces and subnets (in-VPC functions); creating, deleting and
        # re-addressing interfaces are scoped to the stack's VPC (functions.network_interface_statements).
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        # Looking up Batch jobs (dispatch crash recovery: ListJobs; result polling: DescribeJobs).
        "batch:ListJobs",
        "batch:DescribeJobs",
        # Batch pulling the GPU image from ECR (execution role).
        "ecr:GetAuthorizationToken",
        # AIOps: reading metrics; scheduled provisioned-concurrency actions (scalable targets have
        # generated ids; the statement is limited to the `lambda` namespace by condition).
        "cloudwatch:GetMetricData",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScheduledAction",
    }
)
WILDCARD_RESOURCE_REASON = (
    "Resource '*' only for actions without resource-level permissions in IAM: X-Ray trace upload, "
    "ec2:DescribeNetworkInterfaces/DescribeSubnets for in-VPC functions, batch:ListJobs/"
    "DescribeJobs, ecr:GetAuthorizationToken, cloudwatch:GetMetricData and the Application Auto Scaling "
    "scheduled actions of AIOps (limited to the lambda namespace by condition; tests/infra checks no "
    "other action uses '*')"
)


def acknowledge(scope: IConstruct, reasons: Mapping[str, str]) -> None:
    """Record acknowledged rule ids (plain or granular `Rule[finding]`) on a construct and its children."""
    for rule_id, reason in reasons.items():
        if len(reason) < 40:
            raise ValueError(f"acknowledgement of {rule_id} needs a specific reason, got {reason!r}")
    scope.node.add_metadata(Validations.ACKNOWLEDGED_RULES_METADATA_KEY, dict(reasons))


def _arn_ref(resource: IConstruct) -> str:
    """How cdk-nag spells `Fn::GetAtt [<logical id>, Arn]` in a finding."""
    child = resource.node.default_child
    assert isinstance(child, CfnResource)
    return f"<{Stack.of(resource).resolve(child.logical_id)}.Arn>"


def _object_wildcard(bucket: s3.IBucket, prefix: str) -> str:
    return f"AwsSolutions-IAM5[Resource::{_arn_ref(bucket)}/{prefix}*]"


def acknowledge_stack(stack: LotaBotsStack) -> None:
    fns = stack.functions
    partition_region_account = f"arn:<AWS::Partition>:batch:{stack.region}:<AWS::AccountId>"
    batch_jobs = f"AwsSolutions-IAM5[Resource::{partition_region_account}:job/*]"

    acknowledge(
        fns,
        {
            "AwsSolutions-L1": (
                "Python 3.12 is the platform's pinned Lambda runtime: the layer's wheels are built for "
                "cp312 and the code is tested on it; runtime upgrades are a deliberate change"
            ),
            "AwsSolutions-IAM5[Resource::*]": WILDCARD_RESOURCE_REASON,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:{stack.region}:<AWS::AccountId>:"
            "network-interface/*]": (
                "Lambda names the network interfaces it creates for in-VPC functions; the statement is "
                "limited by condition to interfaces in this stack's VPC (ec2:Vpc)"
            ),
        },
    )
    acknowledge(stack.gpu, {"AwsSolutions-IAM5[Resource::*]": WILDCARD_RESOURCE_REASON})

    documents = _object_wildcard(stack.storage.documents, DOCUMENTS_PREFIX)
    acknowledge(
        fns.roles["documents"],
        {documents: "Presigned upload/download/delete of document objects (one key per document version)"},
    )
    acknowledge(
        fns.roles["document_ingest"],
        {
            documents: "Ingest reads newly uploaded document objects (one key per owner/document/version)",
            _object_wildcard(stack.storage.documents, QUARANTINE_PREFIX): (
                "Rejected uploads are moved under the quarantine prefix, one key per rejected object"
            ),
        },
    )
    artifacts = _object_wildcard(stack.storage.artifacts, JOBS_PREFIX)
    acknowledge(
        fns.roles["job_dispatch"],
        {artifacts: "Dispatch writes each GPU job's input to jobs/<job id>/input.txt, one prefix per job"},
    )
    acknowledge(
        fns.roles["job_results"],
        {artifacts: "Results reads the report, result and outputs each GPU job wrote under jobs/<job id>/"},
    )
    acknowledge(
        fns.roles["attestations"],
        {artifacts: "GET /attestations/{id}/evidence reads the evidence each job wrote under jobs/<job id>/"},
    )
    acknowledge(
        stack.gpu.job_role,
        {
            artifacts: (
                "A GPU job reads its input and writes its outputs under jobs/<job id>/ (staged under "
                "jobs/.partial/<job id>/ first), one prefix per job"
            )
        },
    )
    acknowledge(
        fns.roles["audit_anchor"],
        {
            _object_wildcard(stack.storage.audit_anchors, AUDIT_ANCHORS_PREFIX): (
                "The anchoring schedule writes one new object per anchored head, "
                "audit-anchors/<entries>-<head hash>.json; keys are not known in advance"
            )
        },
    )
    aiops_objects = _object_wildcard(stack.storage.artifacts, AIOPS_PREFIX)
    acknowledge(
        fns.roles["aiops"],
        {aiops_objects: "Presigned GETs of the AIOps charts and reports, one key per forecast or day"},
    )
    for name in ("aiops_monitor", "aiops_planner"):
        acknowledge(
            fns.roles[name],
            {
                aiops_objects: (
                    "The AIOps schedules keep their learned state, charts and reports under aiops/ "
                    "(one key per state document, forecast and day)"
                )
            },
        )
    stack_log_groups = (
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:{stack.region}:<AWS::AccountId>:"
        f"log-group:{stack.stack_name}-*]"
    )
    acknowledge(
        fns.roles["aiops_monitor"],
        {
            stack_log_groups: (
                "Log mining reads the log groups of this stack's functions; CloudFormation names them "
                "<stack name>-<logical id>-<suffix>, so the stack's prefix is the narrowest ARN"
            )
        },
    )
    batch_reasons = {
        "jobs": "Cancelling a running job terminates its Batch job, known by the id SubmitJob returned",
        "job_dispatch": (
            "Batch job ids only exist after SubmitJob: tagging the job at submit and terminating a job "
            "cancelled mid-dispatch address it by that id"
        ),
        "job_results": "Timing out a job terminates its Batch job, known by the id SubmitJob returned",
    }
    for name, reason in batch_reasons.items():
        acknowledge(fns.roles[name], {batch_jobs: reason})
    for ce in (stack.gpu.spot, stack.gpu.on_demand):
        acknowledge(
            ce,
            {
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonEC2ContainerServiceforEC2Role]": (
                    "The ECS agent on the Batch GPU instances needs the AWS managed ECS instance policy "
                    "(register the instance, pull images, write container logs)"
                )
            },
        )

    alarms = (
        f"arn:<AWS::Partition>:cloudwatch:{stack.region}:<AWS::AccountId>:alarm:{stack.settings.name('*')}"
    )
    acknowledge(
        stack.releases.role,
        {
            f"AwsSolutions-IAM5[Resource::{alarms}]": (
                "CodeDeploy reads the state of the release alarms it watches; they are all named "
                "lotabots-<stage>-... by the observability construct"
            ),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSCodeDeployRoleForLambdaLimited]": (
                "CDK's LambdaDeploymentGroup attaches this policy to the role in the construct tree; the "
                "releases construct deletes it from the template (tests/infra asserts the role has no "
                "managed policy) and grants the same actions on this stack's aliases and alarms only"
            ),
        },
    )

    if not stack.settings.production:
        acknowledge(
            stack.database.cluster,
            {
                "AwsSolutions-RDS10": (
                    "Deletion protection is on for production stages only; development stages must be "
                    "deletable (a final snapshot is still taken: removal policy SNAPSHOT)"
                )
            },
        )
    secrets = stack.secrets
    acknowledge(
        secrets.signing_keys,
        {
            "AwsSolutions-SMG4": (
                "JWT signing keys are rotated by the application (`lotabots keys rotate` keeps previous "
                "keys verifiable); a Secrets Manager rotation Lambda would break that overlap"
            )
        },
    )
    acknowledge(
        secrets.model_signing,
        {
            "AwsSolutions-SMG4": (
                "The model-signing key signs attested model baselines; rotating it would invalidate every "
                "stored signature, so it is replaced deliberately (and models re-enrolled), not on a timer"
            )
        },
    )
    third_party = (
        "Holds a token issued by a third party ({}); it is rotated at the provider and put here by the "
        "operator, Secrets Manager cannot rotate it"
    )
    acknowledge(secrets.slack, {"AwsSolutions-SMG4": third_party.format("Slack bot token")})
    acknowledge(secrets.modal, {"AwsSolutions-SMG4": third_party.format("Modal API token")})
    acknowledge(
        stack.messaging.rule_dlq,
        {
            "AwsSolutions-SQS3": (
                "This queue IS a dead-letter queue: EventBridge rule targets and schedules send "
                "undeliverable events here (cdk-nag only recognises SQS redrive DLQs)"
            )
        },
    )

    api = stack.api
    acknowledge(
        api,
        {
            "AwsSolutions-COG4": (
                "Callers authenticate with the platform's own ES256 access tokens, verified by the "
                "REQUEST authorizer (functions/authorizer); there is no Cognito user pool by design"
            ),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]": (
                "API Gateway's account-level CloudWatch role must carry this AWS managed policy to "
                "write execution and access logs"
            ),
        },
    )
    public = {(plan.path, plan.method) for plan in api.plans if plan.public}
    for (path, method), cfn_method in api.methods.items():
        if method == "OPTIONS":
            acknowledge(
                cfn_method,
                {
                    "AwsSolutions-APIG4": (
                        "CORS preflight: browsers send OPTIONS without credentials; the function only "
                        "answers with CORS headers"
                    )
                },
            )
        elif (path, method) in public:
            acknowledge(
                cfn_method,
                {
                    "AwsSolutions-APIG4": (
                        f"{method} {path} is public by design (access.ROUTE_ROLES): sign-up, sign-in, "
                        "token refresh/logout, JWKS and health must work without a token"
                    )
                },
            )

    for child in stack.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            acknowledge(
                child,
                {
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]": (
                        "CDK's bucket-notification custom resource (configures the documents bucket's "
                        "S3 -> SQS notification at deploy time) uses the basic execution policy"
                    ),
                },
            )
