"""Helpers for the GPU-jobs tests: ready documents, AWS Batch resources in moto, queue reads,
and synthetic job artifacts written the way `gpu_jobs` writes them."""

from __future__ import annotations

import hashlib
import json
import math
import random
from typing import Any

from lotabots import aws, config
from lotabots.access import Principal, Role
from lotabots.config import JobSettings
from lotabots.db import session_scope
from lotabots.db.base import new_id
from lotabots.documents import repository as documents_repository
from lotabots.documents.models import Document, DocumentStatus
from lotabots.jobs.spec import s3_uri
from lotabots.storage_keys import REPORT_NAME, RESULT_NAME, document_key, job_prefix

OPERATOR = Principal(user_id="operator-1", email="op@example.com", role=Role.OPERATOR)
ADMIN = Principal(user_id="admin-1", email="admin@example.com", role=Role.ADMIN)
AUDITOR = Principal(user_id="auditor-1", email="audit@example.com", role=Role.AUDITOR)
MEMBER = Principal(user_id="member-1", email="member@example.com", role=Role.MEMBER)
DIM = 384


def ready_document(
    owner_id: str, text: str, *, title: str = "doc", status: str = DocumentStatus.READY
) -> str:
    """A document row as ingest leaves it: status ready with its extracted text."""
    document_id = new_id()
    with session_scope() as session:
        document = Document(
            id=document_id,
            owner_id=owner_id,
            title=title,
            content_type="text/plain",
            size_bytes=len(text.encode()),
            status=status,
            version=1,
            object_key=document_key(owner_id, document_id, 1),
        )
        documents_repository.add(session, document)
        documents_repository.set_text(session, document_id, text)
    return document_id


def create_batch_resources() -> None:
    """An unmanaged compute environment, the job queue and definition JobSettings names (moto)."""
    settings = config.load(JobSettings)
    iam = aws.client("iam")
    role = iam.create_role(
        RoleName="batch-service",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    batch = aws.client("batch")
    env = batch.create_compute_environment(
        computeEnvironmentName="lotabots-gpu-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    batch.create_job_queue(
        jobQueueName=settings.batch_job_queue,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
    )
    batch.register_job_definition(
        jobDefinitionName=settings.batch_job_definition,
        type="container",
        containerProperties={
            "image": "lotabots-gpu-jobs:latest",
            "command": ["python", "-m", "gpu_jobs", "info"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "4"},
                {"type": "MEMORY", "value": "16384"},
                {"type": "GPU", "value": "1"},
            ],
        },
    )


def drain(queue_env_var: str, *, max_messages: int = 50) -> list[dict[str, Any]]:
    """Receive (and delete) what is on a queue: the decoded message bodies."""
    import os

    url = os.environ[queue_env_var]
    sqs = aws.client("sqs")
    bodies: list[dict[str, Any]] = []
    while len(bodies) < max_messages:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def sqs_event(*bodies: dict[str, Any], receive_count: int = 1) -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping delivers it."""
    records = []
    for index, body in enumerate(bodies):
        records.append(
            {
                "messageId": f"m-{index}-{new_id()[:8]}",
                "receiptHandle": f"rh-{index}",
                "body": json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1764000000000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1764000000000",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(json.dumps(body).encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:gpu-jobs",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def eventbridge(source: str, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge event as a rule delivers it to an SQS target."""
    return {
        "version": "0",
        "id": new_id(),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-11-25T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def unit_vectors(count: int, *, seed: int = 0, dim: int = DIM) -> list[list[float]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        row = [rng.gauss(0, 1) for _ in range(dim)]
        norm = math.sqrt(sum(x * x for x in row))
        rows.append([x / norm for x in row])
    return rows


def write_embed_artifacts(
    job_id: str,
    document_id: str,
    rows: list[list[float]],
    *,
    truncate_vectors_by: int = 0,
    write_vectors: bool = True,
    status: str = "succeeded",
    error: str | None = None,
) -> dict[str, Any]:
    """What a successful (or damaged) embed job leaves in S3; returns its report."""
    import struct

    bucket = config.load(JobSettings).artifacts_bucket
    s3 = aws.client("s3")
    prefix = job_prefix(job_id)
    data = b"".join(struct.pack(f"<{len(r)}f", *r) for r in rows)
    if write_vectors:
        s3.put_object(Bucket=bucket, Key=f"{prefix}vectors.f32", Body=data[: len(data) - truncate_vectors_by])
    result = {
        "job_id": job_id,
        "type": "embed",
        "document_id": document_id,
        "model": {"name": "all-MiniLM-L6-v2", "digest": "d" * 64, "dim": DIM},
        "dim": DIM,
        "count": len(rows),
        "dtype": "float32",
        "vectors_uri": s3_uri(bucket, f"{prefix}vectors.f32"),
        "vectors_sha256": hashlib.sha256(data).hexdigest(),
        "vectors_bytes": len(data),
        "chunks": [{"index": i, "start": i * 10, "end": i * 10 + 9, "tokens": 5} for i in range(len(rows))],
    }
    result_uri = None
    if status == "succeeded":
        s3.put_object(Bucket=bucket, Key=f"{prefix}{RESULT_NAME}", Body=json.dumps(result).encode())
        result_uri = s3_uri(bucket, f"{prefix}{RESULT_NAME}")
    report = {
        "job_id": job_id,
        "status": status,
        "attempt": 1,
        "result_uri": result_uri,
        "gpu": {"available": False, "device": "cpu"},
        "timings": {"inference_s": 0.01, "run_s": 0.05},
        "error": error,
    }
    s3.put_object(Bucket=bucket, Key=f"{prefix}{REPORT_NAME}", Body=json.dumps(report).encode())
    return report


def reset_jobs_state() -> None:
    """Forget cached backends, Powertools parameter values and the idempotency handler."""
    from aws_lambda_powertools.utilities import parameters

    from lotabots.embeddings import repository as embeddings_repository
    from lotabots.jobs import backends, results

    backends.reset()
    results.reset()
    parameters.clear_caches()
    embeddings_repository.forget_capabilities()


def receive_as_event(queue_env_var: str, *, max_messages: int = 10) -> dict[str, Any]:
    """Receive from a moto queue and shape it as the Lambda SQS event (real receipt handles)."""
    import os

    url = os.environ[queue_env_var]
    response = aws.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=0, AttributeNames=["All"]
    )
    records = []
    for message in response.get("Messages", []):
        attributes = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", "0"),
                    "SenderId": attributes.get("SenderId", "AIDAEXAMPLE"),
                    "ApproximateFirstReceiveTimestamp": attributes.get(
                        "ApproximateFirstReceiveTimestamp", "0"
                    ),
                },
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:queue",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def delete_handled(queue_env_var: str, event: dict[str, Any], failures: list[dict[str, str]]) -> None:
    """What the event source mapping does after a batch: delete the records that did not fail."""
    import os

    failed = {f["itemIdentifier"] for f in failures}
    for record in event["Records"]:
        if record["messageId"] not in failed:
            aws.client("sqs").delete_message(
                QueueUrl=os.environ[queue_env_var], ReceiptHandle=record["receiptHandle"]
            )


class FakeModalCall:
    def __init__(self, object_id: str, outcome: Any = None) -> None:
        self.object_id = object_id
        self.outcome = outcome  # None: still running; an exception: raised by get(); else returned
        self.cancelled = False

    def get(self, timeout: float | None = None) -> Any:
        import modal

        assert timeout == 0, "the poller never waits for a result"
        if self.outcome is None:
            raise modal.exception.TimeoutError("still running")
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def cancel(self, terminate_containers: bool = False) -> None:
        self.cancelled = True


class FakeModal:
    """Stands in for Modal's API: records credentials, lookups, spawns, polls and cancels."""

    def __init__(self) -> None:
        self.credentials: list[tuple[str, str]] = []
        self.lookups: list[tuple[str, str]] = []
        self.gpus: list[str | None] = []
        self.spawned: list[dict[str, Any]] = []
        self.calls: dict[str, FakeModalCall] = {}
        self.spawn_error: BaseException | None = None
        self.spawn_errors_left = 0

    def install(self, monkeypatch: Any) -> FakeModal:
        import modal

        fake = self

        class Function:
            def __init__(self, app: str, name: str, gpu: str | None = None) -> None:
                self.app, self.name, self.gpu = app, name, gpu

            def with_options(self, *, gpu: str | None = None, **_: Any) -> Function:
                return Function(self.app, self.name, gpu)

            def spawn(self, spec: dict[str, Any]) -> FakeModalCall:
                if fake.spawn_error is not None and fake.spawn_errors_left != 0:
                    fake.spawn_errors_left -= 1
                    raise fake.spawn_error
                fake.gpus.append(self.gpu)
                fake.spawned.append(spec)
                call = FakeModalCall(f"fc-{len(fake.spawned):02d}{new_id()[:10]}")
                fake.calls[call.object_id] = call
                return call

        def from_credentials(token_id: str, token_secret: str) -> object:
            fake.credentials.append((token_id, token_secret))
            return object()

        def from_name(app: str, name: str, *, client: object = None, **_: Any) -> Function:
            assert client is not None, "Modal calls use the client built from Secrets Manager credentials"
            fake.lookups.append((app, name))
            return Function(app, name)

        def from_id(object_id: str, client: object = None) -> FakeModalCall:
            if object_id not in fake.calls:
                raise modal.exception.NotFoundError(f"no call {object_id}")
            return fake.calls[object_id]

        monkeypatch.setattr(modal.Client, "from_credentials", from_credentials)
        monkeypatch.setattr(modal.Function, "from_name", from_name)
        monkeypatch.setattr(modal.FunctionCall, "from_id", from_id)
        return self


def put_modal_secret(token_id: str = "ak-test-token", token_secret: str = "as-test-secret") -> None:  # noqa: S107
    settings = config.load(JobSettings)
    aws.client("secretsmanager").create_secret(
        Name=settings.modal_secret_id,
        SecretString=json.dumps({"token_id": token_id, "token_secret": token_secret}),
    )
