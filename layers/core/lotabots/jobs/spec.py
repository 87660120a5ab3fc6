"""What travels between the platform and a GPU job, in both directions.

`JobSpec` is the job a backend runs (`python -m gpu_jobs run --job <spec>`, the Modal
function's argument, the Batch container's command). `JobReport` is what the job says when it
ends: the detail of its `GpuJobCompleted` / `GpuJobFailed` event, the Modal function's return
value and the `report.json` it writes next to its result. `gpu_jobs` imports this module; the
platform never imports `gpu_jobs`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lotabots import storage_keys

SOURCE_GPU = "lotabots.gpu"  # events published by the GPU jobs themselves
SOURCE_JOBS = "lotabots.jobs"  # events published by the platform about jobs (alerts consume them)
COMPLETED = "GpuJobCompleted"
FAILED = "GpuJobFailed"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    if not bucket or not key:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return bucket, key


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=32)
    attempt: int = Field(ge=1)
    input: dict[str, Any]
    artifacts_bucket: str
    event_bus_name: str = "default"
    gpu: str | None = None
    timeout_s: int = Field(3600, gt=0)
    # The request that caused the job: its logs and report carry it (joins API, dispatch, job, results).
    correlation_id: str | None = None

    @property
    def prefix(self) -> str:
        return storage_keys.job_prefix(self.job_id)


class JobReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: str
    status: Literal["succeeded", "failed"]
    attempt: int | None = None
    result_uri: str | None = None
    gpu: dict[str, Any] | None = None
    timings: dict[str, float] | None = None
    error: str | None = None
    correlation_id: str | None = None
