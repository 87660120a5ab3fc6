"""Modal backend: `modal.Function.from_name(app, <job type>).spawn(spec)`.

Credentials come from Secrets Manager (`MODAL_SECRET_ID`, JSON {"token_id", "token_secret"})
through Powertools Parameters (cached five minutes) and become a `modal.Client`; nothing
secret lives in the environment. The Modal function returns the job's report, which
`poll()` reads with `FunctionCall.from_id(id).get(timeout=0)`.
"""

from __future__ import annotations

import threading
from typing import Any

from lotabots import config
from lotabots.config import JobSettings
from lotabots.jobs.backends import BackendRejected, BackendUnavailable, PollResult
from lotabots.jobs.spec import JobSpec
from lotabots.observability import logger


class ModalBackend:
    name = "modal"

    def __init__(self, settings: JobSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._client: Any = None
        self._credentials: tuple[str, str] | None = None

    def _modal_client(self) -> Any:
        import modal
        from aws_lambda_powertools.utilities import parameters

        try:
            secret: Any = parameters.get_secret(self._settings.modal_secret_id, transform="json", max_age=300)
        except Exception as exc:  # Secrets Manager unreachable or the secret is missing
            raise BackendUnavailable(f"cannot read Modal credentials: {exc}") from exc
        if not isinstance(secret, dict) or not secret.get("token_id") or not secret.get("token_secret"):
            raise BackendUnavailable(
                f"secret {self._settings.modal_secret_id} must hold JSON {{token_id, token_secret}}"
            )
        credentials = (str(secret["token_id"]), str(secret["token_secret"]))
        with self._lock:
            if self._client is None or credentials != self._credentials:
                try:
                    self._client = modal.Client.from_credentials(*credentials)
                except modal.exception.AuthError as exc:
                    raise BackendUnavailable(f"Modal rejected our credentials: {exc}") from exc
                except (modal.exception.ConnectionError, OSError) as exc:
                    raise BackendUnavailable(f"cannot reach Modal: {exc}") from exc
                self._credentials = credentials
            return self._client

    def _forget_client(self) -> None:
        with self._lock:
            self._client = None
            self._credentials = None

    def _translate(self, exc: Exception, action: str) -> Exception:
        import modal

        errors = modal.exception
        if isinstance(exc, errors.AuthError):
            self._forget_client()  # the token may have been rotated in Secrets Manager
            return BackendUnavailable(f"Modal authentication failed while trying to {action}: {exc}")
        if isinstance(exc, errors.NotFoundError | errors.InvalidError):
            return BackendRejected(f"Modal refused to {action}: {exc}")
        return BackendUnavailable(f"Modal unavailable while trying to {action}: {exc}")

    def submit(self, spec: JobSpec) -> str:
        import modal

        client = self._modal_client()
        try:
            function = modal.Function.from_name(self._settings.modal_app_name, spec.type, client=client)
            if spec.gpu:
                function = function.with_options(gpu=spec.gpu)
            call = function.spawn(spec.model_dump(mode="json"))
        except (modal.exception.Error, OSError) as exc:
            raise self._translate(exc, f"spawn {self._settings.modal_app_name}.{spec.type}") from exc
        handle = str(call.object_id)
        logger.info("spawned Modal call", extra={"job_id": spec.job_id, "handle": handle})
        return handle

    def find(self, spec: JobSpec) -> str | None:
        # Modal cannot look a call up by our job id; dispatch's conditional-write map is the guard.
        return None

    def poll(self, handle: str) -> PollResult:
        import modal

        errors = modal.exception
        client = self._modal_client()
        try:
            value = modal.FunctionCall.from_id(handle, client=client).get(timeout=0)
        except errors.OutputExpiredError:
            return PollResult("failed", error="Modal result expired before it was collected")
        except errors.FunctionTimeoutError as exc:
            return PollResult("failed", error=f"Modal function timed out: {exc}")
        except errors.TimeoutError:
            return PollResult("running")
        except (
            errors.AuthError,
            errors.ConnectionError,
            errors.ServiceError,
            errors.InternalError,
            OSError,
        ) as exc:
            raise self._translate(exc, "poll a call") from exc
        except errors.NotFoundError:
            return PollResult("unknown", error=f"Modal has no call {handle}")
        except Exception as exc:  # the remote function raised: that is the job's failure
            return PollResult("failed", error=f"{type(exc).__name__}: {exc}")
        if not isinstance(value, dict):
            return PollResult("failed", error=f"Modal function returned {type(value).__name__}, not a report")
        if value.get("status") == "succeeded":
            return PollResult("succeeded", report=value)
        return PollResult("failed", report=value, error=value.get("error"))

    def cancel(self, handle: str) -> None:
        import modal

        try:
            modal.FunctionCall.from_id(handle, client=self._modal_client()).cancel()
        except (modal.exception.Error, OSError) as exc:
            raise self._translate(exc, "cancel a call") from exc


def create() -> ModalBackend:
    return ModalBackend(config.load(JobSettings))
