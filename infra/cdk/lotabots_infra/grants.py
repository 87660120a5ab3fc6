"""Least privilege, written down: the complete list of what each function may do.

`GRANTS` maps every topology function to the grants it gets, nothing else is added to a
function's role except (by CDK) writing its own log group, X-Ray segments, the VPC network
interface policy for in-VPC functions, and the consume permissions of its SQS trigger.
No grant uses a wildcard action, and each action is one the platform's code calls (a test
checks every granted action against the calls in the code): secrets are read with
GetSecretValue alone, queues written with SendMessage alone, rather than CDK's broader
`grant_read`/`grant_send_messages`.

AWS Batch jobs only have ids once submitted, so job actions cannot name them; they are
limited by tag instead: dispatch may only submit jobs tagged `lotabots:stage=<stage>`
(`aws:RequestTag`), and TerminateJob only works on jobs carrying that tag (`aws:ResourceTag`),
so a function can never stop another stack's GPU job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm

from lotabots.jobs.backends.batch import STAGE_TAG
from lotabots.storage_keys import (
    AIOPS_PREFIX,
    AUDIT_ANCHORS_PREFIX,
    DOCUMENTS_PREFIX,
    JOBS_PREFIX,
    QUARANTINE_PREFIX,
)
from lotabots_infra.data import Database, Tables
from lotabots_infra.gpu import GpuBatch
from lotabots_infra.messaging import Messaging
from lotabots_infra.secrets import SecretsAndParameters
from lotabots_infra.storage import Storage

# The inventory parameter (`settings.path(AIOPS_INVENTORY)`) the stack writes for the AIOps schedules.
AIOPS_INVENTORY = "aiops/inventory"


@dataclass(frozen=True)
class Resources:
    stack: Stack
    database: Database
    tables: Tables
    storage: Storage
    secrets: SecretsAndParameters
    messaging: Messaging
    gpu: GpuBatch
    stage: str


Grant = Callable[[Resources, lambda_.Function], None]


def _allow(fn: lambda_.Function, actions: list[str], resources: list[str]) -> None:
    fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))


# --- building blocks -------------------------------------------------------------------------


def _read_secret(fn: lambda_.Function, secret_arn: str) -> None:
    _allow(fn, ["secretsmanager:GetSecretValue"], [secret_arn])


def database(r: Resources, fn: lambda_.Function) -> None:
    """Read the database credentials (the network path to the proxy is the security group)."""
    _read_secret(fn, r.database.secret.secret_arn)


def idempotency_table(r: Resources, fn: lambda_.Function) -> None:
    r.tables.idempotency.grant(
        fn, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"
    )


def rate_limit_table(r: Resources, fn: lambda_.Function) -> None:
    """Login lockout counters: one BatchGetItem (account + IP), conditional UpdateItem, reset."""
    r.tables.rate_limits.grant(
        fn,
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    )


def dispatch_table(r: Resources, fn: lambda_.Function) -> None:
    r.tables.job_dispatch.grant(
        fn, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"
    )


def publish_events(r: Resources, fn: lambda_.Function) -> None:
    bus = r.stack.format_arn(service="events", resource="event-bus", resource_name="default")
    _allow(fn, ["events:PutEvents"], [bus])


def send_to(queue_name: str) -> Grant:
    def grant(r: Resources, fn: lambda_.Function) -> None:
        _allow(fn, ["sqs:SendMessage"], [r.messaging.queues[queue_name].queue_arn])

    grant.__name__ = f"send_to_{queue_name.replace('-', '_')}"
    return grant


def _get_parameter(parameter: Callable[[SecretsAndParameters], ssm.IStringParameter]) -> Grant:
    def grant(r: Resources, fn: lambda_.Function) -> None:
        _allow(fn, ["ssm:GetParameter"], [parameter(r.secrets).parameter_arn])

    return grant


def _put_parameter(parameter: Callable[[SecretsAndParameters], ssm.IStringParameter]) -> Grant:
    def grant(r: Resources, fn: lambda_.Function) -> None:
        _allow(fn, ["ssm:GetParameter", "ssm:PutParameter"], [parameter(r.secrets).parameter_arn])

    return grant


read_jwks = _get_parameter(lambda s: s.jwks)
write_jwks = _put_parameter(lambda s: s.jwks)
read_revocations = _get_parameter(lambda s: s.revocations)
write_revocations = _put_parameter(lambda s: s.revocations)
read_alerts_config = _get_parameter(lambda s: s.alerts_config)


def read_signing_keys(r: Resources, fn: lambda_.Function) -> None:
    _read_secret(fn, r.secrets.signing_keys.secret_arn)


def write_signing_keys(r: Resources, fn: lambda_.Function) -> None:
    """`keys.ensure_signing_keys`: read the keyset, tell a missing secret from an empty one, write."""
    _allow(
        fn,
        ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue"],
        [r.secrets.signing_keys.secret_arn],
    )


def read_model_signing_key(r: Resources, fn: lambda_.Function) -> None:
    """Sign an enrolled model's baseline and verify stored signatures (results path)."""
    _read_secret(fn, r.secrets.model_signing.secret_arn)


def write_model_signing_key(r: Resources, fn: lambda_.Function) -> None:
    """Deploy-time bootstrap: read the placeholder, replace it with a generated keypair."""
    _allow(
        fn,
        ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
        [r.secrets.model_signing.secret_arn],
    )


def read_slack_secret(r: Resources, fn: lambda_.Function) -> None:
    _read_secret(fn, r.secrets.slack.secret_arn)


def read_modal_secret(r: Resources, fn: lambda_.Function) -> None:
    _read_secret(fn, r.secrets.modal.secret_arn)


def list_documents_bucket(r: Resources, fn: lambda_.Function) -> None:
    """Delete every stored version of a document (ListObjectsV2 under its prefix); also makes a
    HEAD of a missing key answer 404 rather than 403."""
    _allow(fn, ["s3:ListBucket"], [r.storage.documents.bucket_arn])


def list_artifacts_bucket(r: Resources, fn: lambda_.Function) -> None:
    """`results.read_json` and the embed recorder read a missing `report.json` / result / vectors
    object as "not written (yet)" from S3's 404 NoSuchKey; without s3:ListBucket S3 answers 403
    AccessDenied instead, which would fail the record and abort the poll run."""
    _allow(fn, ["s3:ListBucket"], [r.storage.artifacts.bucket_arn])


def documents_api_objects(r: Resources, fn: lambda_.Function) -> None:
    """Presign uploads (PutObject) and downloads (GetObject); delete on document deletion."""
    _allow(
        fn,
        ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
        [r.storage.documents.arn_for_objects(f"{DOCUMENTS_PREFIX}*")],
    )


def documents_ingest_objects(r: Resources, fn: lambda_.Function) -> None:
    """Read uploads, delete rejected ones, copy them to quarantine."""
    _allow(
        fn,
        ["s3:GetObject", "s3:DeleteObject"],
        [r.storage.documents.arn_for_objects(f"{DOCUMENTS_PREFIX}*")],
    )
    _allow(fn, ["s3:PutObject"], [r.storage.documents.arn_for_objects(f"{QUARANTINE_PREFIX}*")])


def artifacts_stage_inputs(r: Resources, fn: lambda_.Function) -> None:
    """Dispatch stages a job's input (the document text) at `jobs/<job id>/input.txt`."""
    _allow(fn, ["s3:PutObject"], [r.storage.artifacts.arn_for_objects(f"{JOBS_PREFIX}*")])


def artifacts_read(r: Resources, fn: lambda_.Function) -> None:
    """Results reads `report.json`, `result.json` and the outputs they name under `jobs/<job id>/`."""
    _allow(fn, ["s3:GetObject"], [r.storage.artifacts.arn_for_objects(f"{JOBS_PREFIX}*")])


def _batch_jobs_arn(r: Resources) -> str:
    return r.stack.format_arn(service="batch", resource="job", resource_name="*")


def batch_submit(r: Resources, fn: lambda_.Function) -> None:
    """SubmitJob on our queue + definition; tagging the job at submit needs TagResource on it,
    allowed only with this stack's stage tag in the request."""
    _allow(
        fn,
        ["batch:SubmitJob"],
        [r.gpu.job_queue.job_queue_arn, r.gpu.job_definition.job_definition_arn],
    )
    fn.add_to_role_policy(
        iam.PolicyStatement(
            actions=["batch:TagResource"],
            resources=[_batch_jobs_arn(r)],
            conditions={"StringEquals": {f"aws:RequestTag/{STAGE_TAG}": r.stage}},
        )
    )


def batch_find(r: Resources, fn: lambda_.Function) -> None:
    """After a crash between submit and recording the handle, find the job by its name.
    ListJobs has no resource-level permissions in IAM."""
    _allow(fn, ["batch:ListJobs"], ["*"])


def batch_describe(r: Resources, fn: lambda_.Function) -> None:
    """The poll schedule's safety net. DescribeJobs has no resource-level permissions in IAM."""
    _allow(fn, ["batch:DescribeJobs"], ["*"])


def batch_cancel(r: Resources, fn: lambda_.Function) -> None:
    """Terminate only jobs this stack submitted (they carry its stage tag)."""
    fn.add_to_role_policy(
        iam.PolicyStatement(
            actions=["batch:TerminateJob"],
            resources=[_batch_jobs_arn(r)],
            conditions={"StringEquals": {f"aws:ResourceTag/{STAGE_TAG}": r.stage}},
        )
    )


def list_audit_anchors(r: Resources, fn: lambda_.Function) -> None:
    """Verify reads every anchor from the version listing (ListObjectVersions), keys only."""
    _allow(fn, ["s3:ListBucketVersions"], [r.storage.audit_anchors.bucket_arn])


def write_audit_anchors(r: Resources, fn: lambda_.Function) -> None:
    """New anchors only (If-None-Match: *); Object Lock keeps every stored version."""
    _allow(fn, ["s3:PutObject"], [r.storage.audit_anchors.arn_for_objects(f"{AUDIT_ANCHORS_PREFIX}*")])


def _stage_path_arn(r: Resources, suffix: str) -> str:
    return r.stack.format_arn(
        service="ssm", resource="parameter", resource_name=f"lotabots/{r.stage}/{suffix}"
    )


def aiops_inventory(r: Resources, fn: lambda_.Function) -> None:
    """Physical names of the functions and log groups, the queue prefix (one SSM parameter)."""
    _allow(fn, ["ssm:GetParameter"], [_stage_path_arn(r, AIOPS_INVENTORY)])


def aiops_state(r: Resources, fn: lambda_.Function) -> None:
    """Learned state (conditional writes), charts and reports under aiops/ in the artifacts bucket;
    ListBucket makes a missing state a 404 (start afresh), not a 403."""
    _allow(fn, ["s3:GetObject", "s3:PutObject"], [r.storage.artifacts.arn_for_objects(f"{AIOPS_PREFIX}*")])
    _allow(fn, ["s3:ListBucket"], [r.storage.artifacts.bucket_arn])


def aiops_read_objects(r: Resources, fn: lambda_.Function) -> None:
    """Presigned GETs of the charts and reports the API returns."""
    _allow(fn, ["s3:GetObject"], [r.storage.artifacts.arn_for_objects(f"{AIOPS_PREFIX}*")])


def cloudwatch_metrics_read(r: Resources, fn: lambda_.Function) -> None:
    """GetMetricData has no resource-level permissions in IAM."""
    _allow(fn, ["cloudwatch:GetMetricData"], ["*"])


def stack_logs_read(r: Resources, fn: lambda_.Function) -> None:
    """FilterLogEvents on this stack's log groups (CloudFormation names them <stack name>-...)."""
    _allow(
        fn,
        ["logs:FilterLogEvents"],
        [
            r.stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"{r.stack.stack_name}-*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
        ],
    )


def queue_attributes(r: Resources, fn: lambda_.Function) -> None:
    """Depth of every queue and DLQ of the stack (GetQueueUrl by name, then GetQueueAttributes)."""
    arns = [q.queue_arn for q in r.messaging.queues.values()] + [
        q.queue_arn for q in r.messaging.all_dlqs.values()
    ]
    _allow(fn, ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"], arns)


def scaling_apply(r: Resources, fn: lambda_.Function) -> None:
    """The predictive scaling plan (applied only with AIOPS_SCALING_APPLY): scheduled actions on
    the functions' provisioned concurrency, restricted to the Lambda namespace by condition, and
    the desired vCPUs of the stack's own Batch compute environments."""
    fn.add_to_role_policy(
        iam.PolicyStatement(
            actions=[
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:PutScheduledAction",
            ],
            resources=["*"],
            conditions={"StringEquals": {"application-autoscaling:service-namespace": "lambda"}},
        )
    )
    _allow(
        fn,
        ["batch:UpdateComputeEnvironment"],
        [r.gpu.spot.compute_environment_arn, r.gpu.on_demand.compute_environment_arn],
    )


# --- the list --------------------------------------------------------------------------------

GRANTS: Mapping[str, tuple[Grant, ...]] = {
    "authorizer": (read_jwks, read_revocations),
    "auth": (database, rate_limit_table, read_signing_keys, write_revocations),
    "aiops": (database, aiops_read_objects),
    # Serves what it was deployed with: no AWS calls, no database.
    "api_docs": (),
    # Deploy-time bootstrap: migrations, then the signing keyset + JWKS (`keys.ensure_signing_keys`).
    "migrate": (database, write_signing_keys, write_jwks, write_revocations, write_model_signing_key),
    "documents": (database, documents_api_objects, list_documents_bucket),
    "document_ingest": (database, documents_ingest_objects, list_documents_bucket, publish_events),
    # Create jobs and enqueue them; cancelling a running job stops it on Batch or Modal.
    "jobs": (database, send_to("gpu-jobs"), batch_cancel, read_modal_secret),
    # Claim (conditional write), stage the input, submit; failures raise the alert event.
    "job_dispatch": (
        database,
        dispatch_table,
        artifacts_stage_inputs,
        batch_submit,
        batch_find,
        batch_cancel,
        read_modal_secret,
        publish_events,
        # An attestation job that fails here gets its (signed) failed verdict here.
        read_signing_keys,
    ),
    # Record reports (Batch state changes deduplicated in the idempotency table), poll, time out,
    # re-queue jobs whose dispatch message was lost.
    "job_results": (
        database,
        idempotency_table,
        artifacts_read,
        list_artifacts_bucket,
        batch_describe,
        batch_cancel,
        read_modal_secret,
        publish_events,
        send_to("gpu-jobs"),
        # Attestation verdicts: EAR tokens signed with the JWT keys; model baselines signed.
        read_signing_keys,
        read_model_signing_key,
    ),
    "alerts": (database, read_alerts_config),
    "alert_ingest": (database, read_alerts_config),
    "alert_flush": (database, read_alerts_config, send_to("alert-notify")),
    # Delivery only: the notification carries what to post; no routing config is read here.
    "alert_notify": (database, read_slack_secret),
    # Audit: read the log and list the anchors; only the anchoring schedule writes anchors.
    "audit": (database, list_audit_anchors),
    "audit_anchor": (database, list_audit_anchors, write_audit_anchors),
    # Start attestations (enqueue their jobs); read appraised evidence from the artifacts bucket.
    "attestations": (database, send_to("gpu-jobs"), artifacts_read),
    # Re-attest pools on a schedule; fail (sign, alert) attestations whose nonce expired unanswered.
    "attestation_schedule": (database, send_to("gpu-jobs"), read_signing_keys, publish_events),
    # AIOps schedules: read the platform (CloudWatch, SQS, the database), keep state under aiops/,
    # raise findings on the bus; the forecast may apply its plan, the report reads the Slack token.
    "aiops_monitor": (
        database,
        aiops_inventory,
        aiops_state,
        cloudwatch_metrics_read,
        queue_attributes,
        stack_logs_read,
        publish_events,
    ),
    "aiops_planner": (
        database,
        aiops_inventory,
        aiops_state,
        cloudwatch_metrics_read,
        publish_events,
        scaling_apply,
        read_slack_secret,
    ),
}


def apply(name: str, resources: Resources, fn: lambda_.Function) -> None:
    try:
        grants = GRANTS[name]
    except KeyError:
        raise KeyError(
            f"topology function {name!r} has no grant list in lotabots_infra.grants.GRANTS"
        ) from None
    for grant in grants:
        grant(resources, fn)
