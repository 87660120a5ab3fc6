"""API contract of the attestations function (pydantic models = the OpenAPI spec) and job inputs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lotabots.attestation.models import AttestationStatus, TrustState
from lotabots.attestation.policies import Policy

NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
ID = r"^[A-Za-z0-9_-]+$"
Backend = Literal["local", "modal", "batch"]
AttestationType = Literal["hardware", "model", "inference"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


DEFAULT_GOLDEN_INPUTS = (
    "GPU attestation proves which hardware ran a workload.",
    "The quick brown fox jumps over the lazy dog.",
    "Serverless functions scale with their queues.",
)


# --- requests ----------------------------------------------------------------------------------


class HardwareAttestationRequest(_Strict):
    pool: str = Field(pattern=NAME, description="the GPU pool to attest")
    policy: str | None = Field(None, pattern=NAME, description="appraisal policy; the pool's when omitted")


class ModelAttestationRequest(_Strict):
    model_id: str = Field(min_length=1, max_length=64, pattern=ID)
    policy: str | None = Field(None, pattern=NAME)
    pool: str | None = Field(
        None, pattern=NAME, description="run on this pool (its backend); local when omitted"
    )


class InferenceAttestationRequest(_Strict):
    job_id: str = Field(min_length=1, max_length=64, pattern=ID, description="a succeeded embed job")
    sample: int = Field(4, ge=1, le=64, description="chunks whose proofs are re-checked")


class PoolPut(_Strict):
    backend: Backend
    gpu_type: str | None = Field(
        None,
        max_length=32,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*!?$",
        description='Modal GPU type, e.g. "H100!"',
    )
    policy: str = Field("default", pattern=NAME)
    reattest_every_s: int = Field(3600, ge=0, le=30 * 86400, description="0: only on demand")
    description: str = Field("", max_length=500)
    known_gpu_uuids: list[str] | None = Field(
        None,
        max_length=256,
        description="GPU UUIDs this pool may show; omitted: keep (or learn on first pass)",
    )


class ModelCreate(_Strict):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
    artifact_uri: str = Field(
        min_length=6,
        max_length=1024,
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+|package://[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z0-9_.-]+)*)$",
        description="s3://bucket/prefix/ of the model's files, or package://module/dir for a model"
        " shipped in a Python package",
    )
    golden_inputs: list[str] = Field(
        default_factory=lambda: list(DEFAULT_GOLDEN_INPUTS),
        min_length=1,
        max_length=16,
        description="inputs whose outputs are recorded at the first attestation and compared afterwards",
    )
    description: str = Field("", max_length=500)

    @field_validator("artifact_uri")
    @classmethod
    def _no_dot_segments(cls, value: str) -> str:
        path = value.split("://", 1)[1]
        if any(segment in (".", "..") for segment in path.split("/")):
            raise ValueError("artifact_uri must not contain '.' or '..' path segments")
        return value


# --- responses ---------------------------------------------------------------------------------


class ClaimOut(BaseModel):
    name: str
    outcome: Literal["pass", "warn", "fail", "skip"]
    detail: str
    vector: str


class AttestationStarted(BaseModel):
    id: str
    type: AttestationType
    subject: str
    status: AttestationStatus
    nonce: str
    nonce_expires_at: datetime
    job_id: str | None


class AttestationOut(BaseModel):
    id: str
    type: AttestationType
    subject: str
    status: AttestationStatus
    ear_status: str | None = None
    assurance: str | None = None
    policy: str
    policy_version: int
    nonce_expires_at: datetime
    job_id: str | None = None
    claims: list[ClaimOut] = Field(default_factory=list)
    facts: dict[str, Any] | None = None
    evidence_sha256: str | None = None
    evidence_bytes: int | None = None
    token_kid: str | None = None
    requested_by: str | None = None
    source: str
    created_at: datetime
    verified_at: datetime | None = None


class AttestationList(BaseModel):
    items: list[AttestationOut]
    next_cursor: str | None = None


class TokenOut(BaseModel):
    token: str = Field(description="EAR attestation result, a JWT signed ES256 with the platform's keys")
    kid: str
    media_type: str
    jwks_uri: str = "/.well-known/jwks.json"
    ear_status: str


class PolicyOut(BaseModel):
    name: str
    version: int
    built_in: bool
    document: Policy
    updated_by: str | None = None
    updated_at: datetime | None = None


class PolicyList(BaseModel):
    items: list[PolicyOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` to get the next page")


class VerdictSummary(BaseModel):
    attestation_id: str
    status: AttestationStatus
    ear_status: str | None = None
    assurance: str | None = None
    at: datetime | None = None
    reason: str | None = None


class Utilisation(BaseModel):
    jobs: int = Field(description="finished jobs of this pool among the most recent 50")
    utilization_mean_pct: float | None = None
    utilization_max_pct: float | None = None
    peak_memory_used_mib: float | None = None
    last_job_at: datetime | None = None


class PoolOut(BaseModel):
    name: str
    backend: Backend
    gpu_type: str | None
    policy: str
    reattest_every_s: int
    description: str
    trust_state: TrustState
    trust_reason: str | None = None
    known_gpu_uuids: list[str]
    last_verdict: VerdictSummary | None = None
    utilisation: Utilisation
    created_at: datetime
    updated_at: datetime


class PoolList(BaseModel):
    items: list[PoolOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` to get the next page")


class ModelOut(BaseModel):
    id: str
    name: str
    version: str
    artifact_uri: str
    description: str
    golden_inputs: list[str]
    status: Literal["registered", "attested", "failed"]
    baseline_digest: str | None = None
    baseline_files: dict[str, str] | None = None
    signed: bool
    last_attestation_id: str | None = None
    last_passed_attestation_id: str | None = None
    registered_by: str | None = None
    created_at: datetime
    updated_at: datetime


class ModelList(BaseModel):
    items: list[ModelOut]
    next_cursor: str | None = None


# --- job inputs (registered in jobs.schemas.JOB_INPUTS) ---------------------------------------


class AttestHardwareInput(_Strict):
    attestation_id: str = Field(min_length=1, max_length=64, pattern=ID)
    nonce: str = Field(min_length=16, max_length=128)
    pool: str = Field(pattern=NAME)
    dtype: Literal["bf16", "fp16"] = "bf16"
    cells: int = Field(24, ge=1, le=256)
    min_n_cpu: int = Field(128, ge=16, le=4096)
    collect_nvidia_cc: bool = False


class AttestModelInput(_Strict):
    attestation_id: str = Field(min_length=1, max_length=64, pattern=ID)
    nonce: str = Field(min_length=16, max_length=128)
    model_id: str = Field(min_length=1, max_length=64, pattern=ID)
    artifact_uri: str = Field(max_length=1024)
    golden_inputs: list[str] = Field(max_length=16)
    signature: str | None = Field(None, max_length=1_000_000)
    public_key_pem: str | None = Field(None, max_length=4096)


class AttestInferenceInput(_Strict):
    attestation_id: str = Field(min_length=1, max_length=64, pattern=ID)
    nonce: str = Field(min_length=16, max_length=128)
    target_job_id: str = Field(min_length=1, max_length=64, pattern=ID)
    proofs_uri: str = Field(max_length=1024)
    text_uri: str = Field(max_length=1024)
    sample: int = Field(4, ge=1, le=64)
    model_baseline: dict[str, Any] | None = Field(
        None, description="attested digests the re-check model must match"
    )
