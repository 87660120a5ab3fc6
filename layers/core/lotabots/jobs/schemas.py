"""API contract of the jobs function (pydantic models = the OpenAPI spec) and queue messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json

from lotabots.jobs.models import JobStatus

Backend = Literal["local", "modal", "batch"]
_ID = r"^[A-Za-z0-9_-]+$"


class EmbedInput(BaseModel):
    """Input of an `embed` job: the document whose extracted text is embedded."""

    model_config = ConfigDict(extra="forbid")

    document_id: str = Field(min_length=1, max_length=64, pattern=_ID)


def _job_inputs() -> dict[str, type[BaseModel]]:
    from lotabots.attestation.schemas import AttestHardwareInput, AttestInferenceInput, AttestModelInput

    return {
        "embed": EmbedInput,
        "attest_hardware": AttestHardwareInput,
        "attest_model": AttestModelInput,
        "attest_inference": AttestInferenceInput,
    }


# Every job type the platform runs, with the model its `input` must satisfy.
JOB_INPUTS: dict[str, type[BaseModel]] = _job_inputs()
# Started only through the attestations API (they answer an attestation's nonce).
INTERNAL_JOB_TYPES = frozenset({"attest_hardware", "attest_model", "attest_inference"})


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        min_length=1,
        max_length=32,
        description="Job type; one of: " + ", ".join(t for t in JOB_INPUTS if t not in INTERNAL_JOB_TYPES),
    )
    input: dict[str, Any] = Field(description="Type-specific input, e.g. {document_id} for `embed`")
    backend: Backend | None = Field(None, description="Where to run it; the platform default when omitted")
    gpu: str | None = Field(
        None,
        max_length=32,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*!?$",
        description='GPU type for Modal ("L4", "A10G", "H100!" pins the type); ignored by other backends',
    )
    pool: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="GPU pool to run on: its backend and GPU type apply, and dispatch refuses the job while"
        " the pool is not trusted (see /gpu-pools)",
    )


class JobOut(BaseModel):
    id: str
    type: str
    status: JobStatus
    backend: Backend
    gpu: str | None = Field(None, description="GPU type asked for")
    pool: str | None = Field(None, description="GPU pool the job runs on")
    gpu_used: dict[str, Any] | None = Field(None, description="The device the job ran on, as it reported it")
    input: dict[str, Any]
    attempts: int
    max_attempts: int
    backend_handle: str | None = None
    result: dict[str, Any] | None = None
    result_uri: str | None = None
    error: str | None = None
    timings: dict[str, Any] | None = None
    source: str
    requested_by: str | None = None
    created_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobList(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = None


# --- queue messages -------------------------------------------------------------------------


class DispatchRequest(BaseModel):
    """What the API (and the stale-job sweeper) put on the gpu-jobs queue."""

    model_config = ConfigDict(extra="ignore")

    job_id: str = Field(min_length=1, max_length=64)
    correlation_id: str | None = Field(None, max_length=200)


class DocumentIngestedDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    document_id: str = Field(min_length=1, max_length=64)
    owner_id: str | None = None
    version: int = Field(ge=1)
    correlation_id: str | None = Field(None, max_length=200)


class DocumentIngestedEvent(EventBridgeModel):  # type: ignore[misc]
    source: Literal["lotabots.documents"]
    detail_type: Literal["DocumentIngested"] = Field(alias="detail-type")
    detail: DocumentIngestedDetail


class GpuJobsRecord(SqsRecordModel):  # type: ignore[misc]
    """A gpu-jobs queue message: a dispatch request or a raw `DocumentIngested` event."""

    body: Json[DispatchRequest | DocumentIngestedEvent]  # type: ignore[assignment]


class ResultEvent(EventBridgeModel):  # type: ignore[misc]
    detail: dict[str, Any]


class GpuResultsRecord(SqsRecordModel):  # type: ignore[misc]
    """A gpu-results queue message: `GpuJobCompleted`/`GpuJobFailed` or a Batch state change."""

    body: Json[ResultEvent]  # type: ignore[assignment]
