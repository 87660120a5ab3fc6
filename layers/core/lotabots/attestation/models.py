"""Attestation tables: attestations (one per nonce), policies, GPU pools, attested models."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lotabots.db.base import Base, TimestampMixin


class AttestationStatus(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"


class TrustState(StrEnum):
    UNVERIFIED = "unverified"  # never attested: dispatch refuses it too
    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"


class Attestation(TimestampMixin, Base):
    __tablename__ = "attestations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(16), nullable=False, index=True)  # hardware | model | inference
    subject: Mapped[str] = mapped_column(String(128), nullable=False, index=True)  # pool, model id, job id
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    ear_status: Mapped[str | None] = mapped_column(String(16))
    assurance: Mapped[str | None] = mapped_column(String(24))
    policy_name: Mapped[str] = mapped_column(String(64), nullable=False)
    policy_version: Mapped[int] = mapped_column(Integer, nullable=False)
    # The policy as it was when the attestation started: the verdict is appraised under it.
    policy_document: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    nonce: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    nonce_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Set once, by the conditional update that accepts evidence: a nonce answers one verdict.
    nonce_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    job_id: Mapped[str | None] = mapped_column(String(32), index=True)
    claims: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    evidence_uri: Mapped[str | None] = mapped_column(String(1024))
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    evidence_bytes: Mapped[int | None] = mapped_column(Integer)
    token: Mapped[str | None] = mapped_column(Text)
    token_kid: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="api")
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AttestationPolicy(TimestampMixin, Base):
    __tablename__ = "attestation_policies"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(String(64))


class GpuPool(TimestampMixin, Base):
    __tablename__ = "gpu_pools"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    backend: Mapped[str] = mapped_column(String(16), nullable=False)
    gpu_type: Mapped[str | None] = mapped_column(String(32))
    policy: Mapped[str] = mapped_column(String(64), nullable=False)
    reattest_every_s: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    trust_state: Mapped[str] = mapped_column(String(16), nullable=False)
    trust_reason: Mapped[str | None] = mapped_column(Text)
    known_gpu_uuids: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    last_attestation_id: Mapped[str | None] = mapped_column(String(32))
    last_verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str | None] = mapped_column(String(64))


class AttestedModel(TimestampMixin, Base):
    __tablename__ = "attested_models"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_attested_models_name_version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    artifact_uri: Mapped[str] = mapped_column(String(1024), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    golden_inputs: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # registered | attested | failed
    # The enrolled baseline: {path: sha256} and the model-signing signature over it.
    baseline_files: Mapped[dict[str, str] | None] = mapped_column(JSON)
    baseline_digest: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(Text)
    # The public half of the key that signed the baseline: jobs verify the files with it.
    signing_public_key: Mapped[str | None] = mapped_column(Text)
    reference_outputs: Mapped[list[list[float]] | None] = mapped_column(JSON)
    reference_precision: Mapped[str | None] = mapped_column(String(8))
    last_attestation_id: Mapped[str | None] = mapped_column(String(32))
    last_passed_attestation_id: Mapped[str | None] = mapped_column(String(32))
    registered_by: Mapped[str | None] = mapped_column(String(64))
