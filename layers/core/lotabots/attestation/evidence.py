"""What an attestation job sends back: the evidence documents, as parsed by the verifier.

Parsing is strict about types and sizes (the evidence comes from the machine being judged)
and lenient about extra fields (newer jobs may report more). Both documents carry the
attestation id and nonce they answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

HARDWARE_SCHEMA = "lotabots.gpu-evidence/1"
MODEL_SCHEMA = "lotabots.model-evidence/1"
INFERENCE_SCHEMA = "lotabots.inference-evidence/1"
MAX_EVIDENCE_BYTES = 4 * 1024 * 1024
_HEX64 = r"^[0-9a-f]{64}$"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OpenedCell(_Lenient):
    i: int = Field(ge=0)
    j: int = Field(ge=0)
    leaf: int = Field(ge=0)
    segment: str = Field(max_length=16384, description="base64 of the leaf's bytes")
    path: list[str] = Field(max_length=64)


class ChallengeEvidence(_Lenient):
    generator: str = Field(max_length=32)
    n: int = Field(ge=1)
    dtype: str = Field(max_length=8)
    leaf_elems: int = Field(ge=1)
    root: str = Field(pattern=_HEX64)
    reps: int = Field(1, ge=1)
    seconds: float = Field(gt=0)
    tflops: float = Field(ge=0)
    device: str = Field("cpu", max_length=16)
    cells: list[OpenedCell] = Field(max_length=256)


class BandwidthEvidence(_Lenient):
    bytes: int = Field(ge=0)
    seconds: float = Field(gt=0)
    gbps: float = Field(ge=0)


class DeviceEvidence(_Lenient):
    """NVML identity and posture (all self-reported by the driver)."""

    available: bool = False
    device: str = "cpu"
    name: str | None = Field(None, max_length=128)
    uuid: str | None = Field(None, max_length=128)
    serial: str | None = Field(None, max_length=64)
    board_part_number: str | None = Field(None, max_length=64)
    vbios: str | None = Field(None, max_length=64)
    driver: str | None = Field(None, max_length=32)
    cuda_driver_version: str | None = Field(None, max_length=16)
    compute_capability: str | None = Field(None, max_length=8)
    memory_total_mib: int | None = None
    ecc_mode_current: str | None = Field(None, max_length=16)
    ecc_mode_pending: str | None = Field(None, max_length=16)
    ecc_uncorrected_volatile: int | None = None
    ecc_corrected_volatile: int | None = None
    remapped_rows: dict[str, int] | None = None
    retired_pages: dict[str, int] | None = None
    mig_mode: str | None = Field(None, max_length=16)
    persistence_mode: str | None = Field(None, max_length=16)
    compute_mode: str | None = Field(None, max_length=32)
    cc_mode: str | None = Field(None, max_length=16)
    max_clocks_mhz: dict[str, int] | None = None
    power_limit_w: float | None = None


class HardwareEvidence(_Lenient):
    schema_: str = Field(alias="schema", max_length=64)
    attestation_id: str = Field(max_length=64)
    nonce: str = Field(max_length=128)
    job_id: str | None = Field(None, max_length=64)
    collected_at: str | None = Field(None, max_length=40)
    device: DeviceEvidence
    challenge: ChallengeEvidence | None = None
    bandwidth: BandwidthEvidence | None = None
    nvidia_cc: dict[str, Any] | None = None
    software: dict[str, Any] = Field(default_factory=dict)


class ModelFile(_Lenient):
    sha256: str = Field(pattern=_HEX64)
    bytes: int = Field(ge=0)


class ModelEvidence(_Lenient):
    schema_: str = Field(alias="schema", max_length=64)
    attestation_id: str = Field(max_length=64)
    nonce: str = Field(max_length=128)
    model_id: str = Field(max_length=64)
    files: dict[str, ModelFile] = Field(max_length=10000)
    signature_check: dict[str, Any] = Field(default_factory=dict)
    outputs: list[list[float]] = Field(default_factory=list, max_length=64)
    precision: str = Field("fp32", max_length=8)
    device: dict[str, Any] = Field(default_factory=dict)


class InferenceEvidence(_Lenient):
    schema_: str = Field(alias="schema", max_length=64)
    attestation_id: str = Field(max_length=64)
    nonce: str = Field(max_length=128)
    target_job_id: str = Field(max_length=64)
    checked: list[dict[str, Any]] = Field(default_factory=list, max_length=1024)
    model_digest: str | None = Field(None, max_length=64)
    error: str | None = Field(None, max_length=2000)
