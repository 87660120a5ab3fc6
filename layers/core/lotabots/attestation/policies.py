"""Appraisal policies: what a verdict requires, as a validated document.

A policy is data an operator edits (`PUT /attestation-policies/{name}`); every change bumps
its version and lands in the audit chain, and each verdict names the policy version it was
appraised under. `default` exists without being written: it requires a GPU and the
performance-proven level, as a production pool should.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Assurance = Literal["none", "self-reported", "consistent", "performance-proven", "vendor-verified"]
ASSURANCE_ORDER: tuple[str, ...] = (
    "none",
    "self-reported",
    "consistent",
    "performance-proven",
    "vendor-verified",
)
DEFAULT_POLICY = "default"


def assurance_rank(level: str) -> int:
    return ASSURANCE_ORDER.index(level) if level in ASSURANCE_ORDER else 0


class Policy(BaseModel):
    """Every field has a safe default; unknown fields are refused (a typo must not weaken a policy)."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=500)
    require_gpu: bool = Field(True, description="fail when the job ran without a GPU")
    min_assurance: Assurance = Field(
        "performance-proven", description="the lowest assurance level that still passes"
    )
    allowed_gpu_models: list[str] = Field(
        default_factory=list, max_length=32, description="band names (see bands.json); empty: any known model"
    )
    require_performance_band: bool = Field(
        True, description="measured TFLOP/s and bandwidth must fall in the claimed model's band"
    )
    require_ecc: bool = Field(True, description="ECC must be enabled (current mode)")
    max_uncorrected_ecc_errors: int = Field(0, ge=0, description="volatile uncorrected ECC errors allowed")
    max_remapped_rows_failed: int = Field(0, ge=0, description="failed row remappings allowed")
    require_mig_disabled: bool = Field(False, description="MIG mode must be off")
    require_persistence_mode: bool = Field(False)
    require_confidential_computing: bool = Field(
        False, description="CC mode on and NVIDIA evidence verified (vendor-verified)"
    )
    min_driver_version: str | None = Field(None, max_length=32, pattern=r"^\d+(\.\d+)*$")
    pin_identity: bool = Field(
        True,
        description="a pool's GPU UUIDs must stay those of its first passing attestation (turn off for Modal,"
        " where each container may land on another physical GPU)",
    )
    challenge_dtype: Literal["bf16", "fp16"] = "bf16"
    challenge_cells: int = Field(24, ge=4, le=128, description="opened cells per challenge")
    min_challenge_n_gpu: int = Field(4096, ge=64, le=65536, description="smallest matrix accepted from a GPU")
    min_challenge_n_cpu: int = Field(128, ge=16, le=4096, description="smallest matrix accepted from a CPU")
    nonce_ttl_s: int = Field(900, ge=30, le=86400, description="evidence must arrive within this")
    token_ttl_s: int = Field(86400, ge=60, le=30 * 86400, description="lifetime of the signed result token")
    output_tolerance: float = Field(
        0.0, ge=0, le=1, description="model attestation: max |difference| of golden outputs (0: by precision)"
    )


BUILT_IN: dict[str, Policy] = {
    DEFAULT_POLICY: Policy.model_validate({"description": "built-in: GPU, band, ECC, performance-proven"})
}
