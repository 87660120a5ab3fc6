"""Runs one GPU job from its spec: the same code under `python -m gpu_jobs run` (AWS Batch, the
local worker) and inside the Modal function.

Order of writes (see `artifacts`): outputs → `result.json` → `report.json` → the
`GpuJobCompleted` / `GpuJobFailed` event (source `lotabots.gpu`). The report is also the return
value (Modal's `FunctionCall.get`). Any exception in the job becomes a failed report; a process
that dies outright leaves no report, which the platform's poller treats as a crash.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from gpu_jobs import artifacts
from gpu_jobs.artifacts import ArtifactStore
from gpu_jobs.gpuinfo import GpuMonitor
from lotabots import aws
from lotabots.jobs.spec import COMPLETED, FAILED, SOURCE_GPU, JobReport, JobSpec
from lotabots.observability import logger

Handler = Callable[[JobSpec, ArtifactStore, dict[str, float]], dict[str, Any]]
_embedders: dict[str, Any] = {}


def get_embedder(baseline: dict[str, Any] | None = None) -> Any:
    """One model per process and baseline: a warm Modal container reuses it across calls.

    `baseline` (the digests of the model's last passing attestation, from dispatch) is checked
    before the model loads; a warm container checks again when the baseline changes.
    """
    from gpu_jobs.embed import Embedder

    key = json.dumps(baseline, sort_keys=True) if baseline else ""
    if key not in _embedders:
        _embedders.clear()
        _embedders[key] = Embedder(baseline=baseline)
    return _embedders[key]


def run_embed(spec: JobSpec, store: ArtifactStore, timings: dict[str, float]) -> dict[str, Any]:
    document_id = str(spec.input["document_id"])
    text_uri = spec.input.get("text_uri")
    if not text_uri:
        raise ValueError("embed job input has no text_uri")
    started = time.perf_counter()
    text = artifacts.read_text(str(text_uri))
    timings["fetch_s"] = round(time.perf_counter() - started, 4)

    started = time.perf_counter()
    baseline = spec.input.get("model_baseline")
    embedder = get_embedder(baseline if isinstance(baseline, dict) else None)
    timings["model_load_s"] = round(time.perf_counter() - started, 4)

    from gpu_jobs import proofs as toploc_proofs

    started = time.perf_counter()
    proofs: list[str | None] | None = [] if toploc_proofs.available() else None
    chunks, matrix = embedder.embed_document(text, proofs=proofs)
    elapsed = time.perf_counter() - started
    timings["inference_s"] = round(elapsed, 4)
    if not chunks:
        raise ValueError(f"document {document_id} has no text to embed")

    data = matrix.astype("<f4").tobytes()
    stored = store.store("vectors.f32", data)
    precision = "fp16" if embedder.device.type == "cuda" else "fp32"
    proof_refs = (
        toploc_proofs.write_proofs(store, proofs, embedder.model_info.as_dict(), precision) if proofs else {}
    )
    return {
        "job_id": spec.job_id,
        "type": "embed",
        "document_id": document_id,
        "version": spec.input.get("version"),
        "model": embedder.model_info.as_dict(),
        "device": str(embedder.device),
        "precision": precision,
        "dim": int(matrix.shape[1]),
        "count": int(matrix.shape[0]),
        "dtype": "float32",
        "vectors_uri": stored.uri,
        "vectors_sha256": stored.sha256,
        "vectors_bytes": stored.size,
        "chunks": [{"index": c.index, "start": c.start, "end": c.end, "tokens": c.tokens} for c in chunks],
        "chunks_per_s": round(len(chunks) / elapsed, 2) if elapsed > 0 else None,
        **proof_refs,
    }


def _attestation_handlers() -> dict[str, Handler]:
    from gpu_jobs import attest_hardware, attest_model, proofs

    return {
        "attest_hardware": attest_hardware.run,
        "attest_model": attest_model.run,
        "attest_inference": proofs.run,
    }


HANDLERS: dict[str, Handler] = {"embed": run_embed, **_attestation_handlers()}


def publish(spec: JobSpec, report: dict[str, Any]) -> None:
    detail_type = COMPLETED if report["status"] == "succeeded" else FAILED
    response = aws.client("events").put_events(
        Entries=[
            {
                "Source": SOURCE_GPU,
                "DetailType": detail_type,
                "Detail": json.dumps(report),
                "EventBusName": spec.event_bus_name,
            }
        ]
    )
    if response.get("FailedEntryCount"):
        entry = response["Entries"][0]
        raise RuntimeError(
            f"EventBridge rejected {detail_type}: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
        )


def run_job(spec_data: dict[str, Any] | JobSpec) -> dict[str, Any]:
    """Run a job to its report (which is also written to S3 and published)."""
    spec = spec_data if isinstance(spec_data, JobSpec) else JobSpec.model_validate(spec_data)
    logger.append_keys(job_id=spec.job_id, job_type=spec.type)
    logger.set_correlation_id(spec.correlation_id)
    store = ArtifactStore(spec.artifacts_bucket, spec.job_id)
    timings: dict[str, float] = {}
    status, error, result_uri = "failed", None, None
    started = time.perf_counter()
    monitor = GpuMonitor()
    with monitor:
        try:
            handler = HANDLERS.get(spec.type)
            if handler is None:
                raise ValueError(f"unknown job type {spec.type!r}")
            result = handler(spec, store, timings)
            result_uri = store.write_result(result)
            status = "succeeded"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:4000]
            logger.exception("job failed")
    timings["run_s"] = round(time.perf_counter() - started, 4)
    store.clean_partials()
    report = JobReport(
        job_id=spec.job_id,
        status=status,  # type: ignore[arg-type]
        attempt=spec.attempt,
        result_uri=result_uri,
        gpu=monitor.report,
        timings=timings,
        error=error,
        correlation_id=spec.correlation_id,
    ).model_dump(mode="json")
    store.write_report(report)
    publish(spec, report)
    logger.info("job finished", extra={"status": status, "timings": timings})
    return report


def load_spec(argument: str) -> JobSpec:
    """`--job` is the spec's JSON or an s3:// URI of it."""
    text = artifacts.read_text(argument) if argument.startswith("s3://") else argument
    return JobSpec.model_validate_json(text)
