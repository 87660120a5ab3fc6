from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text

from lotabots import __version__, config
from lotabots.db import session_scope


class ComponentHealth(BaseModel):
    status: Literal["ok", "error"]
    latency_ms: float
    error: str | None = None


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    stage: str
    checks: dict[str, ComponentHealth]


def check_database() -> ComponentHealth:
    started = time.perf_counter()
    error: str | None = None
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        error = type(exc).__name__
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return ComponentHealth(status="error" if error else "ok", latency_ms=latency_ms, error=error)


def report() -> HealthReport:
    checks = {"database": check_database()}
    status: Literal["ok", "degraded"] = "ok" if all(c.status == "ok" for c in checks.values()) else "degraded"
    return HealthReport(status=status, version=__version__, stage=config.core().stage, checks=checks)
