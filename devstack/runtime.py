"""Lambda's runtime for the local stack: the invocation contract every trigger uses.

`Invocable` is what the gateway, the pollers and the scheduler call: `invoke(event)` returns
the function's result or raises like a failed invocation, and every invocation is reported to
`INVOCATION_LISTENERS` with what the function printed. Two implementations:

- `workers.WorkerFunction` (the default): each function in worker processes of its own, as
  Lambda runs it in containers of its own; a slow invocation stalls nobody else.
- `LocalFunction` (`LOTABOTS_FUNCTION_WORKERS=0`, and unit tests): the handler module imported
  into this process (`load_all`) and called here. Invocations then run one at a time across the
  whole process: every function would have its own Powertools Logger, Metrics and resolver state
  in Lambda, but here they share the process's singletons (`lotabots.observability`, each
  module-level `app`), so two concurrent invocations would mix each other's log keys, flush each
  other's metrics and race on the resolver's current event.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lotabots import topology

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_ID = "123456789012"

Handler = Callable[[dict[str, Any], Any], Any]

# Re-entrant so that an in-process invocation made from inside a handler cannot deadlock.
_INVOCATION_LOCK = threading.RLock()

_log = logging.getLogger("devstack.runtime")


@dataclass(frozen=True)
class InvocationRecord:
    """What the Lambda service records about one invocation: the function's output lines (its
    Powertools JSON log lines and EMF metric blobs, as CloudWatch Logs would receive them), its
    duration and whether it failed. The local stack's telemetry turns these into CloudWatch Logs
    events and the `AWS/Lambda` metrics, so the AIOps functions read the same APIs as in AWS."""

    function: str
    request_id: str
    started_at: float  # epoch seconds
    duration_ms: float
    error: bool
    output: tuple[str, ...]


InvocationListener = Callable[[InvocationRecord], None]
# Called in the stack's process after every invocation (outside any lock), whichever runtime ran
# it; a listener must return quickly (hand work to its own thread) and its failures never fail
# the invocation.
INVOCATION_LISTENERS: list[InvocationListener] = []


class _Tee(io.TextIOBase):
    """Writes through to the console and keeps a copy of what one invocation printed."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.captured = io.StringIO()

    def write(self, text: str) -> int:
        self.captured.write(text)
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


@contextlib.contextmanager
def captured_output() -> Any:
    """Capture stdout, stderr and the Powertools logger's stream for one invocation (in order)."""
    from lotabots.observability import logger

    tee = _Tee(sys.stdout)
    errors = _Tee(sys.stderr)
    errors.captured = tee.captured
    handler = logger.registered_handler
    previous = handler.setStream(tee) if isinstance(handler, logging.StreamHandler) else None
    try:
        with contextlib.redirect_stdout(tee), contextlib.redirect_stderr(errors):
            yield tee
    finally:
        if previous is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(previous)


def notify(record: InvocationRecord) -> None:
    """Hand `record` to every listener; a listener's failure never fails the invocation."""
    for listener in list(INVOCATION_LISTENERS):
        try:
            listener(record)
        except Exception:
            _log.exception("invocation listener failed")


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as `context` (the attributes Powertools reads)."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    region: str = "us-east-1"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id[:8]}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Invocable(Protocol):
    """One function as its triggers see it."""

    spec: topology.Function

    @property
    def name(self) -> str: ...

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run one invocation; the result, or an exception like a failed invocation."""


class LocalFunction:
    """One function run in this process: its topology entry and its handler."""

    def __init__(
        self, spec: topology.Function, handler: Handler, module: Any = None, region: str = "us-east-1"
    ):
        self.spec = spec
        self.handler = handler
        self.module = module
        self.region = region

    @property
    def name(self) -> str:
        return self.spec.name

    def new_context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.spec.name,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
            region=self.region,
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run the handler; exceptions propagate like a failed invocation."""
        context = self.new_context()
        started_at, started = time.time(), time.perf_counter()
        failed = True
        tee: _Tee | None = None
        try:
            with _INVOCATION_LOCK, captured_output() as tee:
                result = self.handler(event, context)
            failed = False
            return result
        finally:
            if INVOCATION_LISTENERS:
                lines = tee.captured.getvalue().splitlines() if tee is not None else []
                notify(
                    InvocationRecord(
                        function=self.name,
                        request_id=context.aws_request_id,
                        started_at=started_at,
                        duration_ms=(time.perf_counter() - started) * 1000,
                        error=failed,
                        output=tuple(line for line in lines if line.strip()),
                    )
                )

    def openapi_schema(self) -> dict[str, Any] | None:
        """The OpenAPI schema of the module's resolver `app` (None if it has none)."""
        app = getattr(self.module, "app", None)
        if app is None or not hasattr(app, "get_openapi_schema"):
            return None
        schema: dict[str, Any] = app.get_openapi_schema().model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        return schema


def load_module(name: str, root: Path = ROOT) -> Any:
    """Import functions/<name>/app.py under a unique module name, once."""
    return topology.load_function_module(name, root, "devstack_fn_")


@dataclass
class Registry:
    """The available functions, and why the others are not."""

    functions: dict[str, Invocable] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Invocable | None:
        return self.functions.get(name)

    def close(self) -> None:
        """Stop what the functions run on (their worker processes, if any), all at once."""
        closers = [close for f in self.functions.values() if (close := getattr(f, "close", None))]
        threads = [threading.Thread(target=close, daemon=True) for close in closers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def unavailable(spec: topology.Function, root: Path = ROOT) -> str | None:
    """Why `spec`'s handler cannot be loaded without importing it (None: it may be)."""
    module_file, _, _attribute = spec.handler.rpartition(".")
    if module_file != "app":
        return f"unsupported handler {spec.handler!r} (expected app.<name>)"
    if not (root / spec.code_dir / "app.py").is_file():
        return f"{spec.code_dir}/app.py does not exist"
    return None


def load_all(specs: Iterable[topology.Function], region: str, root: Path = ROOT) -> Registry:
    """Import every function's handler into this process; a broken or missing one is reported,
    not fatal."""
    registry = Registry()
    for spec in specs:
        reason = unavailable(spec, root)
        if reason is not None:
            registry.failures[spec.name] = reason
            continue
        attribute = spec.handler.rpartition(".")[2]
        try:
            module = load_module(spec.name, root)
            handler = getattr(module, attribute)
        except Exception:
            registry.failures[spec.name] = traceback.format_exc(limit=-3).strip()
            continue
        registry.functions[spec.name] = LocalFunction(spec, handler, module, region)
    return registry
