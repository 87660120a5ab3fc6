"""GPU backends behind one interface: Modal, AWS Batch and a local worker process.

A backend submits a `JobSpec` and returns a handle (Modal FunctionCall id, Batch jobId, local
pid), can look for a submission it may already have made (crash recovery), polls a handle
and cancels it. Transient trouble (auth failure, throttling, connection errors) raises
`BackendUnavailable`, which dispatch retries with back-off; `BackendRejected` is permanent.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Protocol

from lotabots.jobs.spec import JobSpec

PollState = Literal["pending", "running", "succeeded", "failed", "unknown"]
BACKENDS = ("local", "modal", "batch")


class BackendError(Exception):
    """Base of the errors a backend raises."""


class BackendUnavailable(BackendError):
    """The backend could not be reached or refused us for now: try again later."""


class BackendRejected(BackendError):
    """The backend refused the job itself: retrying will not help."""


@dataclass(frozen=True)
class PollResult:
    state: PollState
    # The job's own report when the backend carries it (Modal's return value).
    report: dict[str, Any] | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    name: str

    def submit(self, spec: JobSpec) -> str:
        """Start the job; returns the backend handle."""
        ...

    def find(self, spec: JobSpec) -> str | None:
        """The handle of a submission of this job attempt made earlier, if the backend can tell."""
        ...

    def poll(self, handle: str) -> PollResult: ...

    def cancel(self, handle: str) -> None: ...


@cache
def get_backend(name: str) -> Backend:
    """One backend object per process (they cache clients and credentials)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}")
    module = importlib.import_module(f"lotabots.jobs.backends.{name}")
    backend: Backend = module.create()
    return backend


def reset() -> None:
    """Forget backend objects (tests and the local stack change settings)."""
    get_backend.cache_clear()
