"""Local backend: the GPU job runs in a worker process on this machine (CPU torch, or CUDA
when present), started as `python -m gpu_jobs run --job <spec>`.

Used by the local stack only. The worker inherits the environment, so it reaches moto
through `AWS_ENDPOINT_URL` and reports completion on EventBridge like a Modal or Batch job.
The handle is the worker's pid; its output goes to `JOB_LOCAL_LOG_DIR/<job>-<attempt>.log`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from lotabots import config
from lotabots.config import JobSettings, LocalSettings
from lotabots.jobs.backends import BackendRejected, BackendUnavailable, PollResult
from lotabots.jobs.spec import JobSpec
from lotabots.observability import logger


def _proc_state(pid: int) -> str | None:
    """The kernel's one-letter process state, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "S"
        return "S"
    return stat.rsplit(")", 1)[1].split()[0]


class LocalBackend:
    name = "local"

    def __init__(self, settings: JobSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._workers: dict[int, subprocess.Popen[bytes]] = {}

    def submit(self, spec: JobSpec) -> str:
        log_dir = Path(self._settings.local_log_dir or Path(config.load(LocalSettings).state_dir) / "jobs")
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            log = (log_dir / f"{spec.job_id}-{spec.attempt}.log").open("ab")
        except OSError as exc:
            raise BackendRejected(f"cannot write the worker log in {log_dir}: {exc}") from exc
        try:
            worker = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                [sys.executable, "-m", "gpu_jobs", "run", "--job", spec.model_dump_json()],
                env=os.environ.copy(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise BackendUnavailable(f"cannot start a local worker: {exc}") from exc
        finally:
            log.close()
        with self._lock:
            self._workers[worker.pid] = worker
        logger.info("started local worker", extra={"job_id": spec.job_id, "pid": worker.pid})
        return str(worker.pid)

    def find(self, spec: JobSpec) -> str | None:
        return None

    def poll(self, handle: str) -> PollResult:
        try:
            pid = int(handle)
        except ValueError:
            return PollResult("unknown", error=f"not a local worker handle: {handle!r}")
        with self._lock:
            worker = self._workers.get(pid)
        if worker is not None:
            code = worker.poll()  # also reaps the child
            if code is None:
                return PollResult("running")
            with self._lock:
                self._workers.pop(pid, None)
            if code == 0:
                return PollResult("succeeded", details={"exit_code": 0})
            return PollResult(
                "failed", error=f"local worker exited with code {code}", details={"exit_code": code}
            )
        state = _proc_state(pid)
        if state is not None and state not in ("Z", "X"):
            return PollResult("running")
        # Not our child (another process started it) and gone: only its report can tell.
        return PollResult("succeeded", details={"exit_code": None})

    def cancel(self, handle: str) -> None:
        try:
            pid = int(handle)
        except ValueError:
            return
        with self._lock:
            worker = self._workers.pop(pid, None)
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return
        if worker is not None:
            try:
                worker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(pid, signal.SIGKILL)
                worker.wait(timeout=5)


def create() -> LocalBackend:
    return LocalBackend(config.load(JobSettings))
