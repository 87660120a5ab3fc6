"""The three backends behind one interface: how each maps its platform's answers and errors to
submit / poll / cancel, BackendUnavailable (retry) and BackendRejected (give up)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import modal
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from lotabots import aws, config
from lotabots.config import JobSettings
from lotabots.jobs.backends import BackendRejected, BackendUnavailable, get_backend
from lotabots.jobs.backends.batch import BatchBackend
from lotabots.jobs.backends.local import LocalBackend
from lotabots.jobs.backends.modal import ModalBackend
from lotabots.jobs.spec import JobSpec
from tests.support.jobs import (
    FakeModal,
    FakeModalCall,
    create_batch_resources,
    put_modal_secret,
    reset_jobs_state,
)


def _spec(gpu: str | None = None, job_type: str = "embed") -> JobSpec:
    return JobSpec.model_validate(
        {
            "job_id": "0123456789abcdef0123456789abcdef",
            "type": job_type,
            "attempt": 1,
            "input": {"document_id": "d1", "text_uri": "s3://lotabots-artifacts/jobs/x/input.txt"},
            "artifacts_bucket": "lotabots-artifacts",
            "gpu": gpu,
            "timeout_s": 600,
        }
    )


@pytest.fixture(autouse=True)
def _fresh(aws_env: dict[str, str]) -> Iterator[None]:
    reset_jobs_state()
    yield
    reset_jobs_state()


# --- Modal -----------------------------------------------------------------------------------


def test_modal_without_credentials_is_unavailable_not_a_crash() -> None:
    backend = ModalBackend(config.load(JobSettings))
    with pytest.raises(BackendUnavailable, match="cannot read Modal credentials"):
        backend.submit(_spec())


def test_modal_credentials_secret_must_hold_both_keys() -> None:
    aws.client("secretsmanager").create_secret(
        Name=config.load(JobSettings).modal_secret_id, SecretString=json.dumps({"token_id": "only"})
    )
    with pytest.raises(BackendUnavailable, match="token_id, token_secret"):
        ModalBackend(config.load(JobSettings)).submit(_spec())


def test_modal_pins_the_gpu_asked_for_and_refuses_a_missing_app(monkeypatch: pytest.MonkeyPatch) -> None:
    put_modal_secret()
    fake = FakeModal().install(monkeypatch)
    backend = ModalBackend(config.load(JobSettings))
    handle = backend.submit(_spec(gpu="H100!"))
    assert fake.gpus == ["H100!"] and handle in fake.calls
    assert backend.find(_spec()) is None
    fake.spawn_error = modal.exception.NotFoundError("App 'lotabots-gpu' not found")
    fake.spawn_errors_left = 1
    with pytest.raises(BackendRejected, match="not found"):
        backend.submit(_spec())
    assert len(fake.credentials) == 1, "the Modal client is built once and reused"


@pytest.mark.parametrize(
    ("outcome", "state", "error"),
    [
        (None, "running", None),
        (modal.exception.OutputExpiredError("expired"), "failed", "expired before it was collected"),
        (modal.exception.FunctionTimeoutError("3600s"), "failed", "timed out"),
        (ValueError("bad input"), "failed", "ValueError: bad input"),
        ("not a report", "failed", "returned str"),
        ({"job_id": "j", "status": "succeeded"}, "succeeded", None),
        ({"job_id": "j", "status": "failed", "error": "OOM"}, "failed", "OOM"),
    ],
)
def test_modal_poll_maps_every_outcome(
    monkeypatch: pytest.MonkeyPatch, outcome: Any, state: str, error: str | None
) -> None:
    put_modal_secret()
    fake = FakeModal().install(monkeypatch)
    fake.calls["fc-x"] = FakeModalCall("fc-x", outcome=outcome)
    result = ModalBackend(config.load(JobSettings)).poll("fc-x")
    assert result.state == state
    if error is None:
        assert result.error is None
    else:
        assert error in (result.error or "")


def test_modal_poll_of_an_unknown_call_and_an_auth_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    put_modal_secret()
    fake = FakeModal().install(monkeypatch)
    backend = ModalBackend(config.load(JobSettings))
    assert backend.poll("fc-missing").state == "unknown"
    fake.calls["fc-y"] = FakeModalCall("fc-y", outcome=modal.exception.AuthError("token revoked"))
    with pytest.raises(BackendUnavailable, match="authentication failed"):
        backend.poll("fc-y")
    backend.cancel("fc-y")
    assert fake.calls["fc-y"].cancelled is True


# --- AWS Batch -------------------------------------------------------------------------------------


def test_batch_submit_poll_cancel_against_moto() -> None:
    create_batch_resources()
    backend = BatchBackend(config.load(JobSettings))
    handle = backend.submit(_spec())
    assert backend.find(_spec()) == handle
    assert backend.poll(handle).state == "succeeded"  # moto without Docker finishes at once
    assert backend.poll("00000000-0000-0000-0000-000000000000").state == "unknown"
    backend.cancel(handle)


def test_batch_failed_job_carries_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """MOTO_SIMPLE_BATCH_FAIL_AFTER=0 makes moto fail the job (FIELD-NOTES)."""
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")
    create_batch_resources()
    backend = BatchBackend(config.load(JobSettings))
    handle = backend.submit(_spec())
    deadline = time.monotonic() + 10
    result = backend.poll(handle)
    while result.state != "failed" and time.monotonic() < deadline:
        time.sleep(0.1)
        result = backend.poll(handle)
    assert result.state == "failed" and result.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ClientError({"Error": {"Code": "TooManyRequestsException"}}, "SubmitJob"), BackendUnavailable),
        (ClientError({"Error": {"Code": "ServerException"}}, "SubmitJob"), BackendUnavailable),
        (
            ClientError({"Error": {"Code": "X"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "SubmitJob"),  # type: ignore[typeddict-item]
            BackendUnavailable,
        ),
        (EndpointConnectionError(endpoint_url="https://batch.us-east-1.amazonaws.com"), BackendUnavailable),
        (ClientError({"Error": {"Code": "ClientException"}}, "SubmitJob"), BackendRejected),
    ],
)
def test_batch_errors_are_classified(
    monkeypatch: pytest.MonkeyPatch, error: Exception, expected: type
) -> None:
    def fail(**_: Any) -> Any:
        raise error

    monkeypatch.setattr(aws.client("batch"), "submit_job", fail)
    with pytest.raises(expected):
        BatchBackend(config.load(JobSettings)).submit(_spec())


# --- local -------------------------------------------------------------------------------------------


def _wait_for_exit(backend: LocalBackend, handle: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    result = backend.poll(handle)
    while result.state == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        result = backend.poll(handle)
    return result


def test_local_worker_that_cannot_report_exits_nonzero_and_is_seen_failed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A real `python -m gpu_jobs run` whose AWS endpoint refuses connections: it cannot write its
    report, exits non-zero, and poll says failed with the exit code; its output is in the log dir."""
    monkeypatch.setenv("JOB_LOCAL_LOG_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: connection refused
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    config.reset()
    backend = LocalBackend(config.load(JobSettings))
    handle = backend.submit(_spec(job_type="not-a-type"))
    result = _wait_for_exit(backend, handle)
    assert result.state == "failed" and "exited with code 1" in (result.error or "")
    log = (tmp_path / "0123456789abcdef0123456789abcdef-1.log").read_text()
    assert "unknown job type" in log


def test_local_cancel_stops_the_worker(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_LOCAL_LOG_DIR", str(tmp_path))
    config.reset()
    backend = LocalBackend(config.load(JobSettings))
    handle = backend.submit(_spec())
    backend.cancel(handle)
    with pytest.raises(ProcessLookupError):
        os.kill(int(handle), 0)
    assert backend.poll("not-a-pid").state == "unknown"


def test_backends_are_created_by_name() -> None:
    assert get_backend("local").name == "local"
    assert get_backend("batch").name == "batch"
    assert get_backend("modal").name == "modal"
    with pytest.raises(ValueError, match="unknown backend"):
        get_backend("kubernetes")
