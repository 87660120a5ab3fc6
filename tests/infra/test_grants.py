"""What the GPU-job and alerting functions (and the GPU job itself) may do: exactly the AWS calls
their code makes, on exactly their resources; where they run; what the job container is told."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest

from lotabots import topology
from lotabots.config import CoreSettings, JobSettings
from tests.infra.conftest import Synth, env_of, functions_by_service, ref_id

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# What every function has regardless of its grant list: its log group, X-Ray, and (in-VPC
# functions) the network-interface actions Lambda needs.
BASELINE = frozenset(
    {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }
)
READ_SECRET = ("secretsmanager:GetSecretValue",)
SEND = ("sqs:SendMessage",)
# An SQS event source mapping: includes ChangeMessageVisibility, which dispatch and notify use to
# delay a retried message.
CONSUME = (
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
)
ITEMS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


@dataclass(frozen=True)
class On:
    """A resource an action is allowed on: the whole resource (`Ref`/`GetAtt` of `logical_id`),
    objects under `prefix` of a bucket, an ARN ending in `suffix`, or `*`."""

    logical_id: str | None = None
    prefix: str | None = None
    suffix: str | None = None

    def matches(self, resource: Any) -> bool:
        text = json.dumps(resource)
        if self.logical_id is None and self.suffix is None:
            return bool(resource == "*")
        if self.suffix is not None:
            return text.endswith(f'{self.suffix}"]]}}')
        assert self.logical_id is not None
        if self.prefix is not None:
            return self.logical_id in text and f'"/{self.prefix}*"' in text
        return ref_id(resource) == self.logical_id or (
            # SSM parameter ARNs are joined from the parameter's name.
            "Fn::Join" in text and f'{{"Ref": "{self.logical_id}"}}' in text and ":parameter" in text
        )


STAR = On()
BATCH_JOBS = On(suffix=":job/*")
DEFAULT_BUS = On(suffix=":event-bus/default")


def _allowed(synth: Synth, role_id: str) -> dict[str, list[Any]]:
    """Action → the resources it is allowed on, over every policy attached to the role."""
    allowed: dict[str, list[Any]] = defaultdict(list)
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if not any(ref_id(r) == role_id for r in policy["Properties"].get("Roles", [])):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            # Conditions only narrow (Batch jobs by stage tag, VPC interfaces by VPC): see
            # test_releases_and_scoping for what each one says.
            assert statement["Effect"] == "Allow", statement
            assert set(statement.get("Condition", {})) <= {"StringEquals", "ArnEquals"}, statement
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                allowed[action].extend(resources if isinstance(resources, list) else [resources])
    return allowed


def _expect(*grants: tuple[tuple[str, ...] | str, On]) -> dict[str, list[On]]:
    expected: dict[str, list[On]] = defaultdict(list)
    for actions, on in grants:
        for action in (actions,) if isinstance(actions, str) else actions:
            expected[action].append(on)
    return expected


def _assert_exactly(name: str, allowed: dict[str, list[Any]], expected: dict[str, list[On]]) -> None:
    granted = set(allowed) - BASELINE
    assert granted == set(expected), (name, sorted(granted ^ set(expected)))
    for action, targets in expected.items():
        resources = allowed[action]
        for on in targets:
            assert any(on.matches(r) for r in resources), (name, action, on, resources)
        for resource in resources:
            assert any(on.matches(resource) for on in targets), (name, action, resource)


def _role_of(synth: Synth, name: str) -> str:
    _, resource = functions_by_service(synth)[name]
    role_id = ref_id(resource["Properties"]["Role"])
    assert role_id is not None
    return role_id


@pytest.fixture(scope="module")
def ids(synth: Synth) -> dict[str, str]:
    stack = synth.stack
    queues = stack.messaging.queues
    return {
        "db_secret": synth.logical_id(stack.database.secret),
        "modal": synth.logical_id(stack.secrets.modal),
        "slack": synth.logical_id(stack.secrets.slack),
        "alerts_config": synth.logical_id(stack.secrets.alerts_config),
        "gpu_jobs": synth.logical_id(queues["gpu-jobs"]),
        "gpu_results": synth.logical_id(queues["gpu-results"]),
        "alert_events": synth.logical_id(queues["alert-events"]),
        "alert_notify": synth.logical_id(queues["alert-notify"]),
        "dispatch_table": synth.logical_id(stack.tables.job_dispatch),
        "idempotency_table": synth.logical_id(stack.tables.idempotency),
        "artifacts": synth.logical_id(stack.storage.artifacts),
        "job_queue": synth.logical_id(stack.gpu.job_queue),
        "job_definition": synth.logical_id(stack.gpu.job_definition),
        "signing_keys": synth.logical_id(stack.secrets.signing_keys),
        "model_signing": synth.logical_id(stack.secrets.model_signing),
    }


def test_gpu_job_functions_may_make_exactly_the_calls_their_code_makes(
    synth: Synth, ids: dict[str, str]
) -> None:
    """jobs: enqueue + cancel (Batch TerminateJob, Modal token). dispatch: claim in the dispatch table,
    stage the input, SubmitJob/TagResource/ListJobs/TerminateJob, alert event, back-off visibility.
    results: idempotency table, read artifacts (ListBucket for 404s), DescribeJobs/TerminateJob,
    alert event, re-queue. Nothing more (e.g. the jobs API publishes no events)."""
    artifacts = On(ids["artifacts"], prefix="jobs/")
    database = (READ_SECRET, On(ids["db_secret"]))
    modal = (READ_SECRET, On(ids["modal"]))
    expected = {
        "jobs": _expect(database, modal, (SEND, On(ids["gpu_jobs"])), ("batch:TerminateJob", BATCH_JOBS)),
        "job_dispatch": _expect(
            database,
            modal,
            (CONSUME, On(ids["gpu_jobs"])),
            (ITEMS, On(ids["dispatch_table"])),
            ("s3:PutObject", artifacts),
            ("batch:SubmitJob", On(ids["job_queue"])),
            ("batch:SubmitJob", On(ids["job_definition"])),
            ("batch:TagResource", BATCH_JOBS),
            ("batch:ListJobs", STAR),
            ("batch:TerminateJob", BATCH_JOBS),
            ("events:PutEvents", DEFAULT_BUS),
            (READ_SECRET, On(ids["signing_keys"])),  # failed attestation verdicts are signed tokens
        ),
        "job_results": _expect(
            database,
            modal,
            (CONSUME, On(ids["gpu_results"])),
            (SEND, On(ids["gpu_jobs"])),
            (ITEMS, On(ids["idempotency_table"])),
            ("s3:GetObject", artifacts),
            ("s3:ListBucket", On(ids["artifacts"])),
            ("batch:DescribeJobs", STAR),
            ("batch:TerminateJob", BATCH_JOBS),
            ("events:PutEvents", DEFAULT_BUS),
            (READ_SECRET, On(ids["signing_keys"])),  # attestation verdicts: EAR tokens
            (READ_SECRET, On(ids["model_signing"])),  # model baselines signed
        ),
        # Attestation API: start attestation jobs, read appraised evidence; the re-attestation sweep
        # starts jobs and signs (and alerts on) the verdicts of attestations that expired unanswered.
        "attestations": _expect(database, (SEND, On(ids["gpu_jobs"])), ("s3:GetObject", artifacts)),
        "attestation_schedule": _expect(
            database,
            (SEND, On(ids["gpu_jobs"])),
            (READ_SECRET, On(ids["signing_keys"])),
            ("events:PutEvents", DEFAULT_BUS),
        ),
    }
    for name, grants in expected.items():
        _assert_exactly(name, _allowed(synth, _role_of(synth, name)), grants)


def test_alerting_functions_may_make_exactly_the_calls_their_code_makes(
    synth: Synth, ids: dict[str, str]
) -> None:
    """alerts/ingest/flush read the routing config from SSM; flush enqueues notifications; notify
    reads the Slack token and delays retries (ChangeMessageVisibility) but reads no config."""
    database = (READ_SECRET, On(ids["db_secret"]))
    config = ("ssm:GetParameter", On(ids["alerts_config"]))
    expected = {
        "alerts": _expect(database, config),
        "alert_ingest": _expect(database, config, (CONSUME, On(ids["alert_events"]))),
        "alert_flush": _expect(database, config, (SEND, On(ids["alert_notify"]))),
        "alert_notify": _expect(
            database, (READ_SECRET, On(ids["slack"])), (CONSUME, On(ids["alert_notify"]))
        ),
    }
    for name, grants in expected.items():
        _assert_exactly(name, _allowed(synth, _role_of(synth, name)), grants)


def test_queue_urls_the_alerting_and_job_workers_use_are_set(synth: Synth) -> None:
    """flush sends to and notify re-times messages on NOTIFY_QUEUE_URL; the job functions enqueue
    and re-time on GPU_JOBS_QUEUE_URL."""
    deployed = functions_by_service(synth)
    queues = synth.stack.messaging.queues
    for names, variable, queue in (
        (("alert_flush", "alert_notify"), "NOTIFY_QUEUE_URL", "alert-notify"),
        (("jobs", "job_dispatch", "job_results"), "GPU_JOBS_QUEUE_URL", "gpu-jobs"),
    ):
        for name in names:
            assert ref_id(env_of(deployed[name][1])[variable]) == synth.logical_id(queues[queue]), name


def test_functions_calling_modal_or_slack_get_nat_and_the_modal_package() -> None:
    """Cancelling (jobs), dispatching and polling call Modal's API (and Batch, which has no VPC
    endpoint) and import `modal`; notify posts to Slack."""
    from lotabots_infra.profiles import profile

    for name in ("jobs", "job_dispatch", "job_results"):
        assert profile(name).internet and "modal" in profile(name).extras, name
    assert profile("alert_notify").internet
    assert not profile("alert_notify").extras


def test_gpu_job_container_role_and_environment(synth: Synth, ids: dict[str, str]) -> None:
    """The job reads/writes/deletes only objects under jobs/ and publishes its result event; its
    container gets the variables the runner reads (AWS_REGION: Batch on EC2 does not set it)."""
    role_id = synth.logical_id(synth.stack.gpu.job_role)
    _assert_exactly(
        "gpu job",
        _allowed(synth, role_id),
        _expect(
            (("s3:GetObject", "s3:PutObject", "s3:DeleteObject"), On(ids["artifacts"], prefix="jobs/")),
            ("events:PutEvents", DEFAULT_BUS),
        ),
    )
    (definition,) = synth.of_type("AWS::Batch::JobDefinition").values()
    env = {e["Name"]: e["Value"] for e in definition["Properties"]["ContainerProperties"]["Environment"]}
    assert env == {"EVENT_BUS_NAME": "default", "AWS_REGION": synth.stack.region, "LOTABOTS_STAGE": "dev"}
    core = {info.alias for info in CoreSettings.model_fields.values()}
    assert set(env) <= core


def test_artifacts_bucket_expires_partial_uploads_after_a_day(synth: Synth) -> None:
    """What a crashed job left under the runner's partial prefix expires (current and old versions)."""
    from gpu_jobs.artifacts import ArtifactStore
    from lotabots.storage_keys import JOBS_PARTIAL_PREFIX

    assert ArtifactStore("bucket", "job-1").partial_prefix.startswith(JOBS_PARTIAL_PREFIX)
    artifacts = synth.resources[synth.logical_id(synth.stack.storage.artifacts)]["Properties"]
    rules = {r["Id"]: r for r in artifacts["LifecycleConfiguration"]["Rules"]}
    partial = rules["expire-partial-uploads"]
    assert partial["Prefix"] == JOBS_PARTIAL_PREFIX
    assert partial["ExpirationInDays"] == 1
    assert partial["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    assert partial["Status"] == "Enabled"
    # Finished outputs are never expired by a rule.
    assert all("ExpirationInDays" not in r for k, r in rules.items() if k != "expire-partial-uploads")


def test_dispatch_lease_outlives_a_dispatch_invocation(synth: Synth) -> None:
    """A claim's lease must not expire while its dispatcher may still be submitting, or a second
    dispatcher takes it over and may start the same GPU job twice."""
    _, resource = functions_by_service(synth)["job_dispatch"]
    from lotabots_infra.profiles import env_name

    alias = env_name(JobSettings, "dispatch_lease_seconds")
    lease = int(env_of(resource).get(alias) or JobSettings.model_fields["dispatch_lease_seconds"].default)
    assert lease >= topology.function("job_dispatch").timeout_s
