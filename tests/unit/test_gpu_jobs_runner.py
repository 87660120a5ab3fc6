"""The GPU job runner: writes outputs, then result.json, then report.json, then publishes; a crash
mid-way leaves no result and reports a failure. Runs the real embedding on CPU against moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gpu_jobs import runner
from gpu_jobs.__main__ import main
from gpu_jobs.artifacts import ArtifactStore
from lotabots import aws, config
from lotabots.config import JobSettings
from lotabots.jobs.spec import JobSpec
from tests.support.jobs import drain

TEXT = "LotaBots runs GPU jobs on Modal, AWS Batch or locally. " * 30


def _keys(prefix: str) -> set[str]:
    bucket = config.load(JobSettings).artifacts_bucket
    listing = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {item["Key"] for item in listing.get("Contents", [])}


def _spec(job_id: str, text: str = TEXT, job_type: str = "embed") -> dict[str, Any]:
    bucket = config.load(JobSettings).artifacts_bucket
    aws.client("s3").put_object(Bucket=bucket, Key=f"jobs/{job_id}/input.txt", Body=text.encode())
    return JobSpec.model_validate(
        {
            "job_id": job_id,
            "type": job_type,
            "attempt": 1,
            "input": {
                "document_id": "doc-1",
                "version": 2,
                "text_uri": f"s3://{bucket}/jobs/{job_id}/input.txt",
            },
            "artifacts_bucket": bucket,
        }
    ).model_dump(mode="json")


def _published() -> list[dict[str, Any]]:
    return drain("GPU_RESULTS_QUEUE_URL")


def test_embed_job_writes_vectors_result_report_then_publishes(aws_env: dict[str, str]) -> None:
    report = runner.run_job(_spec("job-ok"))
    assert report["status"] == "succeeded" and report["error"] is None
    assert report["gpu"] == {"available": False, "device": "cpu"}
    assert report["timings"]["inference_s"] > 0
    from gpu_jobs import proofs

    # proofs.json: the TOPLOC proofs of the chunks' activations (inference attestation).
    assert _keys("jobs/job-ok/") == {
        "jobs/job-ok/input.txt",
        "jobs/job-ok/vectors.f32",
        "jobs/job-ok/result.json",
        "jobs/job-ok/report.json",
    } | ({"jobs/job-ok/proofs.json"} if proofs.available() else set())
    assert _keys("jobs/.partial/") == set(), "temporary objects are cleaned up"
    bucket = config.load(JobSettings).artifacts_bucket
    stored = aws.client("s3").get_object(Bucket=bucket, Key="jobs/job-ok/result.json")
    result = json.loads(stored["Body"].read())
    assert result["count"] == len(result["chunks"]) >= 2
    assert result["dim"] == 384 and result["dtype"] == "float32" and result["precision"] == "fp32"
    assert result["vectors_bytes"] == result["count"] * 384 * 4
    assert result["model"]["name"] == "all-MiniLM-L6-v2" and len(result["model"]["digest"]) == 64
    if proofs.available():
        document = json.loads(
            aws.client("s3").get_object(Bucket=bucket, Key="jobs/job-ok/proofs.json")["Body"].read()
        )
        assert result["proofs_uri"].endswith("jobs/job-ok/proofs.json") and len(result["proofs_sha256"]) == 64
        assert len(document["proofs"]) == result["count"] and all(document["proofs"])
    events = _published()
    assert [e["detail-type"] for e in events] == ["GpuJobCompleted"]
    assert events[0]["source"] == "lotabots.gpu"
    assert events[0]["detail"]["result_uri"] == report["result_uri"]


def test_a_crash_mid_way_leaves_no_result_and_reports_failure(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vectors were uploaded to the temporary prefix, then the job died: never a success."""

    def crash(self: ArtifactStore, *args: object, **kwargs: object) -> None:
        raise RuntimeError("worker lost while promoting vectors")

    monkeypatch.setattr(ArtifactStore, "promote", crash)
    report = runner.run_job(_spec("job-crash"))
    assert report["status"] == "failed"
    assert "worker lost" in report["error"]
    assert report["result_uri"] is None
    keys = _keys("jobs/job-crash/")
    assert "jobs/job-crash/result.json" not in keys and "jobs/job-crash/vectors.f32" not in keys
    assert _keys("jobs/.partial/job-crash/") == set(), "the temporary upload is cleaned up"
    assert "jobs/job-crash/report.json" in keys
    assert [e["detail-type"] for e in _published()] == ["GpuJobFailed"]


def test_unknown_job_type_and_empty_text_fail_cleanly(aws_env: dict[str, str]) -> None:
    assert "unknown job type" in runner.run_job(_spec("job-x", job_type="transcode"))["error"]
    assert "no text to embed" in runner.run_job(_spec("job-empty", text="   "))["error"]
    assert [e["detail-type"] for e in _published()] == ["GpuJobFailed", "GpuJobFailed"]


def test_cli_reads_the_spec_from_s3_and_exits_by_status(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m gpu_jobs run --job s3://...`: exit 0 on success, 1 on failure."""
    bucket = config.load(JobSettings).artifacts_bucket
    spec = _spec("job-cli")
    aws.client("s3").put_object(Bucket=bucket, Key="specs/job-cli.json", Body=json.dumps(spec).encode())
    assert main(["run", "--job", f"s3://{bucket}/specs/job-cli.json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "succeeded"
    assert main(["run", "--job", json.dumps(_spec("job-cli-bad", job_type="nope"))]) == 1
