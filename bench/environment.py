"""The environment of a benchmark that runs the platform in its own process against moto: fake
AWS credentials (moto accepts any), no X-Ray, quiet logs, metrics under their own namespace and
a SQLite file of its own. Never an AWS endpoint from the developer's shell."""

from __future__ import annotations

import os
from pathlib import Path


def in_process(database: Path, **extra: str) -> dict[str, str]:
    """The variables to set (and `AWS_ENDPOINT_URL` must be unset: moto intercepts in-process)."""
    return {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": "LotaBotsBench",
        "DATABASE_URL": f"sqlite:///{database}",
        **extra,
    }


def apply(variables: dict[str, str]) -> dict[str, str | None]:
    """Set `variables` in this process, drop AWS_ENDPOINT_URL; returns what to restore."""
    saved = {name: os.environ.get(name) for name in (*variables, "AWS_ENDPOINT_URL")}
    os.environ.update(variables)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    return saved


def restore(saved: dict[str, str | None]) -> None:
    for name, previous in saved.items():
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
