"""Model attestation through the handlers: registration, enrolment (baseline signed in the OpenSSF
model-signing format with the key from Secrets Manager), re-attestation verified on the device with
model-signing, and a model file changed by one byte. The model is a small randomly initialised BERT
stored in (moto) S3; the job runs in-process on CPU torch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lotabots import aws
from lotabots.attestation import signing
from lotabots.audit.models import AuditEntry
from lotabots.db import session_scope
from lotabots.jobs import service as jobs
from tests.support.api import api_event, invoke
from tests.support.attestation import (
    alert_events,
    deliver_results,
    run_job_in_process,
    tiny_model_dir,
    upload_dir,
)
from tests.support.jobs import AUDITOR, OPERATOR, drain, reset_jobs_state


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(autouse=True)
def _env(db: str, aws_env: dict[str, str]) -> Iterator[None]:
    reset_jobs_state()
    yield
    reset_jobs_state()


def call(method: str, path: str, body: Any = None, principal: Any = OPERATOR) -> tuple[int, Any]:
    status, _, payload = invoke("attestations", api_event(method, path, body=body, principal=principal))
    return status, payload


def attest(model_id: str) -> dict[str, Any]:
    status, started = call("POST", "/attestations/models", {"model_id": model_id})
    assert status == 202, started
    drain("GPU_JOBS_QUEUE_URL")
    run_job_in_process(started["job_id"])
    assert deliver_results() == {"batchItemFailures": []}
    return dict(call("GET", f"/attestations/{started['id']}", principal=AUDITOR)[1])


def outcomes(verdict: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["outcome"] for c in verdict["claims"]}


def test_register_enrol_reattest_then_one_changed_byte_fails(tiny_model: Path) -> None:
    bucket = jobs.settings().artifacts_bucket
    uri = upload_dir(tiny_model, bucket, "models/tiny/1/")
    status, model = call(
        "POST",
        "/models",
        {"name": "tiny-bert", "version": "1", "artifact_uri": uri, "golden_inputs": ["a b c", "hello"]},
    )
    assert status == 201 and model["status"] == "registered" and not model["signed"]
    assert (
        call("POST", "/models", {"name": "tiny-bert", "version": "1", "artifact_uri": uri})[1]["code"]
        == "model_exists"
    )

    first = attest(model["id"])
    assert first["status"] == "passed" and outcomes(first)["baseline"] == "pass", first["claims"]
    status, model = call("GET", f"/models/{model['id']}", principal=AUDITOR)
    assert (
        model["status"] == "attested" and model["signed"] and "model.safetensors" in model["baseline_files"]
    )
    with session_scope() as session:
        from lotabots.attestation import repository

        row = repository.model(session, model["id"])
        assert row is not None and row.signature
        assert signing.signed_files(row.signature) == model["baseline_files"]  # OpenSSF bundle, our key

    second = attest(model["id"])
    assert second["status"] == "passed", second["claims"]
    got = outcomes(second)
    assert [got[k] for k in ("signature", "digests", "device_signature_check", "behaviour")] == ["pass"] * 4

    s3 = aws.client("s3")
    key = "models/tiny/1/model.safetensors"
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    third = attest(model["id"])
    assert third["status"] == "failed" and third["ear_status"] == "contraindicated"
    claims = outcomes(third)
    assert claims["digests"] == "fail" and claims["device_signature_check"] == "fail"
    assert "model.safetensors" in next(c["detail"] for c in third["claims"] if c["name"] == "digests")
    (event,) = alert_events("AttestationFailed")
    assert event["detail"]["kind"] == "model" and event["detail"]["subject"] == model["id"]
    status, model = call("GET", f"/models/{model['id']}")
    assert model["status"] == "failed" and model["last_passed_attestation_id"] == second["id"]
    with session_scope() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions == ["model.register", "attestation.passed", "attestation.passed", "attestation.failed"]


def test_a_tampered_stored_signature_fails_the_next_attestation(tiny_model: Path) -> None:
    uri = upload_dir(tiny_model, jobs.settings().artifacts_bucket, "models/tiny/2/")
    _, model = call(
        "POST", "/models", {"name": "tiny-bert", "version": "2", "artifact_uri": uri, "golden_inputs": ["x"]}
    )
    assert attest(model["id"])["status"] == "passed"
    from lotabots.attestation import repository

    with session_scope() as session:
        row = repository.model(session, model["id"])
        assert row is not None and row.baseline_files
        row.baseline_files = {**row.baseline_files, "config.json": "0" * 64}  # a database edit
    verdict = attest(model["id"])
    assert verdict["status"] == "failed" and outcomes(verdict)["signature"] == "fail"
