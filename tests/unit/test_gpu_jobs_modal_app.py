"""The Modal app definition: built offline, GPU pinned from the environment, secrets and retries
declared, registry JSON shipped, and the function body is the same runner (run with `.local`)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from lotabots import aws, config
from lotabots.config import JobSettings
from tests.support.jobs import drain


@pytest.fixture(autouse=True)
def _restore_module() -> Iterator[None]:
    """Set up before (so torn down after) monkeypatch: the module is reloaded with the real env."""
    yield
    import gpu_jobs.modal_app

    importlib.reload(gpu_jobs.modal_app)


def _load(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import gpu_jobs.modal_app

    return importlib.reload(gpu_jobs.modal_app)


def test_app_defines_the_embed_function_on_the_default_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOTABOTS_MODAL_GPU", raising=False)
    app = _load(monkeypatch, MODAL_APP_NAME="lotabots-gpu")
    assert app.app.name == "lotabots-gpu"
    spec = app.embed._spec_
    assert spec.gpus == "L4"
    assert [repr(s) for s in spec.secrets] == ["modal.Secret.from_name('lotabots-aws')"]
    assert app.RETRIES.max_retries == 2
    assert app.TIMEOUT_S == 3600


def test_gpu_type_is_pinned_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`H100!` pins the type (plain H100 may be served by an H200)."""
    app = _load(monkeypatch, LOTABOTS_MODAL_GPU="H100!", LOTABOTS_MODAL_AWS_SECRET="prod-aws")
    assert app.embed._spec_.gpus == "H100!"
    assert [repr(s) for s in app.embed._spec_.secrets] == ["modal.Secret.from_name('prod-aws')"]


def test_registry_json_ships_with_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _load(monkeypatch)
    assert app.SOURCE_IGNORE(Path("gpu_jobs/model_registry.json")) is False
    assert app.SOURCE_IGNORE(Path("gpu_jobs/runner.py")) is False
    assert app.SOURCE_IGNORE(Path("gpu_jobs/Dockerfile")) is True


def test_the_modal_function_body_is_the_runner(
    monkeypatch: pytest.MonkeyPatch, aws_env: dict[str, str]
) -> None:
    """`.local()` runs the function body in-process: it returns the report and publishes it."""
    app = _load(monkeypatch)
    bucket = config.load(JobSettings).artifacts_bucket
    aws.client("s3").put_object(
        Bucket=bucket, Key="jobs/modal-1/input.txt", Body=b"Modal runs this too. " * 20
    )
    spec = {
        "job_id": "modal-1",
        "type": "embed",
        "attempt": 1,
        "input": {"document_id": "d", "text_uri": f"s3://{bucket}/jobs/modal-1/input.txt"},
        "artifacts_bucket": bucket,
        "gpu": "L4",
    }
    report = app.embed.local(spec)
    assert report["status"] == "succeeded" and report["result_uri"].endswith("jobs/modal-1/result.json")
    assert [e["detail-type"] for e in drain("GPU_RESULTS_QUEUE_URL")] == ["GpuJobCompleted"]
