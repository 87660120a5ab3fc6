"""The `jobs` table: one row per GPU job, from request to terminal state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lotabots.db.base import Base, TimestampMixin


class JobStatus(StrEnum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE = frozenset({JobStatus.DISPATCHED, JobStatus.RUNNING})


class Job(TimestampMixin, Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    backend: Mapped[str] = mapped_column(String(16), nullable=False)
    # The GPU type asked for (None: the backend's default).
    gpu: Mapped[str | None] = mapped_column(String(32))
    # The GPU pool the job must run on (its trust state gates dispatch); None: no pool.
    pool: Mapped[str | None] = mapped_column(String(64), index=True)
    input: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    timeout_s: Mapped[int] = mapped_column(Integer, nullable=False)
    # Modal FunctionCall id, AWS Batch jobId or local worker pid.
    backend_handle: Mapped[str | None] = mapped_column(String(256), index=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result_uri: Mapped[str | None] = mapped_column(String(1024))
    # What the job reported about the device it ran on (NVML readings, or {"available": false}).
    gpu_used: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # Makes creation idempotent: "embed:<document>:<version>" for events, "api:<user>:<key>" for the API.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    requested_by: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="api")
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL
